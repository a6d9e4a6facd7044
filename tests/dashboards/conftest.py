"""Dashboard test data: a results folder shaped like the output of `genforge demo`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def write_results(root: Path, name: str = "demo-20260101-000000") -> Path:
    """A results folder shaped like `genforge demo` output: metrics.json, a PNG grid, a text sample."""
    run = root / name
    (run / "vae").mkdir(parents=True)
    (run / "transformer").mkdir()
    pixels = (np.random.default_rng(0).random((40, 40)) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(run / "vae/samples.png")
    (run / "transformer/samples.txt").write_text("HAMLET.\nTo be, or not to be")
    metrics = {
        "created": "2026-01-01T00:00:00", "quick": True, "seconds_total": 1.0,
        "digit_classifier": {"real_heldout_accuracy": 0.98, "heldout": 450},
        "families": {
            "vae": {"status": "ok", "dataset": "digits", "metric": "intended-class accuracy of samples",
                    "value": 0.87, "baseline": 0.1, "steps": 10, "train_seconds": 0.5,
                    "samples": "vae/samples.png"},
            "transformer": {"status": "ok", "dataset": "shakespeare", "metric": "validation loss",
                            "value": 2.1, "baseline": 3.2, "steps": 10, "train_seconds": 0.5,
                            "samples": "transformer/samples.txt"},
        },
        "suites": {"ecg": {"status": "ok", "metrics": {"auroc": 0.9}}},
        "failures": [],
    }
    (run / "metrics.json").write_text(json.dumps(metrics))
    return run


@pytest.fixture
def make_results():
    """``make_results(root, name=...) -> Path``: write a fake demo results folder under ``root``."""
    return write_results
