"""The suite contract: what an industry suite is, as code the core can check and use.

A suite (``genforge.ecg``, ``genforge.finance``, ...) describes itself with one :class:`Suite` and
registers it under the entry-point group ``genforge.suites``::

    [project.entry-points."genforge.suites"]
    ecg = "genforge.ecg:SUITE"

Everything that lists suites — ``genforge info``, ``genforge demo``, the ``genforge <suite>`` sub-commands,
the dashboard's pages, the contract test — reads these descriptors, so the core never imports a suite
or a page by name. The descriptor holds import paths as strings (``"module:attribute"``), resolved only
when used, so reading it costs nothing: ``genforge --help`` stays fast and a suite whose heavy modules
fail to import still shows up, with the reason.

The demo function a suite names must have the signature ``run_demo(out_dir: Path, quick: bool) ->
dict`` : train and evaluate on data that ships with a registry package (never downloads, never the team's
reference data), write everything under ``out_dir``, and return a flat dict of headline metrics.
``quick=True`` must finish in well under a minute on 2 CPU cores (the contract test runs it).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

ENTRY_POINT_GROUP = "genforge.suites"
APP_GROUP = "genforge.apps"  # the dashboard registers its launcher here


def resolve(target: str) -> Any:
    """Import ``"package.module:attribute"`` (or a plain module path) and return the object."""
    module, _, attribute = target.partition(":")
    obj: Any = importlib.import_module(module)
    for part in filter(None, attribute.split(".")):
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class Suite:
    """One industry suite, as the core and the dashboard see it.

    ``name`` is both the CLI sub-command (``genforge <name>``) and the package (``genforge.<name>``).
    ``cli``, ``demo`` and ``estimators`` are ``"module:attribute"`` paths; ``page`` is the module path of
    its Streamlit page (a file in ``genforge.dashboards``, found without importing it); ``readme`` is the
    suite's README, relative to its package folder. ``models`` lists the modules whose
    ``@register_model`` classes the suite's checkpoints use, so loading a checkpoint imports only
    modules that a suite declared, never one named inside the checkpoint file.
    """

    name: str
    title: str
    summary: str
    cli: str
    demo: str
    estimators: tuple[str, ...]
    page: str | None = None
    icon: str | None = None
    readme: str = "README.md"
    models: tuple[str, ...] = field(default_factory=tuple)

    @property
    def package(self) -> str:
        return f"genforge.{self.name}"

    def load_cli(self) -> Any:
        """The suite's ``typer.Typer`` app."""
        return resolve(self.cli)

    def demo_function(self) -> Callable[..., dict[str, Any]]:
        return resolve(self.demo)

    def run_demo(self, out_dir: Path, quick: bool = False) -> dict[str, Any]:
        """Run the suite's demo into ``out_dir``; returns its headline metrics."""
        return dict(self.demo_function()(Path(out_dir), quick=quick) or {})

    def estimator_classes(self) -> list[type]:
        return [resolve(path) for path in self.estimators]

    def readme_path(self) -> Path:
        """The suite's README file (found from the package's location, the package is not imported)."""
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise LookupError(f"suite {self.name!r}: package {self.package} not found")
        return Path(next(iter(spec.submodule_search_locations))) / self.readme


@dataclass
class SuiteStatus:
    """A registered suite and whether its descriptor loaded (``error`` says why not)."""

    name: str
    suite: Suite | None
    error: str | None = None


def discover() -> list[SuiteStatus]:
    """Every entry point of ``genforge.suites``, sorted by name; a broken one is reported, not raised."""
    found = []
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            suite = ep.load()
            if not isinstance(suite, Suite):
                raise TypeError(f"{ep.value} is a {type(suite).__name__}, expected a genforge.suite.Suite")
            if suite.name != ep.name:
                raise ValueError(f"{ep.value} describes suite {suite.name!r}, registered as {ep.name!r}")
            found.append(SuiteStatus(ep.name, suite))
        except Exception as exc:  # noqa: BLE001 - a broken plug-in is reported, never fatal
            found.append(SuiteStatus(ep.name, None, f"{type(exc).__name__}: {exc}"))
    return found


def installed_suites() -> dict[str, Suite]:
    """Name -> :class:`Suite` for every suite whose descriptor loads."""
    return {s.name: s.suite for s in discover() if s.suite is not None}


def suite_model_modules() -> list[str]:
    """The modules that installed suites declare as holding their checkpoint model classes."""
    return [module for suite in installed_suites().values() for module in suite.models]


def app_launcher(name: str = "dashboard") -> Callable[[], Path] | None:
    """The function an app (the dashboard) registered under ``genforge.apps`` to give its script path."""
    for ep in entry_points(group=APP_GROUP):
        if ep.name == name:
            return ep.load()
    return None


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)
