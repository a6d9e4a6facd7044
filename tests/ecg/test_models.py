"""Beats and the detector on real MIT-BIH records: alignment, RR, learning, sklearn API, save/load."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from genforge.ecg import ECGAnomalyDetector, beat_table, metrics, read_record
from genforge.ecg.preprocess import (
    NOISE_COL,
    PRE,
    RR_COLS,
    TEMPLATE_COLS,
    WAVE_COLS,
    align_peaks,
    bandpass,
    local_noise,
    local_templates,
    prematurity_features,
    rr_features,
)
from genforge.errors import DataError, GenforgeError

from .conftest import TEST_RECORD, TRAIN_RECORDS

OLD_SHAPE = {"shape_model": "vae", "rhythm_weight": 0.0}  # the scoring of state versions 1-6


def test_beat_table_reference_matches_annotations(small_beats) -> None:
    b100 = small_beats[small_beats["record"] == "100"]
    assert len(b100) == 2273  # all beat annotations of record 100 (AAMI classes)
    assert set(b100["aami"]) == {"N", "S", "V"}
    # windows are aligned on the R peak: the median beat peaks at the window's R position
    assert abs(int(np.argmax(b100[WAVE_COLS].median().to_numpy())) - PRE) <= 1
    # RR features: seconds, and the ratio of the previous RR to the local RR is ~1 for normal beats
    normal = b100[b100["aami"] == "N"]
    assert 0.7 < normal["rr_pre"].median() < 0.9
    assert abs(normal["rr_pre_ratio"].median() - 1) < 0.03
    premature = b100[b100["aami"] == "S"]
    assert premature["rr_pre_ratio"].median() < 0.8  # premature atrial beats come early


def test_alignment_corrects_offset_annotations(mitdb) -> None:
    rec = read_record(mitdb / "100")
    y = bandpass(rec.signal, rec.fs)
    ref = rec.to_internal(rec.ann_samples[np.isin(rec.ann_symbols, ["N"])])
    aligned = align_peaks(y, ref, rec.fs)
    shifted = align_peaks(y, ref + 4, rec.fs)  # annotations 22 ms late, as in some databases
    assert np.mean(aligned == shifted) > 0.98


def test_detected_peaks_find_the_annotated_beats(mitdb) -> None:
    rec = read_record(mitdb / "100")
    det = beat_table(rec, peaks="detect")
    ref = beat_table(rec, peaks="reference")
    assert abs(len(det) - len(ref)) <= 5
    assert (det["symbol"] != "").mean() > 0.99  # nearly every detection matches an annotation within 150 ms
    inverted = rec
    inverted.signal = -rec.signal  # polarity is corrected: same beats found on an inverted lead
    assert abs(len(beat_table(inverted, peaks="detect")) - len(det)) <= 5


def test_detector_learns_and_separates_abnormal_beats(small_model, small_beats) -> None:
    det, _ = small_model
    hist = det.train_result_.history
    assert hist[-1]["loss"] < hist[0]["loss"] - 0.2  # learning happened
    test = small_beats[small_beats["record"] == TEST_RECORD]
    parts = det.score_parts(test)
    aami = test["aami"].to_numpy()
    m = metrics(parts["score"].to_numpy(), aami)
    assert m["per_class_auroc"]["V"] > 0.95, m
    assert metrics(parts["shape"].to_numpy(), aami)["auroc"] > 0.9  # the shape term in use alone
    assert metrics(parts["vae"].to_numpy(), aami)["auroc"] > 0.9  # the VAE's negative ELBO alone


def test_sklearn_api_and_threshold(small_model, small_beats) -> None:
    det, _ = small_model
    train = small_beats[small_beats["record"].isin(TRAIN_RECORDS) & (small_beats["aami"] == "N")]
    pred = det.predict(train)
    assert set(np.unique(pred)) <= {-1, 1}
    assert 0.003 < (pred == -1).mean() < 0.06  # target_far=0.02 on held-out normals
    np.testing.assert_allclose(det.decision_function(train), det.score_samples(train) - det.offset_)
    np.testing.assert_allclose(det.score_samples(train), -det.anomaly_score(train))
    assert det.get_params()["architecture"] == "mlp"
    with pytest.raises(NotFittedError, match="not fitted"):
        ECGAnomalyDetector().predict(train)
    twin = clone(det)  # scikit-learn's clone: same parameters, nothing fitted
    assert twin.get_params() == det.get_params() and not hasattr(twin, "offset_")
    assert ECGAnomalyDetector().device == "auto"


def test_save_load_roundtrip_and_explain(small_model, small_beats) -> None:
    det, folder = small_model
    again = ECGAnomalyDetector.load(folder)
    beats = small_beats.iloc[:300]
    np.testing.assert_allclose(again.anomaly_score(beats), det.anomaly_score(beats), rtol=1e-5, atol=1e-5)
    assert again.threshold_ == pytest.approx(det.threshold_)
    ex = det.explain(beats.iloc[[10]])
    assert list(ex.columns) == ["t_ms", "input", "reconstruction", "template", "error"]
    assert len(ex) == len(WAVE_COLS) and ex["t_ms"].iloc[PRE] == 0
    # a normal beat is reconstructed closely (correlation with the input)
    assert np.corrcoef(ex["input"], ex["reconstruction"])[0, 1] > 0.9
    assert set(RR_COLS) <= set(beats.columns)


def test_prematurity_is_relative_to_the_local_rhythm(small_beats) -> None:
    # synthetic peaks at 100 Hz: one beat 30% early, once in a regular rhythm, once in an irregular one
    rng = np.random.default_rng(0)
    regular = np.full(200, 80.0)
    irregular = 80.0 * np.exp(rng.normal(0, 0.25, 200))
    feats, irr = [], []
    for rhythm in (regular, irregular):
        rr = rhythm.copy()
        rr[99], rr[100] = 56.0, 104.0  # the early beat (index 100) and its compensatory pause
        rr[98] = rr[101] = 80.0
        table = rr_features(np.r_[0, np.cumsum(rr)], fs=100.0)
        irr.append(table["rr_irr"].iloc[100])
        feats.append(prematurity_features(table)[100])
    assert irr[0] < 0.01 < 0.1 < irr[1]
    assert feats[0][0] < -3  # clearly premature where the rhythm is regular
    assert feats[0][0] < 4 * feats[1][0] < 0  # the same jump counts far less inside an irregular rhythm
    # real beats: the annotated premature atrial beats of record 100 stand out on the first feature
    b100 = small_beats[small_beats["record"] == "100"]
    first = prematurity_features(b100)[:, 0]
    aami = b100["aami"].to_numpy()
    assert np.median(first[aami == "S"]) < np.quantile(first[aami == "N"], 0.01)


def test_timing_options_and_version1_checkpoints(small_beats, tmp_path) -> None:
    train = small_beats[small_beats["record"].isin(TRAIN_RECORDS) & (small_beats["aami"] == "N")]
    train = train.reset_index(drop=True)
    with pytest.raises(GenforgeError, match="timing"):
        ECGAnomalyDetector(timing="wrong").fit(train)
    with pytest.raises(GenforgeError, match="timing_density"):
        ECGAnomalyDetector(timing_density="wrong").fit(train)
    det = ECGAnomalyDetector(
        timing="absolute",
        timing_density="mahalanobis",
        noise_scaling=False,
        patient_weight=0.0,
        max_steps=60,
        max_train_beats=1500,
        shape_model="vae",  # the design of state versions 1-6
        rhythm_weight=0.0,
    ).fit(train)
    test = small_beats[small_beats["record"] == "100"]
    # a checkpoint written before the timing options (state version 1) loads as absolute RR timing
    # with the Mahalanobis density and without noise scaling
    det.save(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    extra = config["extra"]
    extra["estimator"] = "genforge.ecg.ECGAnomalyDetector"  # the name before the suite contract
    extra["state_version"] = 1
    del extra["params"]["timing"], extra["params"]["noise_scaling"]
    state = extra["state"]
    del state["noise_ref_"]
    state["rr_precision_"] = state.pop("timing_precision_")
    del state["timing_mean_"], state["timing_std_"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    old = ECGAnomalyDetector.load(tmp_path)
    assert old.timing == "absolute" and old.timing_density == "mahalanobis" and not old.noise_scaling
    np.testing.assert_allclose(old.anomaly_score(test), det.anomaly_score(test), rtol=1e-5, atol=1e-5)
    with pytest.raises(DataError, match="rr_irr"):
        ECGAnomalyDetector.load(tmp_path).set_params(timing="prematurity").score_parts(
            pd.DataFrame(test.drop(columns="rr_irr"))
        )


def test_knn_timing_scores_survive_save_and_load(small_beats, tmp_path) -> None:
    """The default kNN timing density keeps its reference set in a safetensors file beside the model."""
    train = small_beats[small_beats["record"].isin(TRAIN_RECORDS) & (small_beats["aami"] == "N")]
    det = ECGAnomalyDetector(max_steps=40, max_train_beats=1500, timing_k=5).fit(train.reset_index(drop=True))
    test = small_beats[small_beats["record"] == "100"]
    parts = det.score_parts(test)
    det.save(tmp_path)
    back = ECGAnomalyDetector.load(tmp_path)
    assert back.timing_density == "knn" and back.timing_k == 5
    np.testing.assert_allclose(back.score_parts(test).to_numpy(), parts.to_numpy(), rtol=1e-5, atol=1e-5)
    # premature beats are further from the training rhythm than the record's normal beats
    premature = test["rr_pre"].to_numpy() < 0.8 * test["rr_local"].to_numpy()
    assert premature.any()
    assert parts["timing"][premature].median() > 2 * parts["timing"][~premature].median()
    (tmp_path / "timing_reference.safetensors").unlink()
    with pytest.raises(GenforgeError, match="timing_reference"):
        ECGAnomalyDetector.load(tmp_path)


def test_local_noise_follows_noisy_segments_not_ectopic_beats(small_beats) -> None:
    b100 = small_beats[small_beats["record"] == "100"].reset_index(drop=True)
    w = b100[WAVE_COLS].to_numpy(np.float32)
    t = b100[TEMPLATE_COLS].to_numpy(np.float32)
    clean = local_noise(w, t)
    np.testing.assert_allclose(clean, b100[NOISE_COL].to_numpy(), rtol=1e-5)  # what beat_table stored
    noisy = w.copy()
    segment = slice(1000, 1400)  # muscle-like noise on 400 beats, about twice the usual beat-to-beat spread
    noise = 0.05 * np.random.default_rng(0).standard_normal(noisy[segment].shape)
    noisy[segment] += noise.astype(np.float32)
    level = local_noise(noisy, local_templates(noisy))
    assert np.median(level[1050:1350]) > 1.8 * np.median(clean[1050:1350])
    assert np.median(level[:800]) == pytest.approx(np.median(clean[:800]), rel=0.1)  # elsewhere unchanged
    # strong noise (electrode-motion-like, several times the spread) moves every beat of the stretch away
    # from the record's median beat; they stay typical against the beats around them, so it is followed
    strong = w.copy()
    strong[segment] += (0.25 * np.random.default_rng(1).standard_normal(strong[segment].shape)).astype(
        np.float32
    )
    level = local_noise(strong, local_templates(strong))
    assert np.median(level[1050:1350]) > 5 * np.median(clean[1050:1350])
    # ectopic beats are not typical beats: the level around them stays that of the normal beats
    ectopic = (b100["aami"] != "N").to_numpy()
    assert np.median(clean[ectopic]) < 1.5 * np.median(clean[~ectopic])


def test_noise_scaling_shrinks_deviations_in_noisy_segments(small_model, small_beats) -> None:
    det, _ = small_model
    assert det.noise_scaling and det.noise_ref_ > 0
    test = small_beats[small_beats["record"] == TEST_RECORD].reset_index(drop=True)
    normal = (test["aami"] == "N").to_numpy()
    noisy = test.copy()
    noisy[NOISE_COL] = 4 * det.noise_ref_  # as if the segment were four times noisier than usual
    # the same beats read against a noisier segment look less abnormal
    assert np.median(det.score_parts(noisy)["shape"][normal]) < np.median(
        det.score_parts(test)["shape"][normal]
    )
    quiet = test.copy()
    quiet[NOISE_COL] = 0.25 * det.noise_ref_  # a quieter segment is never amplified
    np.testing.assert_allclose(
        det.score_parts(quiet)["shape"],
        det.score_parts(test.assign(**{NOISE_COL: det.noise_ref_}))["shape"],
        rtol=1e-6,
    )
    with pytest.raises(DataError, match="noise"):
        det.score_parts(test.drop(columns=NOISE_COL))


def test_version3_checkpoints_load_without_noise_scaling(small_beats, tmp_path) -> None:
    train = small_beats[small_beats["record"].isin(TRAIN_RECORDS) & (small_beats["aami"] == "N")]
    det = ECGAnomalyDetector(noise_scaling=False, max_steps=40, max_train_beats=1500, timing_k=5, **OLD_SHAPE)
    det.fit(train.reset_index(drop=True)).save(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    extra = config["extra"]
    extra["estimator"] = "genforge.ecg.ECGAnomalyDetector"  # the name before the suite contract
    extra["state_version"] = 3
    del extra["params"]["noise_scaling"], extra["state"]["noise_ref_"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    old = ECGAnomalyDetector.load(tmp_path)
    assert not old.noise_scaling
    test = small_beats[small_beats["record"] == TEST_RECORD]
    np.testing.assert_allclose(old.anomaly_score(test), det.anomaly_score(test), rtol=1e-5, atol=1e-5)


def test_patient_term_speaks_only_for_records_seen_in_training(small_beats, tmp_path) -> None:
    """The same-record reference: silent (NaN, no effect) on a new record, and on a training record it
    ranks that record's held-out abnormal beats above its held-out normal beats; saved and loaded."""
    from genforge.ecg.patient import PatientReference

    beats = small_beats[small_beats["record"].isin(["101", TEST_RECORD])].reset_index(drop=True)
    normal = np.flatnonzero(beats["aami"].to_numpy() == "N")
    rng = np.random.default_rng(0)
    train_idx = rng.permutation(normal)[: int(0.7 * len(normal))]
    train = beats.iloc[np.sort(train_idx)].reset_index(drop=True)
    held_out = beats.drop(index=train_idx)
    det = ECGAnomalyDetector(max_steps=40, max_train_beats=1500, timing_k=5).fit(train)
    parts = det.score_parts(held_out)
    assert np.isfinite(parts["patient"]).all()
    aami = held_out["aami"].to_numpy()
    assert (aami == "V").sum() > 50
    assert metrics(parts["patient"].to_numpy(), aami)["per_class_auroc"]["V"] > 0.95
    # a record never seen in training: the term is silent and the score is shape + timing alone
    new = small_beats[small_beats["record"] == "100"]
    new_parts = det.score_parts(new)
    assert new_parts["patient"].isna().all()
    z = det.standardised_parts(new_parts)
    expected = z["shape"] + det.rr_weight * z["timing"] + det.rhythm_weight * z["rhythm"]
    np.testing.assert_allclose(new_parts["score"], expected, rtol=1e-9)
    # without a record column the term is off too
    no_record = det.score_parts(held_out.drop(columns="record"))
    assert no_record["patient"].isna().all()
    det.save(tmp_path)
    again = ECGAnomalyDetector.load(tmp_path)
    assert isinstance(again.patient_, PatientReference)
    np.testing.assert_allclose(again.anomaly_score(held_out), det.anomaly_score(held_out), rtol=1e-5)
    with pytest.raises(GenforgeError, match="patient_weight"):
        ECGAnomalyDetector(patient_weight=-1).fit(train)


