"""Checks on command-line options shared by the finance commands: each bad option is one
:class:`~genforge.errors.GenforgeError` line, raised before any work, so a failed command leaves
no file behind."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import typer

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


def not_negative(name: str, value: int) -> None:
    if value < 0:
        raise GenforgeError(f"{name} {value}: expected 0 or more")


# options of every command that reads a price file (see genforge.finance.data.validate_prices)
DayFirstOpt = typer.Option(
    None,
    "--dayfirst/--monthfirst",
    help="How to read dates like 03/04/2020 when no day above 12 in the file decides it (such a file is "
    "refused without one of these).",
    show_default=False,
)
MaxGapOpt = typer.Option(
    10, "--max-gap-days", min=1, help="Warn about consecutive prices more than this many business days apart."
)
StrictGapsOpt = typer.Option(
    False, "--strict-gaps", help="Refuse a price file with a gap beyond --max-gap-days instead of warning."
)

# the --overwrite option of the commands that train a model into an --out folder
OverwriteOpt = typer.Option(
    False, "--overwrite", help="Replace whatever --out holds (another model, other settings)."
)


def save_model(model: Any, out: Path, command: str, job: dict[str, Any], overwrite: bool) -> None:
    """Save a trained ``model`` into the folder ``out`` as the job ``command`` with settings ``job``
    (:func:`genforge.outputs.output_job`; the command has run ``check_claim`` before training)."""
    from genforge.outputs import output_job

    with output_job(out, command, job, overwrite=overwrite, resume=False):
        model.save(out)


def read_prices(prices: str | None, **kwargs: Any) -> Any:
    """``load_prices_or_default`` with its :class:`DataWarning` s printed as ``warning: ...`` lines."""
    from genforge.finance.data import DataWarning, load_prices_or_default

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        frame = load_prices_or_default(prices, **kwargs)
    for item in caught:
        if issubclass(item.category, DataWarning):
            print(f"warning: {item.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(item.message, item.category, item.filename, item.lineno)
    return frame


def prices_source(prices: str | None) -> str:
    """What a PRICES argument names, for a job's settings: a bundled series, or the file's absolute path."""
    if prices is None or prices.lower() in ("sp500", "nasdaq"):
        return (prices or "sp500").lower()
    return str(Path(prices).resolve())
