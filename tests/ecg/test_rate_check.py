"""A wrong but plausible sampling rate (header or ``--fs``) is caught, reported, and leaves no output."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import wfdb

from genforge.cli import main
from genforge.ecg import beat_table, read_record
from genforge.errors import DataError

RECORD = "119"


def copy_with_rate(mitdb: Path, folder: Path, name: str, rate: float, atr: bool = True) -> Path:
    """Copy of MIT-BIH record 119 named ``name`` whose header states ``rate`` Hz (the data stay 360 Hz)."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = (mitdb / f"{RECORD}.hea").read_text().splitlines()
    head = lines[0].split()
    assert head[0] == RECORD and head[2] == "360"
    head[0], head[2] = name, f"{rate:g}"
    body = [line.replace(f"{RECORD}.dat", f"{name}.dat", 1) for line in lines[1:]]
    (folder / f"{name}.hea").write_text("\n".join([" ".join(head), *body]) + "\n")
    shutil.copy(mitdb / f"{RECORD}.dat", folder / f"{name}.dat")
    if atr:
        shutil.copy(mitdb / f"{RECORD}.atr", folder / f"{name}.atr")
    return folder / name


def mlii_csv(mitdb: Path, path: Path, minutes: float = 2.0) -> Path:
    """The first minutes of record 119's MLII lead as a one-column CSV (no rate inside)."""
    x = wfdb.rdrecord(str(mitdb / RECORD), channel_names=["MLII"], sampto=int(minutes * 60 * 360)).p_signal
    pd.DataFrame({"MLII": x[:, 0]}).to_csv(path, index=False)
    return path


def no_output(out: Path, *records: str) -> bool:
    """Nothing written for ``records``: no rows in the table (if any), no .gfa, no finished part file."""
    rows = set(pd.read_parquet(out)["record"]) if out.exists() else set()
    return (
        not rows & set(records)
        and not any((out.parent / f"{r}.gfa").exists() for r in records)
        and not any(any(out.parent.rglob(f"{r}.parquet")) for r in records)
    )


def test_wrong_header_rate_is_reported_and_the_other_records_are_scored(
    mitdb: Path, small_model, tmp_path: Path, capsys
) -> None:
    _, model = small_model
    folder = tmp_path / "records"
    copy_with_rate(mitdb, folder, "slow", 60)  # 6x too low, with reference annotations
    copy_with_rate(mitdb, folder, "slow_noatr", 60, atr=False)  # 6x too low, beats must be detected
    for ext in ("hea", "dat", "atr"):
        shutil.copy(mitdb / f"{RECORD}.{ext}", folder / f"{RECORD}.{ext}")
    out = tmp_path / "out" / "scores.parquet"
    capsys.readouterr()
    rc = main(["ecg", "score", str(folder), "--model", str(model), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 1  # two records failed, the good one was scored
    assert re.search(
        r"slow\.hea: median heart rate 1\d bpm \(reference beats\) at the header's 60 Hz; "
        r"is the sampling rate right\? \(expected 20-250 bpm\)",
        err,
    ), err
    assert re.search(
        r"slow_noatr\.hea: no QRS energy at the header's 60 Hz: the spectrum centres at \d\.\d Hz with 95% "
        r"below \d\.\d Hz; is the sampling rate right\? \(expected a centre above 3 Hz or energy past 8 Hz",
        err,
    ), err
    assert set(pd.read_parquet(out)["record"]) == {RECORD}
    assert (out.parent / f"{RECORD}.gfa").is_file()
    assert no_output(out, "slow", "slow_noatr")


def test_csv_with_wrong_fs_is_reported_and_leaves_no_output(mitdb: Path, small_model, tmp_path: Path, capsys):
    _, model = small_model
    csv = mlii_csv(mitdb, tmp_path / "ecg.csv")
    out = tmp_path / "out" / "scores.parquet"
    capsys.readouterr()
    rc = main(["ecg", "score", str(csv), "--model", str(model), "--out", str(out), "--fs", "60"])
    err = capsys.readouterr().err
    assert rc == 1
    assert re.search(r"ecg\.csv: no QRS energy at the given fs=60 Hz: .*is the sampling rate right\?", err), (
        err
    )
    assert not out.exists() and no_output(out, "ecg") and not list(out.parent.glob("*.parts"))
    # the same file at its true rate scores
    rc = main(["ecg", "score", str(csv), "--model", str(model), "--out", str(out), "--fs", "360"])
    assert rc == 0 and set(pd.read_parquet(out)["record"]) == {"ecg"}


def test_rate_stated_too_high_shows_in_the_heart_rate(mitdb: Path, tmp_path: Path) -> None:
    base = copy_with_rate(mitdb, tmp_path, "fast", 2160)  # 6x too high: about 420 bpm
    with pytest.raises(
        DataError,
        match=r"fast\.hea: median heart rate \d{3} bpm \(reference beats\) at the header's 2160 Hz; "
        r"is the sampling rate right\? \(expected 20-250 bpm\)",
    ):
        beat_table(read_record(base))


def test_time_column_rate_is_named(mitdb: Path, tmp_path: Path) -> None:
    x = pd.read_csv(mlii_csv(mitdb, tmp_path / "a.csv"))["MLII"].to_numpy()
    pd.DataFrame({"time_s": np.arange(len(x)) / 60.0, "MLII": x}).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(DataError, match=r"t\.csv: no QRS energy at the 60 Hz of its time column 'time_s'"):
        beat_table(read_record(tmp_path / "t.csv"))