def test_version4_checkpoints_load_without_the_patient_term(small_beats, tmp_path) -> None:
    train = small_beats[small_beats["record"].isin(TRAIN_RECORDS) & (small_beats["aami"] == "N")]
    det = ECGAnomalyDetector(patient_weight=0.0, max_steps=40, max_train_beats=1500, timing_k=5, **OLD_SHAPE)
    det.fit(train.reset_index(drop=True)).save(tmp_path)
    assert not (tmp_path / "patient_reference.safetensors").exists()
    config = json.loads((tmp_path / "config.json").read_text())
    extra = config["extra"]
    extra["estimator"] = "genforge.ecg.ECGAnomalyDetector"  # the name before the suite contract
    extra["state_version"] = 4
    del extra["params"]["patient_weight"], extra["params"]["patient_k"]
    for key in ("patient_center_", "patient_scale_", "patient"):
        del extra["state"][key]
    (tmp_path / "config.json").write_text(json.dumps(config))
    old = ECGAnomalyDetector.load(tmp_path)
    assert old.patient_weight == 0 and old.patient_ is None
    test = small_beats[small_beats["record"] == "100"]  # a training record: the term would speak if on
    np.testing.assert_allclose(old.anomaly_score(test), det.anomaly_score(test), rtol=1e-5, atol=1e-5)


