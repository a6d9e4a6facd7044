"""Reliability corpus, kill -9: training, batch scoring, and a kill inside the final merge (subprocesses)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import ecg_csv

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")
ENV = dict(os.environ, OMP_NUM_THREADS="1")


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not ready() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, f"ended before it could be killed: {proc.communicate()}"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def test_kill_training_on_time_checkpoint_then_resume(table_csv, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "genforge", "train", "vae", "--dataset", str(table_csv), "--out", str(out),
           "--steps", "600", "--batch-size", "32", "--checkpoint-seconds", "0.2", "--no-progress",
           "--device", "cpu"]
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _kill_when(proc, lambda: (out / "trainer_state.safetensors").exists())  # written by time, not by steps
    rerun = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert "resuming from step" in rerun.stdout and "600 steps" in rerun.stdout


def _score_cmd(paths, model, out):
    return [sys.executable, "-m", "genforge", "ecg", "score", *map(str, paths), "--model", str(model),
            "--out", str(out), "--fs", "360"]


@pytest.fixture
def csv_records(sim_records, tmp_path) -> list[Path]:
    return [ecg_csv(tmp_path / "in" / f"r{i}.csv", sim_records / ("SIMULATED_a" if i % 2 else "SIMULATED_b"),
                    seconds=60) for i in range(3)]


def test_kill_batch_scoring_then_resume(csv_records, ecg_model, tmp_path):
    out = tmp_path / "o" / "s.parquet"
    proc = subprocess.Popen(_score_cmd(csv_records, ecg_model, out), env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _kill_when(proc, lambda: bool(list(out.parent.glob("*.parts/*/*.parquet"))))
    assert not out.exists()
    rerun = subprocess.run(_score_cmd(csv_records, ecg_model, out), env=ENV, capture_output=True, text=True,
                           timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    table = pd.read_parquet(out)
    assert set(table["record"]) == {"r0", "r1", "r2"}
    assert not table.duplicated(["record", "sample"]).any()
    assert not list(out.parent.glob("*.parts"))


# a kill -9 of this very process at a chosen point of the final merge
_KILL_IN = textwrap.dedent("""
    import os, signal, sys
    import genforge.ecg.scoring as scoring
    where = sys.argv[1]
    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)
    if where == "annotations":
        scoring.write_annotations = die  # after the table is in place
    else:
        original = scoring.write_table_atomic
        def table(path, frame):
            if str(path).endswith("s.parquet"):
                die()
            return original(path, frame)
        scoring.write_table_atomic = table
    from genforge.cli import main
    sys.exit(main(sys.argv[2:]))
""")


@pytest.mark.parametrize("where", ["table", "annotations"])
def test_kill_during_final_merge_then_rerun(csv_records, ecg_model, tmp_path, where):
    out = tmp_path / "o" / "s.parquet"
    args = _score_cmd(csv_records[:2], ecg_model, out)[3:]
    proc = subprocess.run([sys.executable, "-c", _KILL_IN, where, *args], env=ENV, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL
    assert out.exists() == (where == "annotations")  # the table is written whole or not at all
    assert list(out.parent.glob("*.parts"))  # the finished parts survive the kill
    rerun = subprocess.run(_score_cmd(csv_records[:2], ecg_model, out), env=ENV, capture_output=True,
                           text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert "0 scored now by this process, 2 already done" in rerun.stdout
    table = pd.read_parquet(out)
    assert set(table["record"]) == {"r0", "r1"} and not table.duplicated(["record", "sample"]).any()
    assert not list(out.parent.glob("*.parts")) and not list(out.parent.glob(".*.tmp"))
