"""Fixtures of the games tests: the VGLC reference folder (skipped when absent) and tiny rule levels."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def vglc(shared_data) -> Path:
    path = shared_data / "vglc"
    if not (path / "smb").is_dir():
        pytest.skip(f"VGLC levels not found at {path} (set GENFORGE_DATA to the reference data folder)")
    return path


@pytest.fixture(scope="session")
def smb_levels(vglc):
    from genforge.games import read_game

    return read_game(vglc / "smb", game="smb")


@pytest.fixture(scope="session")
def rule_train():
    from genforge.games import rule_levels

    return rule_levels(6, width=64, seed=11)