def test_version5_checkpoint_of_the_previous_release_scores_as_it_did(tmp_path) -> None:
    """A checkpoint written by the detector of b41cf63 (before the suite contract; see
    legacy_checkpoints/make_v5.py) loads and gives the scores it gave then."""
    from pathlib import Path

    from genforge.ecg.simulate import simulate_record

    folder = Path(__file__).parent / "legacy_checkpoints" / "v5"
    expected = json.loads((folder / "expected_scores.json").read_text())
    spec = expected["record"]
    record = simulate_record(tmp_path, spec["name"], spec["minutes"], seed=spec["seed"])
    beats = beat_table(read_record(record))
    det = ECGAnomalyDetector.load(folder)
    assert det.device == "cpu" and det.patient_ is not None and det.hidden == (16,)
    np.testing.assert_allclose(det.anomaly_score(beats), expected["anomaly_score"], rtol=1e-5, atol=1e-5)
    assert det.threshold_ == pytest.approx(expected["threshold"])
    assert ECGAnomalyDetector.load(folder, device="cpu").get_params() == det.get_params()


def test_new_patient_threshold_is_set_on_held_out_patients(small_beats, tmp_path) -> None:
    """With calibration folds, records seen in training keep the held-out-beat threshold and new records
    get one set on training patients held out of copies of the detector; both survive save/load."""
    normal = small_beats[small_beats["aami"] == "N"].reset_index(drop=True)
    det = ECGAnomalyDetector(
        max_steps=40, max_train_beats=1500, timing_k=5, target_far=0.02, calibration_folds=3
    ).fit(normal)
    far = det.new_patient_far_
    assert far["records"] == 3 and far["folds"] == 3
    assert far["bound"] == 0.95 and far["upper"] <= 0.02  # the patient-bootstrap bound holds the target
    assert far["pooled"] <= far["upper"] and far["q25"] <= far["median"] <= far["q75"] <= far["max"]
    assert det.threshold_new_ != det.threshold_
    seen = small_beats[small_beats["record"] == "100"]
    new = seen.assign(record="not-in-training")
    assert det.seen_in_training(seen).all() and not det.seen_in_training(new).any()
    np.testing.assert_allclose(det.thresholds(seen), det.threshold_)
    np.testing.assert_allclose(det.thresholds(new), det.threshold_new_)
    expected = np.where(det.anomaly_score(new) > det.threshold_new_, -1, 1)
    np.testing.assert_array_equal(det.predict(new), expected)
    det.save(tmp_path)
    back = ECGAnomalyDetector.load(tmp_path)
    assert back.threshold_new_ == pytest.approx(det.threshold_new_) and back.new_patient_far_ == far
    with pytest.raises(GenforgeError, match="calibration_folds"):
        ECGAnomalyDetector(calibration_folds=1).fit(normal)
    # without a record column (or with fewer records than folds) there is one threshold
    plain = ECGAnomalyDetector(max_steps=20, max_train_beats=800, timing_k=5)
    plain.fit(normal.drop(columns="record"))
    assert plain.new_patient_far_ is None and plain.threshold_new_ == plain.threshold_


