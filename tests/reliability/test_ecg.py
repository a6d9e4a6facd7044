"""Reliability corpus, ECG: ecg train's folder guard and options, ecg score's inputs, keys and outputs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import TRAIN, ecg_csv, refused, snapshot

UNWRITABLE = Path("/sys/genforge-reliability")


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ------------------------------------------------------------------ ecg train: folder guard and options
def ecg_train(cli, data, out, *extra):
    return cli("ecg", "train", "--data", data, "--records", "100", "--out", out, *extra)


def test_ecg_train_refuses_core_run(cli, own_run, tmp_path):
    before = snapshot(own_run)
    refused(ecg_train(cli, tmp_path, own_run), "'genforge train vae' job", "--overwrite")
    assert snapshot(own_run) == before


def test_ecg_train_refuses_users_folder(cli, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "config.json").write_text("{}")
    before = snapshot(out)
    refused(ecg_train(cli, tmp_path, out), "config.json", "--overwrite")
    assert snapshot(out) == before


def test_ecg_train_out_is_file(cli, tmp_path):
    target = tmp_path / "f"
    target.write_text("keep")
    refused(ecg_train(cli, tmp_path, target), "is a file")
    assert target.read_text() == "keep"


@pytest.mark.skipif(not Path("/sys").is_dir(), reason="needs /sys")
def test_ecg_train_out_not_writable(cli, tmp_path):
    refused(ecg_train(cli, tmp_path, UNWRITABLE / "m"), "cannot write in /sys")


@pytest.mark.parametrize(
    ("option", "value"),
    [("--target-far", "nan"), ("--target-far", "0"), ("--target-far", "1.5"), ("--max-steps", "0"),
     ("--patient-weight", "-1"), ("--patient-weight", "inf")],
)
def test_ecg_train_bad_numeric_option(cli, tmp_path, option, value):
    out = tmp_path / "m"
    refused(ecg_train(cli, tmp_path, out, option, value), option)
    assert not out.exists()


def test_ecg_train_refuses_other_settings_of_own_model(cli, tmp_path):
    from genforge.outputs import claim

    out = tmp_path / "m"
    job = {"data": str(tmp_path.resolve()), "records": "100", "peaks": "reference", "architecture": "mlp",
           "max_steps": 800, "target_far": 0.01, "noise_scaling": True, "patient_weight": 1.0, "seed": 0}
    claim(out, "genforge ecg train", job)
    before = snapshot(out)
    refused(ecg_train(cli, tmp_path, out, "--seed", "7"), "seed: 0 -> 7")
    assert snapshot(out) == before


# ------------------------------------------------------------------ ecg score: options and outputs
def score(cli, paths, model, out, *extra):
    return cli("ecg", "score", *paths, "--model", model, "--out", out, *extra)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_score_threshold_not_finite(cli, sim_records, ecg_model, tmp_path, value):
    out = tmp_path / "s.parquet"
    refused(score(cli, [sim_records / "SIMULATED_a"], ecg_model, out, "--threshold", value), "--threshold")
    assert list(tmp_path.iterdir()) == []


def test_score_fs_not_finite(cli, sim_records, ecg_model, tmp_path):
    out = tmp_path / "s.parquet"
    refused(score(cli, [sim_records / "SIMULATED_a"], ecg_model, out, "--fs", "nan"), "--fs")
    assert list(tmp_path.iterdir()) == []


def test_score_out_parent_is_file(cli, sim_records, ecg_model, tmp_path):
    parent = tmp_path / "afile"
    parent.write_text("keep")
    refused(score(cli, [sim_records / "SIMULATED_a"], ecg_model, parent / "s.parquet"), "afile")
    assert parent.read_text() == "keep"


@pytest.mark.skipif(not Path("/sys").is_dir(), reason="needs /sys")
def test_score_out_not_writable(cli, sim_records, ecg_model):
    refused(score(cli, [sim_records / "SIMULATED_a"], ecg_model, UNWRITABLE / "s.parquet"), "cannot write")


def test_score_out_is_folder(cli, sim_records, ecg_model, tmp_path):
    (tmp_path / "x.parquet").mkdir()
    refused(score(cli, [sim_records / "SIMULATED_a"], ecg_model, tmp_path / "x.parquet"), "is a folder")


def test_score_out_wrong_suffix(cli, sim_records, ecg_model, tmp_path):
    refused(score(cli, [sim_records / "SIMULATED_a"], ecg_model, tmp_path / "s.csv"), "expected a .parquet")
    assert list(tmp_path.iterdir()) == []


def test_score_model_of_another_kind(cli, sim_records, core_run, tmp_path):
    refused(score(cli, [sim_records / "SIMULATED_a"], core_run, tmp_path / "s.parquet"), "ECGAnomalyDetector")
    assert list(tmp_path.iterdir()) == []


def test_score_model_missing(cli, sim_records, tmp_path):
    refused(score(cli, [sim_records / "SIMULATED_a"], tmp_path / "nope", tmp_path / "s.parquet"), "nope")
    assert not (tmp_path / "s.parquet").exists()


def test_score_missing_folder_of_records(cli, ecg_model, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    refused(score(cli, [empty], ecg_model, tmp_path / "s.parquet"), "no records")
    assert not (tmp_path / "s.parquet").exists()


@pytest.mark.parametrize(("declared", "listed"), [(3, 2), (1, 2)])
def test_header_signal_count_blamed_on_header(cli, sim_records, ecg_model, tmp_path, declared, listed):
    import wfdb

    from genforge.ecg.data import read_record

    folder = tmp_path / "rec"
    folder.mkdir()
    wfdb.wrsamp("two", fs=360, units=["mV", "mV"], sig_name=["MLII", "V5"],
                p_signal=pd.DataFrame({"a": range(3600), "b": range(3600)}).to_numpy() / 1000.0,
                fmt=["212", "212"], write_dir=str(folder))
    hea = folder / "two.hea"
    lines = hea.read_text().splitlines()
    lines[0] = lines[0].replace(" 2 ", f" {declared} ", 1)
    hea.write_text("\n".join(lines) + "\n")
    expected = rf"two\.hea: record line declares {declared} signal\(s\) but {listed}"
    with pytest.raises(Exception, match=expected):
        read_record(folder / "two")
    out = tmp_path / "s.parquet"
    r = score(cli, [folder / "two"], ecg_model, out)
    assert r.rc == 1 and "two.hea: record line declares" in r.err and "Traceback" not in r.err
    assert not out.exists() and not list(tmp_path.glob("*.parts"))


def test_record_name_with_space_gets_sanitised_annotation(cli, sim_records, ecg_model, tmp_path):
    src = ecg_csv(tmp_path / "in" / "my record.csv", sim_records / "SIMULATED_b", seconds=60)
    out = tmp_path / "o" / "s.parquet"
    r = score(cli, [src], ecg_model, out, "--fs", "360")
    assert r.rc == 0, r.err
    assert "my_record.gfa" in r.err and "Traceback" not in r.err
    table = pd.read_parquet(out)
    assert set(table["record"]) == {"my record"}
    assert not list(out.parent.glob("*.parts"))


def test_two_records_with_one_name_stay_distinct(cli, sim_records, ecg_model, tmp_path):
    a = ecg_csv(tmp_path / "one" / "100.csv", sim_records / "SIMULATED_a", seconds=60)
    b = ecg_csv(tmp_path / "two" / "100.csv", sim_records / "SIMULATED_b", seconds=60)
    out = tmp_path / "o" / "s.parquet"
    r = score(cli, [a, b], ecg_model, out, "--fs", "360")
    assert r.rc == 0, r.err
    table = pd.read_parquet(out)
    assert set(table["record"]) == {"one_100", "two_100"}
    assert set(table["path"]) == {str(a), str(b)}
    assert not table.duplicated(["record", "sample"]).any()
    assert {p.name for p in out.parent.glob("*.gfa")} <= {"one_100.gfa", "two_100.gfa"}
    r = score(cli, [a, b], ecg_model, out, "--fs", "360")  # a rerun works too
    assert r.rc == 0, r.err


def test_replaced_record_is_scored_again(cli, sim_records, ecg_model, tmp_path):
    rec = tmp_path / "in" / "a.csv"
    bad = tmp_path / "in" / "bad.csv"
    ecg_csv(rec, sim_records / "SIMULATED_a", seconds=60)
    bad.write_text("MLII\n1\n2\n")
    out = tmp_path / "o" / "s.parquet"
    r = score(cli, [rec, bad], ecg_model, out, "--fs", "360")
    assert r.rc == 1 and "bad.csv" in r.err
    first = pd.read_parquet(out)
    assert list(out.parent.glob("*.parts"))  # kept for the rerun
    ecg_csv(rec, sim_records / "SIMULATED_b", seconds=90)  # another patient under the same name
    bad.unlink()
    r = score(cli, [rec], ecg_model, out, "--fs", "360")
    assert r.rc == 0, r.err
    assert "1 scored now" in r.out
    second = pd.read_parquet(out)
    assert len(second) != len(first) or not second["score"].equals(first["score"])
    assert not list(out.parent.glob("*.parts"))


def test_unchanged_record_is_resumed(cli, sim_records, ecg_model, tmp_path):
    rec = ecg_csv(tmp_path / "in" / "a.csv", sim_records / "SIMULATED_a", seconds=60)
    bad = tmp_path / "in" / "bad.csv"
    bad.write_text("MLII\n1\n")
    out = tmp_path / "o" / "s.parquet"
    assert score(cli, [rec, bad], ecg_model, out, "--fs", "360").rc == 1
    bad.unlink()
    r = score(cli, [rec], ecg_model, out, "--fs", "360")
    assert r.rc == 0 and "0 scored now by this process, 1 already done" in r.out


def test_core_train_refuses_ecg_folder_after_score(cli, table_csv, ecg_model, tmp_path):
    out = tmp_path / "ecg"
    shutil.copytree(ecg_model, out)
    before = snapshot(out)
    refused(cli("train", "vae", "--dataset", table_csv, "--out", out, *TRAIN), "--overwrite")
    assert snapshot(out) == before
