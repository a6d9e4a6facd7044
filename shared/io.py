"""Atomic file output: a reader (or a killed job) never sees a half-written file.

Everything is written to a temporary file in the destination folder and moved into place with
``os.replace``, which is atomic on POSIX and Windows. Use these helpers for every result file.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is removed."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes the file private (0600); give it the mode a plain open() would have.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return Path(path)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike[str], data: Any, indent: int = 2) -> Path:
    return write_text_atomic(path, json.dumps(data, indent=indent, sort_keys=False, default=_jsonable) + "\n")


def write_table_atomic(path: str | os.PathLike[str], frame: Any) -> Path:
    """Write a pandas DataFrame as Parquet (``.parquet``/``.pq``) or CSV (anything else), atomically."""
    target = Path(path)
    with atomic_path(target) as tmp:
        if target.suffix.lower() in {".parquet", ".pq"}:
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)
    return target


def _jsonable(value: Any) -> Any:
    """numpy/torch scalars and arrays as plain JSON values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
