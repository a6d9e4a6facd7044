"""`genforge ecg` through the real entry point: train, score (resume, bad records), evaluate helpers, demo."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genforge.cli import main
from genforge.ecg import ECGAnomalyDetector, format_table, metrics
from genforge.ecg.evaluate import BASELINES, by_record

from .conftest import TEST_RECORD, TRAIN_RECORDS


def _copy(mitdb: Path, names: list[str], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        for ext in ("hea", "dat", "atr"):
            shutil.copy(mitdb / f"{n}.{ext}", folder / f"{n}.{ext}")
    return folder


def test_train_score_resume_and_bad_record(mitdb: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("GENFORGE_CACHE", str(tmp_path / "cache"))
    records = _copy(mitdb, ["100", TEST_RECORD], tmp_path / "records")
    model = tmp_path / "model"
    rc = main(
        ["ecg", "train", "--data", str(records), "--records", "100", "--out", str(model), "--max-steps", "60"]
    )
    assert rc == 0 and (model / "config.json").is_file() and (model / "model.safetensors").is_file()
    assert ECGAnomalyDetector.load(model).noise_scaling  # the default
    plain = tmp_path / "plain"
    argv = ["ecg", "train", "--data", str(records), "--records", "100", "--out", str(plain)]
    assert main([*argv, "--max-steps", "5", "--no-noise-scaling", "--patient-weight", "0"]) == 0
    plain_model = ECGAnomalyDetector.load(plain)
    assert not plain_model.noise_scaling and plain_model.patient_ is None
    assert ECGAnomalyDetector.load(model).patient_.known_records() == ["100"]

    bad = records / "bad"
    shutil.copy(records / "100.hea", bad.with_suffix(".hea"))
    (bad.with_suffix(".hea")).write_text((records / "100.hea").read_text().replace("100", "bad"))
    bad.with_suffix(".dat").write_bytes((records / "100.dat").read_bytes()[:1000])
    out = tmp_path / "out" / "scores.parquet"
    capsys.readouterr()
    rc = main(["ecg", "score", str(records), "--model", str(model), "--out", str(out)])
    err = capsys.readouterr()
    assert rc == 1  # one record failed, the others were scored
    assert f"WFDB annotations of the flagged beats: {out.parent}/<record>.gfa" in err.out
    assert "bad.dat: truncated: header says 650000 samples" in err.err
    table = pd.read_parquet(out)
    assert {"record", "sample", "time_s", "score", "flag", "symbol"} <= set(table.columns)
    assert set(table["record"]) == {"100", TEST_RECORD}
    assert table["sample"].max() < 650_000 and (table["time_s"] - table["sample"] / 360).abs().max() < 1e-9
    v = table[table["symbol"] == "V"]
    n100 = table[(table["symbol"] == "N") & (table["record"] == "100")]  # the training record's normal beats
    assert v["flag"].mean() > 0.8 and n100["flag"].mean() < 0.1
    # the same-record term speaks for the training record only
    assert table.loc[table["record"] == "100", "patient_score"].notna().mean() > 0.99
    assert table.loc[table["record"] == TEST_RECORD, "patient_score"].isna().all()
    assert (out.parent / f"{TEST_RECORD}.gfa").is_file()  # WFDB annotations of the flagged beats
    import wfdb

    ann = wfdb.rdann(str(out.parent / TEST_RECORD), "gfa")
    assert len(ann.sample) == int(table[table["record"] == TEST_RECORD]["flag"].sum())

    # rerun without the bad record: the two finished records are not scored again
    for f in records.glob("bad.*"):
        f.unlink()
    rc = main(["ecg", "score", str(records), "--model", str(model), "--out", str(out)])
    assert rc == 0
    assert "2 records in the output (0 scored now by this process, 2 already done), 0 failed" in (
        capsys.readouterr().out
    )
    assert not list(out.parent.glob("*.parts"))  # work folder removed after a complete run


def test_score_bad_inputs_leave_no_output(small_model, tmp_path: Path, capsys) -> None:
    _, model = small_model
    x = np.full(5000, np.nan)
    pd.DataFrame({"MLII": x}).to_csv(tmp_path / "nan.csv", index=False)
    (tmp_path / "empty.csv").write_bytes(b"")
    out = tmp_path / "o" / "scores.parquet"
    for name in ("nan.csv", "empty.csv"):
        rc = main(
            ["ecg", "score", str(tmp_path / name), "--model", str(model), "--out", str(out), "--fs", "360"]
        )
        err = capsys.readouterr().err
        assert rc == 1 and f"{name}:" in err
        assert (
            not out.exists() and not list(out.parent.glob("*.gfa")) and not list(out.parent.glob("*.parts"))
        )
    rc = main(["ecg", "score", str(tmp_path / "nan.csv"), "--model", str(tmp_path), "--out", str(out)])
    assert rc == 2 and "error:" in capsys.readouterr().err  # not a model folder: one line, exit 2


def test_metrics_and_table() -> None:
    aami = np.array(["N"] * 90 + ["V"] * 5 + ["S"] * 5)
    score = np.r_[np.linspace(0, 1, 90), np.full(5, 2.0), np.linspace(0.5, 0.6, 5)]
    m = metrics(score, aami)
    assert m["per_class_auroc"]["V"] == 1.0 and 0.3 < m["per_class_auroc"]["S"] < 0.7
    assert m["sensitivity_at_far"]["0.01"] == pytest.approx(0.5)
    result = {**m, "protocol": "inter", "baselines": {"pca_shape": m}, "anchors": {"Anobeat": 0.894}}
    text = format_table(result)
    assert "baseline: pca_shape" in text and "anchor: Anobeat" in text and "0.894" in text


def test_errors_by_record() -> None:
    # record a: 50 normal beats, two of them scoring high; record b: 50 normal, 10 abnormal of which 4 low
    aami = np.array(["N"] * 100 + ["V"] * 10)
    record = np.array(["a"] * 50 + ["b"] * 50 + ["b"] * 10)
    score = np.r_[np.zeros(48), 5.0, 5.0, np.linspace(0, 1, 50), np.full(6, 9.0), np.full(4, 0.5)]
    table = by_record(score, aami, record, far=0.05)  # threshold: 95th percentile of the normals (~0.95)
    assert table["a"] == {"beats": 50, "normal": 50, "abnormal": 0, "false_alarms": 2, "missed": 0}
    assert table["b"]["false_alarms"] == 3 and table["b"]["missed"] == 4 and table["b"]["abnormal"] == 10
    text = format_table({**metrics(score, aami), "protocol": "inter", "by_record": table})
    assert "most false alarms at 5% false-alarm rate, by record: b (3), a (2)" in text
    assert "most missed abnormal beats at 5%, by record: b (4)" in text


def test_baselines_match_independent_computations(small_beats) -> None:
    """Each distance baseline equals the same quantity computed another way (scipy / plain numpy)."""
    from scipy.spatial.distance import mahalanobis

    from genforge.ecg.evaluate import RR4, WAVE_COLS

    train = small_beats[small_beats["record"].isin(TRAIN_RECORDS) & (small_beats["aami"] == "N")]
    test = small_beats[small_beats["record"] == TEST_RECORD].iloc[::40]
    rr_tr, rr_te = (np.log(f[RR4].to_numpy(np.float64)) for f in (train, test))
    # Mahalanobis on log RR (squared, maximum-likelihood covariance)
    vi = np.linalg.inv(np.cov(rr_tr, rowvar=False, bias=True))
    expected = [mahalanobis(x, rr_tr.mean(0), vi) ** 2 for x in rr_te]
    np.testing.assert_allclose(BASELINES["rr_mahalanobis"](train, test), expected, rtol=1e-6)
    # 5-NN: mean distance to the five nearest training beats, features standardised on the training beats
    mu, sd = rr_tr.mean(0), rr_tr.std(0)
    d = np.linalg.norm((rr_te - mu)[:, None, :] / sd - (rr_tr - mu)[None, :, :] / sd, axis=2)
    np.testing.assert_allclose(BASELINES["rr_knn5"](train, test), np.sort(d, 1)[:, :5].mean(1), rtol=1e-5)
    # PCA shape: squared error of the projection on the first 10 principal axes
    w_tr, w_te = train[WAVE_COLS].to_numpy(np.float64), test[WAVE_COLS].to_numpy(np.float64)
    axes = np.linalg.svd(w_tr - w_tr.mean(0), full_matrices=False)[2][:10]
    centred = w_te - w_tr.mean(0)
    error = ((centred - centred @ axes.T @ axes) ** 2).sum(1)
    np.testing.assert_allclose(BASELINES["pca_shape"](train, test), error, rtol=1e-6, atol=1e-9)


def test_baselines_read_what_they_claim(small_beats) -> None:
    """Record 119's premature ventricular beats differ in shape and timing: every baseline finds them,
    and shuffling the timing columns across beats blinds the RR baselines but not the shape ones
    (and the other way round), so each baseline reads what its name says."""
    from genforge.ecg.evaluate import RR_COLS, WAVE_COLS

    train = small_beats[small_beats["record"].isin(TRAIN_RECORDS) & (small_beats["aami"] == "N")]
    test = small_beats[small_beats["record"] == TEST_RECORD].reset_index(drop=True)
    aami = test["aami"].to_numpy()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(test))
    no_timing = test.copy()
    no_timing[RR_COLS] = test[RR_COLS].to_numpy()[order]
    no_shape = test.copy()
    no_shape[WAVE_COLS] = test[WAVE_COLS].to_numpy()[order]

    def auroc(name: str, beats) -> float:
        kwargs = {"steps": 200} if name == "plain_autoencoder" else {}
        return metrics(BASELINES[name](train, beats, **kwargs), aami)["auroc"]

    for name in BASELINES:
        assert auroc(name, test) > 0.95, name
    for name in ("rr_mahalanobis", "rr_knn5"):
        assert abs(auroc(name, no_timing) - 0.5) < 0.1, name
        assert auroc(name, no_shape) == pytest.approx(auroc(name, test))
    for name in ("pca_shape", "plain_autoencoder"):
        assert abs(auroc(name, no_shape) - 0.5) < 0.1, name
        assert auroc(name, no_timing) == pytest.approx(auroc(name, test))


def test_demo_is_labelled_simulated(tmp_path: Path) -> None:
    from genforge.ecg.cli import run_demo

    result = run_demo(tmp_path, quick=True)
    assert result["data"].startswith("SIMULATED")
    assert result["auroc"] > 0.8 and result["per_class_auroc"]["V"] > 0.9
    assert result["normal_beats_flagged_pct"] < 10  # the model's threshold targets 2% false alarms
    assert (tmp_path / "SIMULATED_metrics.json").is_file() and (
        tmp_path / "SIMULATED_scores.parquet"
    ).is_file()
    text = (tmp_path / "SIMULATED_README.txt").read_text()
    assert "SIMULATED" in text and "genforge ecg evaluate" in text


def test_download_wraps_wfdb_offline(mitdb: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    """`genforge ecg download` on local files: a stand-in for wfdb.dl_database serves MIT-BIH from disk."""
    import wfdb

    from genforge.ecg import read_record

    calls = []

    def fake_dl_database(db_dir, dl_dir, records="all", annotators="all", **kwargs):
        calls.append((db_dir, records, annotators))
        _copy(mitdb, list(records), Path(dl_dir))

    monkeypatch.setattr(wfdb, "dl_database", fake_dl_database)
    target = tmp_path / "dl"
    assert main(["ecg", "download", "mitdb", "--dir", str(target), "--records", "100, 101"]) == 0
    assert calls == [("mitdb", ["100", "101"], "all")]
    assert f"downloaded mitdb into {target}" in capsys.readouterr().out
    assert read_record(target / "100").fs > 0  # what arrives is readable as usual

    def offline(*args, **kwargs):
        raise ConnectionError("Name or service not known")

    monkeypatch.setattr(wfdb, "dl_database", offline)
    assert main(["ecg", "download", "mitdb", "--dir", str(tmp_path / "dl2")]) == 2
    err = capsys.readouterr().err
    assert "mitdb: download from PhysioNet failed" in err and "Traceback" not in err


def test_demo_writes_under_the_results_folder(tmp_path: Path, monkeypatch, capsys) -> None:
    """`genforge ecg demo` without --out writes a new ecg-demo-<time> folder under $GENFORGE_RESULTS, where
    the dashboard looks for the newest demo; its model is marked as trained on SIMULATED ECG only."""
    from genforge.ecg import latest_demo_outputs

    monkeypatch.setenv("GENFORGE_RESULTS", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert main(["ecg", "demo", "--quick"]) == 0
    runs = [p.name for p in tmp_path.iterdir()]
    assert len(runs) == 1 and runs[0].startswith("ecg-demo-"), runs
    found = latest_demo_outputs(tmp_path)
    assert found is not None and found.model == tmp_path / runs[0] / "model"
    assert (found.records / "SIMULATED_test.hea").is_file()
    assert ECGAnomalyDetector.load(found.model).trained_on_simulated_only
    assert f"demo outputs in {tmp_path / runs[0]}" in capsys.readouterr().err


def test_train_and_score_state_the_false_alarms_to_expect(mitdb: Path, tmp_path: Path, monkeypatch, capsys):
    """With held-out-patient calibration, train and score say what share of normal beats will be flagged
    on seen and on new records, with the spread across the held-out training patients."""
    monkeypatch.setenv("GENFORGE_CACHE", str(tmp_path / "cache"))
    records = _copy(mitdb, ["100", "101", TEST_RECORD], tmp_path / "records")
    model = tmp_path / "model"
    argv = ["ecg", "train", "--data", str(records), "--records", "100,101", "--out", str(model)]
    assert main([*argv, "--max-steps", "30", "--calibration-folds", "2"]) == 0
    out = capsys.readouterr().out
    assert "for new records" in out and "median across 2 held-out training patients (25-75%:" in out
    det = ECGAnomalyDetector.load(model)
    assert det.new_patient_far_["records"] == 2 and det.threshold_new_ != det.threshold_
    scores = tmp_path / "scores.parquet"
    assert (
        main(
            [
                "ecg",
                "score",
                str(records / TEST_RECORD),
                str(records / "100"),
                "--model",
                str(model),
                "--out",
                str(scores),
                "--peaks",
                "reference",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "records seen in training (1): about 1.0%; new records:" in out
    table = pd.read_parquet(scores)
    new = (table["record"] == TEST_RECORD).to_numpy()
    # each record was judged against its own threshold
    assert (table.loc[new, "flag"] == (table.loc[new, "score"] > det.threshold_new_)).all()
    assert (table.loc[~new, "flag"] == (table.loc[~new, "score"] > det.threshold_)).all()
