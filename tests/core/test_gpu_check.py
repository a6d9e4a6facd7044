"""``benchmarks/gpu_check.py --device cpu --quick`` runs end to end, so the GPU check cannot rot.

It runs as a subprocess (as on a lent GPU: one command), with tiny sizes; on the shared 2-core CPU it
takes well under a minute. Only the structure and correctness flags are checked, never timings.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.py"


@pytest.mark.slow
def test_gpu_check_quick_on_cpu(tmp_path):
    out = tmp_path / "gpu_check.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--device", "cpu", "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    sections = result["sections"]
    assert set(sections) == {"training", "generation", "ddim", "ddp", "estimators"}
    failed = {name: sec.get("error") for name, sec in sections.items() if not sec["ok"]}
    assert not failed, failed
    training = sections["training"]
    assert {row["family"] for row in training["rows"]} == {"vae", "gan", "diffusion", "transformer"}
    assert training["transformer_step_ms"] > 0
    generation = sections["generation"]["rows"]
    assert [row["batch"] for row in generation] == [1, 8, 64]
    assert all(row["tokens_identical"] for row in generation)  # ours and HF: same greedy tokens
    assert sections["ddim"]["ours_images_per_s"] > 0
    assert sections["ddp"]["backend"] == "gloo"
    estimators = sections["estimators"]["rows"]
    assert len(estimators) >= 12 and all(row["ok"] for row in estimators), estimators  # every suite's
    env = result["environment"]
    assert env["cpu_count"] >= 1 and env["threads"] == 1
    assert {"transformers", "diffusers"} <= set(env["peers"])
