"""SIGKILL a `genforge train` run after its first checkpoint; the same command resumes and finishes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from genforge.checkpoints import load_extra

STEPS, EVERY = 200, 10


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")
def test_sigkill_then_rerun_resumes_and_finishes(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "genforge", "train", "vae", "--dataset", "digits", "--out", str(out),
           "--steps", str(STEPS), "--checkpoint-every", str(EVERY), "--no-progress", "--device", "cpu"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    state = out / "trainer_state.safetensors"

    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not state.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, f"training ended before it could be killed: {proc.communicate()}"
    assert state.exists(), "no checkpoint appeared within 240 s"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    match = re.search(r"resuming from step (\d+)", rerun.stdout)
    assert match, rerun.stdout
    resumed = int(match.group(1))
    assert resumed > 0 and resumed % EVERY == 0 and resumed < STEPS
    assert f"trained vae on digits: {STEPS} steps" in rerun.stdout
    assert load_extra(out)["trainer"]["step"] == STEPS
    assert load_extra(out)["family"] == "vae"  # the final model carries what `genforge sample` needs
