"""Helpers for the reliability corpus: run the real CLI in-process, assert one clean error, snapshot folders.

Every case asserts the exit code, one ``error: ...`` line naming the file/option and what was expected,
no traceback, and that nothing was left behind (or the previous output is untouched).
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genforge.cli import main


@dataclass
class Result:
    rc: int
    out: str
    err: str


@pytest.fixture
def cli(capsys):
    """Run ``genforge ARGS`` in-process; returns the exit code and captured output."""

    def run(*argv: object) -> Result:
        capsys.readouterr()
        rc = main([str(a) for a in argv])
        captured = capsys.readouterr()
        return Result(rc, captured.out, captured.err)

    return run


def error_lines(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if ln.startswith("error:")]


def refused(result: Result, *needles: str, rc: int = 2) -> str:
    """Exit code ``rc``, exactly one ``error:`` line holding every needle, no traceback; returns the line."""
    lines = error_lines(result.err)
    assert result.rc == rc, (result.rc, result.err)
    assert "Traceback" not in result.err and "Traceback" not in result.out, result.err
    assert len(lines) == 1, result.err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def snapshot(folder: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under ``folder`` (dotfiles included)."""
    if not folder.exists():
        return {}
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="session")
def table_csv(tmp_path_factory) -> Path:
    """A small numeric table (300 rows, 3 columns): `genforge train vae` on it takes a second."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=300)
    frame = pd.DataFrame({"x": a, "y": 2 * a + rng.normal(0, 0.3, 300), "z": rng.normal(size=300)})
    path = tmp_path_factory.mktemp("table") / "table.csv"
    frame.to_csv(path, index=False)
    return path


TRAIN = ("--steps", "4", "--batch-size", "32", "--no-progress", "--device", "cpu")


@pytest.fixture(scope="session")
def core_run(table_csv, tmp_path_factory) -> Path:
    """A finished `genforge train vae` folder (copy it before changing it)."""
    out = tmp_path_factory.mktemp("core") / "run"
    assert main(["train", "vae", "--dataset", str(table_csv), "--out", str(out), *TRAIN]) == 0
    return out


@pytest.fixture
def own_run(core_run, tmp_path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(core_run, target)
    return target


@pytest.fixture(scope="session")
def sim_records(tmp_path_factory) -> Path:
    """Two SIMULATED WFDB records (3 minutes each) in one folder."""
    from genforge.ecg.simulate import simulate_record

    folder = tmp_path_factory.mktemp("sim")
    simulate_record(folder, "SIMULATED_a", minutes=3.0, seed=1)
    simulate_record(folder, "SIMULATED_b", minutes=3.0, seed=2, patient_seed=1)
    return folder


@pytest.fixture(scope="session")
def ecg_model(sim_records, tmp_path_factory) -> Path:
    """A tiny ECG detector fitted on the normal beats of one SIMULATED record."""
    import torch

    from genforge.ecg.data import read_record
    from genforge.ecg.models import ECGAnomalyDetector
    from genforge.ecg.preprocess import beat_table

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    beats = beat_table(read_record(sim_records / "SIMULATED_a"), peaks="detect")
    normal = beats[beats["aami"] == "N"].reset_index(drop=True)
    det = ECGAnomalyDetector(max_steps=30, batch_size=32, target_far=0.05).fit(normal)
    torch.set_num_threads(threads)
    folder = tmp_path_factory.mktemp("ecgmodel") / "model"
    det.save(folder)
    return folder


def ecg_csv(path: Path, record: Path, seconds: float | None = None) -> Path:
    """One lead of a WFDB record as a CSV signal (MLII column); pass --fs 360 when scoring it."""
    import wfdb

    rec = wfdb.rdrecord(str(record), channels=[0])
    x = rec.p_signal[:, 0]
    if seconds is not None:
        x = x[: int(seconds * rec.fs)]
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"MLII": x}).to_csv(path, index=False)
    return path
