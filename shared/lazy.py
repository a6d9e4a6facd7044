"""Lazy public names for packages: ``import genforge`` (and a suite) stays fast, so the CLI starts
quickly, while ``from genforge.ecg import ECGAnomalyDetector`` still works."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_getattr(package: str, exports: dict[str, str], namespace: dict[str, Any]) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` (PEP 562) that imports each public name on first use.

    ``exports`` maps a public name to ``"module"`` (same attribute name) or ``"module:attribute"``;
    the value is cached in ``namespace`` (the package's ``globals()``) after the first lookup.
    """

    def __getattr__(name: str) -> Any:
        target = exports.get(name)
        if target is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, attribute = target.partition(":")
        value = getattr(importlib.import_module(module), attribute or name)
        namespace[name] = value
        return value

    return __getattr__