def test_shape_models_pca_knn_and_vae(small_beats, tmp_path) -> None:
    """Both shape terms are fitted and reported; ``shape_model`` picks the one in the score; the PCA + kNN
    reference and the rhythm term survive save and load; checkpoints of state version 6 score with the VAE
    and no rhythm term, as they did."""
    train = small_beats[small_beats["record"].isin(TRAIN_RECORDS) & (small_beats["aami"] == "N")]
    train = train.reset_index(drop=True)
    test = small_beats[small_beats["record"] == TEST_RECORD].reset_index(drop=True)
    aami = test["aami"].to_numpy()
    # a condensed reference (as the default's ~2,000 of DS1's ~39,000 beats), so that training beats are
    # not their own nearest reference point
    det = ECGAnomalyDetector(
        max_steps=40, max_train_beats=1500, timing_k=5, calibration_folds=0, shape_reference_size=300
    ).fit(train)
    assert det.shape_model == "pca-knn" and det.rhythm_weight > 0
    parts = det.score_parts(test)
    np.testing.assert_array_equal(parts["shape"], parts["pca_knn"])
    assert metrics(parts["pca_knn"].to_numpy(), aami)["per_class_auroc"]["V"] > 0.95
    assert metrics(parts["rhythm"].to_numpy(), aami)["per_class_auroc"]["V"] > 0.8  # premature V beats
    z = det.standardised_parts(parts)
    assert abs(np.median(det.standardised_parts(det.score_parts(train))["pca_knn"])) < 0.5
    vae = det.set_params(shape_model="vae").score_parts(test)
    np.testing.assert_array_equal(vae["shape"], vae["vae"])
    np.testing.assert_allclose(vae["score"], det.combine({**z, "shape": z["vae"]}), rtol=1e-9)
    det.set_params(shape_model="pca-knn").save(tmp_path / "now")
    back = ECGAnomalyDetector.load(tmp_path / "now")
    np.testing.assert_allclose(back.score_parts(test).to_numpy(), parts.to_numpy(), rtol=1e-5, atol=1e-5)
    # a version 6 checkpoint: no shape reference file, no such params, no rhythm or kNN scalars
    det.save(tmp_path / "v6")
    (tmp_path / "v6" / "shape_reference.safetensors").unlink()
    config = json.loads((tmp_path / "v6" / "config.json").read_text())
    extra = config["extra"]
    extra["state_version"] = 6
    for key in ("shape_model", "shape_components", "shape_k", "rhythm_weight"):
        del extra["params"][key]
    for key in ("knn_center_", "knn_scale_", "rhythm_center_", "rhythm_scale_"):
        del extra["state"][key]
    (tmp_path / "v6" / "config.json").write_text(json.dumps(config))
    old = ECGAnomalyDetector.load(tmp_path / "v6")
    assert old.shape_model == "vae" and old.rhythm_weight == 0
    old_parts = old.score_parts(test)
    assert old_parts["pca_knn"].isna().all()
    np.testing.assert_allclose(old_parts["score"], z["vae"] + det.rr_weight * z["timing"], rtol=1e-5)
    with pytest.raises(GenforgeError, match="shape_model"):
        ECGAnomalyDetector(shape_model="pca").fit(train)


