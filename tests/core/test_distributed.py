"""The distributed path for real: two Gloo processes under torchrun on the CPU.

One torchrun launch (start-up dominates) trains a regressor through DDP and a GAN through the
engine's own gradient all-reduce. Checks: both ranks end with identical weights, only rank 0 wrote
one checkpoint, a run interrupted after a checkpoint resumes to the uninterrupted run's exact
weights, and DDP with batch B per rank matches one process with batch 2B (the sampler gives the two
ranks the two halves of the same shuffled 2B samples), which shows gradients are averaged.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from engine_helpers import TinyMLP, TinyMLPConfig, regression_data

from genforge.training import TrainConfig, Trainer, distributed

HELPER = Path(__file__).with_name("engine_helpers.py")


def test_single_process_helpers() -> None:
    assert distributed.world_size() == 1 and distributed.rank() == 0 and distributed.is_main()
    assert distributed.shard(list(range(5))) == [0, 1, 2, 3, 4]
    distributed.barrier()  # no-op without a process group
    assert distributed.init() is False


def test_shard_follows_rank(monkeypatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "1")
    assert distributed.shard(list(range(8))) == [1, 4, 7]
    assert not distributed.is_main()


def test_torchrun_two_ranks_identical_weights_one_checkpoint(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"WORLD_SIZE", "RANK", "LOCAL_RANK"}}
    env["OMP_NUM_THREADS"] = "1"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(HELPER),
        "ddp",
        str(tmp_path),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]

    reports = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world_size"] == 2 for r in reports)
    assert reports[0]["mlp"] == reports[1]["mlp"]
    assert reports[0]["gan"] == reports[1]["gan"]
    assert reports[0]["best_val_loss"] == reports[1]["best_val_loss"]
    # interrupted after a checkpoint and resumed: bitwise the run that was never interrupted, because
    # every rank's RNG stream (not only rank 0's) was saved and restored
    assert reports[0]["resumed"] == reports[0]["uninterrupted"]
    assert reports[1]["resumed"] == reports[1]["uninterrupted"]
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("model.safetensors"))
    assert written == ["clean/model.safetensors", "mlp/model.safetensors", "resumed/model.safetensors"]
    assert sorted(p.name for p in (tmp_path / "mlp").iterdir()) == [
        "config.json",
        "model.safetensors",
        "trainer_state.safetensors",
    ]

    # the same fit in one process, batch 2 x 16: DDP must have averaged the gradients to match it
    torch.manual_seed(100)  # rank 0's initial weights, which the engine broadcast to rank 1
    single = TinyMLP(TinyMLPConfig())
    x, y = regression_data(n=256)
    cfg = TrainConfig(max_steps=40, batch_size=32, lr=1e-2, progress=False, device="cpu", val_every=20)
    Trainer(cfg).fit(single, (x[:192], y[:192]), val_data=(x[192:], y[192:]))
    for key, value in single.state_dict().items():
        torch.testing.assert_close(torch.tensor(reports[0]["mlp_state"][key]), value, rtol=1e-4, atol=1e-5)
