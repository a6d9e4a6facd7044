"""Shared fixtures: where the team's reference data lives, and small deterministic settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def reference_data_dir() -> Path:
    """``$GENFORGE_DATA`` or ``../shared/data`` beside the project (the team's reference folder)."""
    override = os.environ.get("GENFORGE_DATA")
    return Path(override) if override else ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The reference data folder; tests that need it are skipped with the reason when it is absent."""
    path = reference_data_dir()
    if not path.is_dir():
        pytest.skip(f"reference data not found at {path} (set GENFORGE_DATA to its folder)")
    return path


@pytest.fixture(autouse=True)
def _torch_threads():
    """One torch thread: CI has 2 cores, and spinning threads make small models erratically slow
    when anything else runs (ENVIRONMENT.md measured a 29x slowdown with 2 threads under load)."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
