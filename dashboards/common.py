"""Helpers for the dashboard shell: page discovery and finding the latest demo results.

Kept free of Streamlit and torch imports so that discovery is cheap and testable on its own.
"""

from __future__ import annotations

import ast
import json
import os
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PAGES_DIR = HERE / "pages"
HOME = PAGES_DIR / "home.py"
RESULTS_ENV = "GENFORGE_RESULTS"


@dataclass
class PageInfo:
    path: Path
    title: str
    icon: str | None


def page_constants(path: Path) -> dict[str, str]:
    """Module-level string constants TITLE / ICON of a page, read with ``ast`` (nothing is imported)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return {}
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id in {"TITLE", "ICON"}:
            if isinstance(value, ast.Constant) and isinstance(value.value, str) and value.value.strip():
                found[target.id] = value.value
    return found


def discover_pages(pages_dir: Path = PAGES_DIR) -> list[PageInfo]:
    """Every ``pages/*.py`` except home and private modules, sorted by file name."""
    pages = []
    for path in sorted(pages_dir.glob("*.py")):
        if path.stem == "home" or path.name.startswith("_"):
            continue
        consts = page_constants(path)
        title = consts.get("TITLE") or path.stem.replace("_", " ").title()
        pages.append(PageInfo(path, title, consts.get("ICON")))
    return pages


def installed_suites() -> list[dict[str, str]]:
    """Suites registered in entry point group ``genforge.suites`` and whether each has a page."""
    rows = []
    for ep in sorted(entry_points(group="genforge.suites"), key=lambda e: e.name):
        rows.append({"suite": ep.name, "command": f"genforge {ep.name}", "module": ep.module,
                     "page": "yes" if (PAGES_DIR / f"{ep.name}.py").is_file() else "not yet"})
    return rows


def results_root() -> Path:
    """``$GENFORGE_RESULTS`` or ``./genforge-results``: where ``genforge demo`` writes by default."""
    return Path(os.environ.get(RESULTS_ENV, "genforge-results")).expanduser()


def result_runs(root: Path | None = None) -> list[Path]:
    """Folders holding a metrics.json (the root itself or its sub-folders), newest first."""
    root = root if root is not None else results_root()
    if not root.is_dir():
        return []
    runs = [p.parent for p in root.glob("*/metrics.json")]
    if (root / "metrics.json").is_file():
        runs.append(root)
    return sorted(runs, key=lambda p: ((p / "metrics.json").stat().st_mtime, p.name), reverse=True)


@dataclass
class DemoRun:
    """One demo results folder, read for display."""

    path: Path
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def family_rows(self) -> list[dict[str, Any]]:
        rows = []
        for family, row in self.metrics.get("families", {}).items():
            rows.append({"family": family, "status": row.get("status"), "data": row.get("dataset"),
                         "metric": row.get("metric", row.get("error", "")), "value": row.get("value"),
                         "baseline": row.get("baseline"), "diversity": row.get("diversity"),
                         "steps": row.get("steps"),
                         "train s": row.get("train_seconds")})
        return rows

    def images(self) -> list[tuple[str, Path]]:
        """(family, PNG path) of each family's samples that exist on disk."""
        return [(f, self.path / row["samples"]) for f, row in self.metrics.get("families", {}).items()
                if str(row.get("samples", "")).endswith(".png") and (self.path / row["samples"]).is_file()]

    def texts(self) -> list[tuple[str, str]]:
        out = []
        for family, row in self.metrics.get("families", {}).items():
            path = self.path / str(row.get("samples", ""))
            if path.suffix == ".txt" and path.is_file():
                out.append((family, path.read_text(encoding="utf-8", errors="replace")[:2000]))
        return out


def read_run(path: Path) -> DemoRun:
    """Read ``path/metrics.json``; a broken file gives a DemoRun with ``error`` set, never an exception."""
    try:
        metrics = json.loads((path / "metrics.json").read_text(encoding="utf-8"))
        if not isinstance(metrics, dict):
            raise ValueError("expected a JSON object")
    except (OSError, ValueError) as exc:
        return DemoRun(path, {}, f"{path / 'metrics.json'}: unreadable ({exc})")
    return DemoRun(path, metrics)
