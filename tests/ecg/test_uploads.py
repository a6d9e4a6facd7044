"""records_from_upload: uploaded files paired into one record, or one clear message; nothing escapes."""

from __future__ import annotations

from pathlib import Path

import pytest

from genforge.ecg import read_record, records_from_upload, upload_message
from genforge.errors import DataError


def _files(mitdb: Path, name: str, exts=("hea", "dat", "atr")) -> list[tuple[str, bytes]]:
    return [(f"{name}.{ext}", (mitdb / f"{name}.{ext}").read_bytes()) for ext in exts]


def test_wfdb_files_make_one_readable_record(mitdb: Path, tmp_path: Path) -> None:
    path = records_from_upload(_files(mitdb, "100"), tmp_path / "store")
    assert path.name == "100" and path.parent.parent == tmp_path / "store"
    assert read_record(path).has_annotations
    again = records_from_upload(list(reversed(_files(mitdb, "100"))), tmp_path / "store")
    assert again == path  # the same upload reuses its folder


def test_bad_uploads_say_what_is_missing(mitdb: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    with pytest.raises(DataError, match=r"^upload: 2 records \(100, 101\); upload one record at a time$"):
        two = [*_files(mitdb, "100", ("hea", "dat")), *_files(mitdb, "101", ("hea", "dat"))]
        records_from_upload(two, store)
    with pytest.raises(DataError, match=r"^upload: 100\.dat has no header; upload 100\.hea with it"):
        records_from_upload(_files(mitdb, "100", ("dat", "atr")), store)
    with pytest.raises(DataError, match=r"^upload: no files"):
        records_from_upload([], store)
    with pytest.raises(DataError, match=r"^upload: expected a \.hea \+ \.dat pair"):
        records_from_upload([("notes.txt", b"hello")], store)


def test_names_cannot_escape_the_store_and_old_uploads_are_pruned(tmp_path: Path) -> None:
    store = tmp_path / "store"
    path = records_from_upload([("../../escape.csv", b"MLII\n0.1\n")], store, keep=2)
    assert path.parent.parent == store and path.name == "escape.csv"
    assert not (tmp_path / "escape.csv").exists()
    for i in range(3):
        records_from_upload([(f"r{i}.csv", b"MLII\n0.1\n")], store, keep=2)
    assert len([p for p in store.iterdir() if p.is_dir()]) == 2
    message = upload_message(DataError(f"{path}: file is empty"), path)
    assert message == "escape.csv: file is empty"
