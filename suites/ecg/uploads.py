"""Uploaded files (a dashboard's file uploader, a web form) turned into one readable record.

A WFDB record arrives as several files (``.hea`` + ``.dat``, optionally ``.atr``) that must land in one
folder under their own names before ``wfdb`` can read them; a CSV/Parquet signal is one file. This module
does that pairing and its validation once, so a page only shows the message: exactly one record per
upload, a ``.dat`` without its header named, nothing written outside the store folder (an upload's
name is reduced to its bare file name).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from genforge.errors import DataError

UPLOAD_STORE = "genforge-ecg-uploads"
UPLOAD_KEEP = 8  # folders kept in the store: older uploads are deleted, not left in the temp folder


def _name_and_bytes(item: Any) -> tuple[str, bytes]:
    """``(name, bytes)`` of an uploaded file: a Streamlit ``UploadedFile`` or a ``(name, bytes)`` pair."""
    if isinstance(item, tuple) and len(item) >= 2:
        return str(item[0]), bytes(item[1])
    return str(item.name), bytes(item.getvalue())


def default_store() -> Path:
    """The temp folder's ``genforge-ecg-uploads`` (read at call time, so a changed temp folder counts)."""
    return Path(tempfile.gettempdir()) / UPLOAD_STORE


def prune_uploads(store: Path, keep: int = UPLOAD_KEEP) -> None:
    """Delete all but the ``keep`` most recently used upload folders (uploads may be large)."""
    folders = sorted((p for p in store.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    for old in folders[:-keep] if keep > 0 else folders:
        shutil.rmtree(old, ignore_errors=True)


def records_from_upload(
    files: Iterable[Any], store_dir: str | os.PathLike[str] | None = None, keep: int = UPLOAD_KEEP
) -> Path:
    """Write uploaded files into a folder of their own and return the path of the one record they make.

    ``files``: Streamlit ``UploadedFile`` objects or ``(name, bytes)`` pairs. One folder per distinct
    upload (named by a hash of the names and bytes) under ``store_dir`` (default: :func:`default_store`),
    so a repeated upload reuses its folder; only the ``keep`` most recently used folders are kept.
    Returns the WFDB record path without extension, or the CSV/Parquet file. Raises
    :class:`~genforge.errors.DataError` when the files do not make exactly one record.
    """
    items = sorted((_name_and_bytes(f) for f in files), key=lambda item: item[0])
    if not items:
        raise DataError("upload: no files; expected a .hea + .dat pair (optionally .atr) or a .csv/.parquet")
    digest = hashlib.sha256()
    for name, data in items:
        digest.update(name.encode() + data)
    store = Path(store_dir) if store_dir is not None else default_store()
    folder = store / digest.hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    os.utime(folder)  # most recently used: kept by the pruning below
    prune_uploads(store, keep=keep)
    for name, data in items:
        target = folder / Path(name).name  # the bare name: an upload cannot write elsewhere
        if not target.exists():
            target.write_bytes(data)
    heads = sorted(folder.glob("*.hea"))
    tables = sorted([*folder.glob("*.csv"), *folder.glob("*.parquet")])
    records = [h.stem for h in heads] + [t.name for t in tables]
    if len(records) > 1:
        raise DataError(f"upload: {len(records)} records ({', '.join(records)}); upload one record at a time")
    if records:
        return heads[0].with_suffix("") if heads else tables[0]
    orphans = sorted((f.suffix != ".dat", f.name) for f in folder.iterdir() if f.suffix in {".dat", ".atr"})
    if orphans:
        name = orphans[0][1]
        raise DataError(
            f"upload: {name} has no header; upload {Path(name).stem}.hea with it "
            "(a WFDB record is a .hea + .dat pair, optionally .atr)"
        )
    raise DataError("upload: expected a .hea + .dat pair (optionally .atr) or a .csv/.parquet signal")


def upload_message(exc: BaseException, record_path: Path | None) -> str:
    """An error message about an uploaded record that names the files as uploaded, not their stored copy."""
    text = str(exc)
    if record_path is not None:
        text = text.replace(str(Path(record_path).parent) + os.sep, "")
    return text