def test_condense_reference_keeps_every_record_and_about_size_points() -> None:
    """Per-record k-means: about ``size`` centroids, clusters in proportion to each record's beats (at least
    one each), deterministic for a seed; ``None`` or a size above the count leaves the codes as they are."""
    from genforge.ecg.models import condense_reference

    rng = np.random.default_rng(0)
    sizes = {"a": 900, "b": 90, "c": 10}
    codes = np.concatenate([rng.normal(i * 10.0, 1.0, (n, 3)) for i, n in enumerate(sizes.values())])
    codes = codes.astype(np.float32)
    records = np.repeat(list(sizes), list(sizes.values()))
    assert condense_reference(codes, records, None) is codes
    assert condense_reference(codes, records, 5000) is codes
    small = condense_reference(codes, records, 100, seed=3)
    assert len(small) == 90 + 9 + 1 and small.dtype == np.float32
    for i in range(3):  # every record (cluster of codes around i * 10) keeps its own centroids
        near = np.abs(small[:, 0] - i * 10.0) < 5
        assert near.sum() == list(sizes.values())[i] // 10
    np.testing.assert_array_equal(small, condense_reference(codes, records, 100, seed=3))
    assert len(condense_reference(codes, None, 100)) == 100  # no record names: one k-means over all
    with pytest.raises(GenforgeError, match="shape_reference_size"):
        ECGAnomalyDetector(shape_reference_size=0)._validate_params()


