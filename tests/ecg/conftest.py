"""ECG test fixtures: a few MIT-BIH records and one small detector trained once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

TRAIN_RECORDS = ["100", "101"]
TEST_RECORD = "119"  # many premature ventricular beats


@pytest.fixture(scope="session")
def mitdb(shared_data: Path) -> Path:
    path = shared_data / "mitdb"
    if not (path / "100.hea").is_file():
        pytest.skip(f"MIT-BIH records not found in {path}")
    return path


@pytest.fixture(scope="session")
def beat_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ecg-cache")


@pytest.fixture(scope="session")
def small_beats(mitdb: Path, beat_cache: Path):
    """Reference-position beats of the train records and the test record (cached for the session)."""
    from genforge.ecg import load_beats

    return load_beats(
        mitdb, [*TRAIN_RECORDS, TEST_RECORD], peaks="reference", cache_dir=beat_cache, progress=False
    )


@pytest.fixture(scope="session")
def small_model(small_beats, tmp_path_factory: pytest.TempPathFactory):
    """A small MLP-VAE detector fitted on the normal beats of two records, saved to a folder."""
    import torch

    from genforge.ecg import ECGAnomalyDetector

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: steady on shared cores (see ENVIRONMENT.md)
    train = small_beats[small_beats["record"].isin(TRAIN_RECORDS) & (small_beats["aami"] == "N")]
    det = ECGAnomalyDetector(
        architecture="mlp", max_steps=150, batch_size=128, target_far=0.02, max_train_beats=3000
    ).fit(train.reset_index(drop=True))
    torch.set_num_threads(threads)
    folder = tmp_path_factory.mktemp("ecg-model")
    det.save(folder)
    return det, folder


@pytest.fixture(autouse=True)
def _one_thread():
    """ECG tests run torch on one thread: small models gain nothing from two, and spin when cores are busy."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
