"""`genforge demo`: the quick run through the real entry point, the judges it uses, and suite demos."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import torch

import genforge
from genforge import demo, recipes
from genforge.cli import main
from genforge.datasets import load_dataset


def test_quick_demo_writes_measured_results(tmp_path):
    out = tmp_path / "demo"
    start = time.perf_counter()
    cmd = [sys.executable, "-m", "genforge", "demo", "--quick", "--no-suites", "--out", str(out)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"results: {out}" in proc.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["quick"] is True and metrics["failures"] == []
    assert metrics["digit_classifier"]["real_heldout_accuracy"] > 0.95  # the judge itself is sound
    for family in ("vae", "gan", "diffusion"):
        row = metrics["families"][family]
        assert row["status"] == "ok", row
        assert (out / row["samples"]).suffix == ".png" and (out / row["samples"]).stat().st_size > 0
        assert 0.0 <= row["sample_accuracy"] <= 1.0 and row["diversity"] >= 0.0
        assert genforge.load(out / family / "model").family == family  # samples again with `genforge sample`
    gpt = metrics["families"]["transformer"]
    assert gpt["status"] == "ok" and gpt["val_loss"] > 0
    assert abs(gpt["unigram_entropy"] - 3.34) < 0.02  # Hamlet's characters: 3.34 nats
    assert (out / gpt["samples"]).read_text().startswith("HAMLET:")
    report = (out / "report.md").read_text()
    for family in recipes.FAMILIES:
        assert f"| {family} |" in report
    print(f"genforge demo --quick: {seconds:.1f} s")


def test_digit_judge_separates_real_from_noise_and_prototypes():
    digits = load_dataset("digits")
    train, test = torch.arange(0, 1400), torch.arange(1400, len(digits))
    judge = demo.digit_classifier(digits.x[train], digits.y[train])
    assert demo.class_accuracy(judge, digits.x[test], digits.y[test]) > 0.95
    noise = torch.rand(500, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    labels = recipes.class_labels(500, 10)
    assert demo.class_accuracy(judge, noise, labels) < 0.3  # random images: near chance

    real_spread = demo.within_class_spread(digits.x, digits.y)
    prototypes = torch.stack([digits.x[digits.y == c].mean(0) for c in range(10)])[labels]
    assert demo.class_accuracy(judge, prototypes, labels) > 0.9  # class means are recognisable...
    assert demo.within_class_spread(prototypes, labels) / real_spread < 0.01  # ...but have no variety
    subset_spread = demo.within_class_spread(digits.x[train], digits.y[train])
    assert subset_spread / real_spread == pytest.approx(1, abs=0.1)


def fake_suites(tmp_path, monkeypatch):
    """Three fake suites: one demo works, one raises, one names a run_demo that does not exist."""
    (tmp_path / "fake_good.py").write_text(
        "from pathlib import Path\n"
        "def run_demo(out_dir: Path, quick: bool = False) -> dict:\n"
        "    out_dir.mkdir(parents=True, exist_ok=True)\n"
        "    (out_dir / 'done.txt').write_text(str(quick))\n"
        "    return {'auroc': 0.91, 'quick': quick}\n"
    )
    (tmp_path / "fake_bad.py").write_text(
        "def run_demo(out_dir, quick=False):\n    raise RuntimeError('no data here')\n"
    )
    (tmp_path / "fake_none.py").write_text("x = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from genforge.suite import Suite

    suites = {n: Suite(n, n, n, f"fake_{n}:app", f"fake_{n}:run_demo", ()) for n in ("bad", "good", "none")}
    monkeypatch.setattr(demo, "installed_suites", lambda: suites)


def test_suite_demos_are_run_and_failures_reported(tmp_path, monkeypatch):
    fake_suites(tmp_path, monkeypatch)
    out = tmp_path / "results"
    metrics = demo.run(out, quick=True, families=(), echo=lambda _: None)
    assert metrics["suites"]["good"] == {"status": "ok", "seconds": metrics["suites"]["good"]["seconds"],
                                         "metrics": {"auroc": 0.91, "quick": True}}
    assert (out / "good" / "done.txt").read_text() == "True"
    bad = metrics["suites"]["bad"]
    assert bad["status"] == "failed" and "no data here" in bad["error"]
    none = metrics["suites"]["none"]
    assert none["status"] == "failed" and "run_demo" in none["error"]
    assert metrics["failures"][0] == "suite bad: RuntimeError: no data here"
    report = (out / "report.md").read_text()
    assert "auroc=0.91" in report and "no data here" in report


def test_cli_demo_exits_nonzero_when_a_suite_fails(tmp_path, monkeypatch, capsys):
    fake_suites(tmp_path, monkeypatch)
    out = tmp_path / "results"
    rc = main(["demo", "--quick", "--family", "vae", "--suite", "good", "--suite", "bad", "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 1
    assert "failed: suite bad: RuntimeError: no data here" in captured.err
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["families"]) == {"vae"} and metrics["families"]["vae"]["status"] == "ok"
    assert set(metrics["suites"]) == {"good", "bad"}


def test_default_out_dir_honours_env(tmp_path, monkeypatch):
    monkeypatch.setenv("GENFORGE_RESULTS", str(tmp_path))
    path = demo.default_out_dir()
    assert path.parent == tmp_path and path.name.startswith("demo-")
