"""The protocols outside plain MIT-BIH, on a few records: another sampling rate, added noise, any database."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from genforge.ecg import metrics
from genforge.ecg.evaluate import ablation_pca_knn, evaluate, format_table
from genforge.ecg.protocols import noise_segments, noisy_beats, resampled_beats

from .conftest import TEST_RECORD, TRAIN_RECORDS


@pytest.fixture(scope="module")
def nstdb(mitdb: Path) -> Path:
    path = mitdb.parent / "nstdb"
    if not (path / "em.hea").is_file():
        pytest.skip(f"MIT-BIH Noise Stress Test records not found in {path}")
    return path


def test_resampled_record_keeps_every_beat_and_its_class(small_model, small_beats, mitdb: Path) -> None:
    det, _ = small_model
    original = small_beats[small_beats["record"] == TEST_RECORD].reset_index(drop=True)
    at128 = resampled_beats(mitdb, [TEST_RECORD], 128.0, cache_dir=False)
    assert len(at128) == len(original) and (at128["aami"].to_numpy() == original["aami"].to_numpy()).all()
    # the annotations were mapped to the 128 Hz grid and realigned on the R peak: beat times agree within
    # 20 ms (the 128 Hz grid plus the peak search), where an unmapped annotation would be seconds off
    assert np.abs(at128["time_s"].to_numpy() - original["time_s"].to_numpy()).max() < 0.02
    assert metrics(det.anomaly_score(at128), at128["aami"].to_numpy())["per_class_auroc"]["V"] > 0.95


def test_noise_is_added_in_the_stress_layout_at_the_asked_snr(mitdb: Path, nstdb: Path) -> None:
    on = noise_segments(360 * 60 * 10, 360.0)
    minute = 60 * 360
    assert not on[: 5 * minute].any() and on[5 * minute : 7 * minute].all()
    assert not on[7 * minute : 9 * minute].any() and on[9 * minute :].all()
    mild = noisy_beats(mitdb, [TEST_RECORD], nstdb, "em", 24.0, cache_dir=False)
    heavy = noisy_beats(mitdb, [TEST_RECORD], nstdb, "em", 0.0, cache_dir=False)
    assert len(mild) == len(heavy) > 500  # the beats of the noisy segments only
    assert on[np.minimum(mild["sample"].to_numpy(), len(on) - 1)].all()
    assert np.median(heavy["noise"]) > 3 * np.median(mild["noise"])  # 24 dB apart: 16x in amplitude
    # ds1-cv-noise reads the noise recording from half-way: the same beats, other noise
    shifted = noisy_beats(mitdb, [TEST_RECORD], nstdb, "em", 0.0, cache_dir=False, offset_s=900.0)
    assert len(shifted) == len(heavy) and (shifted["aami"].to_numpy() == heavy["aami"].to_numpy()).all()
    assert not np.allclose(shifted["w_060"].to_numpy(), heavy["w_060"].to_numpy(), atol=1e-3)


def test_ablation_and_external_protocol(small_model, small_beats, mitdb: Path, tmp_path: Path) -> None:
    det, model = small_model
    train = small_beats[small_beats["record"].isin(TRAIN_RECORDS) & (small_beats["aami"] == "N")]
    test = small_beats[small_beats["record"] == TEST_RECORD].reset_index(drop=True)
    ablation = ablation_pca_knn(det, train.reset_index(drop=True), test)
    assert metrics(ablation, test["aami"].to_numpy())["per_class_auroc"]["V"] > 0.95
    folder = tmp_path / "hospital"
    folder.mkdir()
    for ext in ("hea", "dat", "atr"):
        shutil.copy(mitdb / f"{TEST_RECORD}.{ext}", folder / f"{TEST_RECORD}.{ext}")
    (folder / "unannotated.hea").write_text("unannotated 1 360 10\n")  # not part of the report
    result = evaluate(folder, protocol="external", model=model, cache_dir=False, log=lambda m: None)
    assert result["n_records"] == 1 and 0.98 < result["coverage"] <= 1.0
    assert result["per_class_auroc"]["V"] > 0.95 and set(result["sensitivity_at_far"]) == {"0.01", "0.05"}
    assert "coverage of reference beats" in format_table(result)
    with pytest.raises(Exception, match="--model"):
        evaluate(folder, protocol="external", cache_dir=False)


def test_vae_ablation_and_the_ds1_noise_report(small_model, small_beats) -> None:
    """The VAE column is the detector's score with the VAE's shape term in place of its own; the
    ds1-cv-noise table names held-out DS1 (not DS2) and shows the clean folds beside the noisy ones."""
    from genforge.ecg.evaluate import ablation_vae

    det, _ = small_model
    test = small_beats[small_beats["record"] == TEST_RECORD].reset_index(drop=True)
    aami = test["aami"].to_numpy()
    parts = det.score_parts(test)
    z = det.standardised_parts(parts)
    vae = ablation_vae(det, test, parts)
    np.testing.assert_allclose(vae - z["vae"], det.anomaly_score(test) - z["shape"], rtol=1e-6, atol=1e-6)
    m = {**metrics(parts["score"].to_numpy(), aami), "baselines": {"vae_shape": metrics(vae, aami)}}
    result = {**m, "protocol": "ds1-cv-noise", "by_noise": {"em 6 dB": m}, "clean": m, "anchors": {}}
    table = format_table(result)
    assert "held-out DS1 + em 6 dB" in table and "without noise (ds1-cv)" in table and "DS2" not in table
