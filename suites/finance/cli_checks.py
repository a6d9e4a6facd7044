"""Checks on command-line options shared by the finance commands: each bad option is one
:class:`~genforge.errors.GenforgeError` line, raised before any work, so a failed command leaves
no file behind."""

from __future__ import annotations

from pathlib import Path

from genforge.errors import GenforgeError

TABLE_SUFFIXES = {".csv", ".parquet", ".pq"}


def table_out(path: Path, option: str = "--out") -> None:
    """``path`` must name a CSV or Parquet file (not a folder)."""
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise GenforgeError(f"{option} {path}: unknown table type {path.suffix!r}; expected .csv or .parquet")
    if path.is_dir():
        raise GenforgeError(f"{option} {path}: is a folder; expected a file name")


def dir_out(path: Path, option: str = "--out") -> None:
    """``path`` must be a folder or not exist yet."""
    if path.exists() and not path.is_dir():
        raise GenforgeError(f"{option} {path}: is a file; expected a folder")


def json_out(path: Path | None) -> None:
    """``path`` (optional) must name a ``.json`` file."""
    if path is not None and (path.is_dir() or path.suffix.lower() != ".json"):
        raise GenforgeError(f"--json {path}: expected a .json file name")


def positive(name: str, value: int) -> None:
    if value < 1:
        raise GenforgeError(f"{name} {value}: expected a positive number")


def one_thread() -> None:
    """One torch thread: the machines are shared and one thread does not spin (ENVIRONMENT.md)."""
    import torch

    torch.set_num_threads(1)
