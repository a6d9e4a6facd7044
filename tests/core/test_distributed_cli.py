"""`torchrun --nproc_per_node=2 -m genforge train` on CPU (Gloo): both ranks end with identical weights,
and only rank 0 writes: exactly one checkpoint, whose weights are those of the ranks."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest
import torch.distributed

import genforge


def weights_hash(model) -> str:
    """Same recipe as the CLI's GENFORGE_DEBUG_RANK_HASH output."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch built without torch.distributed")
def test_torchrun_two_ranks_identical_weights_one_checkpoint(tmp_path):
    out, hashes = tmp_path / "ddp", tmp_path / "hashes"
    env = dict(os.environ, GENFORGE_DEBUG_RANK_HASH=str(hashes), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "genforge", "train", "vae", "--dataset", "digits", "--steps", "30", "--out", str(out),
           "--no-progress", "--device", "cpu"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("trained vae on digits: 30 steps") == 1  # rank 0 reports, rank 1 is quiet

    rank_hashes = {p.name: p.read_text().strip() for p in hashes.iterdir()}
    assert sorted(rank_hashes) == ["rank0.sha256", "rank1.sha256"]
    assert rank_hashes["rank0.sha256"] == rank_hashes["rank1.sha256"]

    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    assert files == [".genforge-job.json", "config.json", "model.safetensors", "recipe.json",
                     "trainer_state.safetensors"]
    assert weights_hash(genforge.load(out)) == rank_hashes["rank0.sha256"]