def test_condensed_reference_and_version7_checkpoints(small_beats, tmp_path) -> None:
    """The default detector searches a condensed shape reference and its fast ``anomaly_score`` (no VAE)
    equals ``score_parts``' score; a state-version-7 checkpoint (every training beat, 5th neighbour) loads
    with those settings and scores as it did."""
    train = small_beats[small_beats["record"].isin(TRAIN_RECORDS) & (small_beats["aami"] == "N")]
    train = train.reset_index(drop=True)
    test = small_beats[small_beats["record"] == TEST_RECORD].reset_index(drop=True)
    det = ECGAnomalyDetector(max_steps=20, max_train_beats=1500, timing_k=5, calibration_folds=0)
    det.set_params(shape_reference_size=300).fit(train)
    assert 290 <= len(det.shape_reference_) <= 310 and det.shape_k == 1
    parts = det.score_parts(test)
    np.testing.assert_allclose(det.anomaly_score(test), parts["score"], rtol=1e-9)
    assert metrics(parts["pca_knn"].to_numpy(), test["aami"].to_numpy())["per_class_auroc"]["V"] > 0.95
    old = clone(det).set_params(shape_reference_size=None, shape_k=5).fit(train)
    assert len(old.shape_reference_) == 1500
    expected = old.score_parts(test)
    old.save(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["extra"]["state_version"] = 7
    del config["extra"]["params"]["shape_reference_size"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    back = ECGAnomalyDetector.load(tmp_path)
    assert back.shape_reference_size is None and back.shape_k == 5
    np.testing.assert_allclose(back.score_parts(test).to_numpy(), expected.to_numpy(), rtol=1e-5, atol=1e-5)


def test_patient_bootstrap_threshold_is_the_lowest_that_keeps_the_bound() -> None:
    """A few patients with many high scores: the pooled quantile flags ``target_far`` of the pooled beats,
    the bootstrap bound sets a higher threshold, the lowest at which the bound is within the target."""
    rng = np.random.default_rng(0)
    records = np.array([f"r{i}" for i in range(12)])
    score = np.concatenate([rng.normal(0, 1 + 2 * (i < 2), 500) for i in range(12)])
    owner = np.repeat(records, 500)
    det = ECGAnomalyDetector(target_far=0.01, calibration_bound=0.95)
    threshold, upper = det._patient_bound_threshold(score, owner, records, draws=300)
    assert upper <= 0.01 and threshold > np.quantile(score, 0.99)
    assert np.mean(score > threshold) < 0.01
    # lowest such threshold: the bootstrap's own draws (seed + 2) put the next lower score above the target
    draw = np.random.default_rng(det.seed + 2).integers(0, len(records), (300, len(records)))
    counts = np.stack([np.bincount(d, minlength=len(records)) for d in draw])
    below = np.max(score[score < threshold])
    alarms = np.array([np.sum(score[owner == r] > below) for r in records])
    assert np.quantile(counts @ alarms / (counts @ np.full(len(records), 500.0)), 0.95) > 0.01
    looser = det.set_params(calibration_bound=0.5)._patient_bound_threshold(score, owner, records, draws=300)
    assert looser[0] < threshold
    with pytest.raises(GenforgeError, match="calibration_bound"):
        ECGAnomalyDetector(calibration_bound=1.0)._validate_params()
