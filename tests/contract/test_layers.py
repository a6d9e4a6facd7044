"""The import layers (dashboards -> suites -> core; suites independent; pages on public names), checked
by import-linter through ``scripts/lint_imports.py`` — a violation fails the test suite, not just a lint."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "lint_imports.py"


def test_import_contracts_hold():
    if not Path(sys.executable).with_name("lint-imports").exists():
        pytest.skip("import-linter is not installed (it is in the dev extra)")
    run = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "0 broken" in run.stdout


def test_a_new_core_module_must_join_the_core_contract(tmp_path):
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        from lint_imports import unlisted_core_modules
    finally:
        sys.path.pop(0)
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (tmp_path / "__init__.py").write_text("")
    (tmp_path / "cli.py").write_text("")
    (tmp_path / "brand_new.py").write_text("")
    (tmp_path / "newpkg").mkdir()
    (tmp_path / "newpkg" / "__init__.py").write_text("")
    assert unlisted_core_modules(config, tmp_path) == ["genforge.brand_new", "genforge.newpkg"]
    assert unlisted_core_modules(config, ROOT / "shared") == []
