"""Helpers for the dashboard shell: the suites' pages and the latest demo results.

Pages are found through the suite descriptors (``genforge.suite``): each suite names the module of its
page, which lives in ``genforge.dashboards.views`` (not ``pages/``, so Streamlit's own folder discovery
never shows a second, unstyled page list). Kept free of Streamlit and torch imports so that discovery
is cheap and testable on its own.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
VIEWS_DIR = HERE / "views"
HOME = VIEWS_DIR / "home.py"
RESULTS_ENV = "GENFORGE_RESULTS"


@dataclass
class PageInfo:
    path: Path
    title: str
    icon: str | None
    suite: str = ""


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


def module_file(module: str) -> Path | None:
    """The file of ``module`` without importing it (None when it does not exist)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    return Path(spec.origin) if spec is not None and spec.origin else None


def discover_pages() -> list[PageInfo]:
    """The page of every installed suite that names one, in suite-name order.

    Title and icon come from the suite descriptor; a page module may override them with module-level
    ``TITLE`` / ``ICON`` strings (read with ``ast``, nothing is imported).
    """
    from genforge.suite import installed_suites

    pages = []
    for suite in installed_suites().values():
        path = module_file(suite.page) if suite.page else None
        if path is None or not path.is_file():
            continue
        consts = page_constants(path)
        pages.append(PageInfo(path, consts.get("TITLE") or suite.title, consts.get("ICON") or suite.icon,
                              suite.name))
    return pages


def installed_suites() -> list[dict[str, str]]:
    """Every registered suite, whether it loaded, and whether it has a page (for the Home page)."""
    from genforge.suite import discover

    rows = []
    for status in discover():
        suite = status.suite
        has_page = bool(suite and suite.page and module_file(suite.page))
        rows.append({"suite": status.name, "command": f"genforge {status.name}",
                     "what": suite.summary if suite else f"not loaded: {status.error}",
                     "page": "yes" if has_page else "none"})
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
