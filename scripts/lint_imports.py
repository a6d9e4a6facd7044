"""Check the import layers with import-linter (contracts in pyproject.toml, ``[tool.importlinter]``).

``genforge`` is one import namespace assembled from several folders (``shared/``, ``suites/<suite>/``,
``dashboards/``, see ``[tool.setuptools] package-dir``), which import-linter cannot walk in place: this
script copies the Python files into that namespace's layout in a temporary folder and runs
``lint-imports`` there. It also fails when a core module is missing from the "core" contract, so a new
core module cannot escape the check.

    python scripts/lint_imports.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def assemble(target: Path, package_dirs: dict[str, str]) -> None:
    """Copy every mapped package folder's ``.py`` files to ``target/<package path>``."""
    for package, folder in sorted(package_dirs.items()):
        dest = target.joinpath(*package.split("."))
        dest.mkdir(parents=True, exist_ok=True)
        for source in (ROOT / folder).rglob("*.py"):
            rel = source.relative_to(ROOT / folder)
            if rel.parts[0] in {"__pycache__"}:
                continue
            # sub-folders that are themselves mapped packages are copied from their own entry
            if len(rel.parts) > 1 and f"{package}.{rel.parts[0]}" in package_dirs:
                continue
            out = dest / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, out)


def unlisted_core_modules(config: dict, core_folder: Path) -> list[str]:
    """Core modules (files and sub-packages of ``shared/``) that the "core" contract does not name."""
    contract = next(c for c in config["tool"]["importlinter"]["contracts"] if c["id"] == "core")
    listed = set(contract["source_modules"])
    found = {f"genforge.{p.stem}" for p in core_folder.glob("*.py") if p.name != "__init__.py"}
    found |= {f"genforge.{p.name}" for p in core_folder.iterdir() if (p / "__init__.py").is_file()}
    return sorted(found - listed)


def main() -> int:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    missing = unlisted_core_modules(config, ROOT / "shared")
    if missing:
        print(f"pyproject.toml [tool.importlinter] contract 'core': add {', '.join(missing)} to its modules")
        return 1
    package_dirs = config["tool"]["setuptools"]["package-dir"]
    with tempfile.TemporaryDirectory() as tmp:
        assemble(Path(tmp), package_dirs)
        env = {**os.environ, "PYTHONPATH": tmp}
        exe = Path(sys.executable).with_name("lint-imports")
        cmd = [str(exe) if exe.exists() else "lint-imports", str(ROOT / "pyproject.toml"), "--no-cache"]
        return subprocess.call(cmd, cwd=tmp, env=env)


if __name__ == "__main__":
    sys.exit(main())
