"""Reading and validating ECG inputs: WFDB, CSV/Parquet, resampling, and every bad input's message."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import wfdb

from genforge.ecg import INTERNAL_FS, read_record
from genforge.errors import DataError


def synthetic_ecg(fs: float, seconds: float = 30.0, hr: float = 72.0) -> np.ndarray:
    """A crude ECG: a narrow R spike and a broad T wave per beat, plus a little noise (no neurokit needed)."""
    t = np.arange(int(fs * seconds)) / fs
    x = np.zeros_like(t)
    for r in np.arange(0.5, seconds - 0.5, 60.0 / hr):
        x += 1.0 * np.exp(-(((t - r) / 0.012) ** 2)) + 0.25 * np.exp(-(((t - r - 0.25) / 0.05) ** 2))
    return x + np.random.default_rng(0).normal(0, 0.01, len(t))


def write_record(
    folder: Path,
    name: str = "rec",
    fs: float = 360.0,
    seconds: float = 30.0,
    fmt: str = "212",
    sig_name: str = "MLII",
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    x = synthetic_ecg(fs, seconds)
    wfdb.wrsamp(
        name,
        fs=fs,
        units=["mV"],
        sig_name=[sig_name],
        p_signal=x[:, None],
        fmt=[fmt],
        adc_gain=[200.0],
        baseline=[0],
        write_dir=str(folder),
    )
    return folder / name


def test_reads_mitdb_lead_by_name_and_resamples(mitdb: Path) -> None:
    rec = read_record(mitdb / "100")
    assert rec.lead == "MLII" and rec.fs == INTERNAL_FS and rec.fs_source == 360
    assert len(rec.signal) == 650_000 // 2 and rec.signal.dtype == np.float32
    assert rec.has_annotations and len(rec.ann_samples) > 2000
    v5 = read_record(mitdb / "100.hea", lead="V5")
    assert v5.lead == "V5" and not np.allclose(v5.signal, rec.signal)
    with pytest.raises(DataError, match=r"100.hea: lead 'V1' not found; the record has MLII, V5"):
        read_record(mitdb / "100", lead="V1")


def test_missing_default_lead_falls_back_and_says_so(tmp_path: Path) -> None:
    base = write_record(tmp_path, sig_name="ECG1")
    with pytest.warns(UserWarning, match="no 'MLII' lead; using the first channel 'ECG1'"):
        rec = read_record(base)
    assert rec.lead == "ECG1" and rec.notes


@pytest.mark.parametrize("fs", [128.0, 250.0, 500.0])
def test_any_rate_is_resampled_to_the_internal_rate(tmp_path: Path, fs: float) -> None:
    rec = read_record(write_record(tmp_path, fs=fs, seconds=20, fmt="16"))
    assert rec.fs == INTERNAL_FS
    assert abs(len(rec.signal) - 20 * INTERNAL_FS) <= 2
    # the R spikes survive resampling: ~24 beats of 72 bpm in 20 s
    peaks = (
        (rec.signal[1:-1] > 0.5) & (rec.signal[1:-1] >= rec.signal[:-2]) & (rec.signal[1:-1] > rec.signal[2:])
    )
    assert 22 <= peaks.sum() <= 25


def test_csv_and_parquet_with_sampling_rate(tmp_path: Path) -> None:
    x = synthetic_ecg(250.0, 20)
    pd.DataFrame({"MLII": x}).to_csv(tmp_path / "a.csv", index=False)
    rec = read_record(tmp_path / "a.csv", fs=250)
    assert rec.fs_source == 250 and rec.lead == "MLII"
    pd.DataFrame({"time_s": np.arange(len(x)) / 250.0, "ecg": x}).to_parquet(tmp_path / "b.parquet")
    rec2 = read_record(tmp_path / "b.parquet")  # rate from the time column
    assert abs(rec2.fs_source - 250) < 1e-6
    np.testing.assert_allclose(rec.signal, rec2.signal, atol=1e-5)
    with pytest.raises(DataError, match="a.csv: sampling rate unknown; pass --fs"):
        read_record(tmp_path / "a.csv")


# ------------------------------------------------------------------------------------- bad inputs
def test_missing_dat(tmp_path: Path) -> None:
    base = write_record(tmp_path)
    base.with_suffix(".dat").unlink()
    with pytest.raises(DataError, match=r"rec.dat: signal file missing \(named in rec.hea\)"):
        read_record(base)


def test_truncated_dat(tmp_path: Path) -> None:
    base = write_record(tmp_path)
    dat = base.with_suffix(".dat")
    dat.write_bytes(dat.read_bytes()[: dat.stat().st_size // 2])
    with pytest.raises(
        DataError, match=r"rec.dat: truncated: header says 10800 samples, file holds only 5400"
    ):
        read_record(base)


def test_header_with_wrong_length(tmp_path: Path) -> None:
    base = write_record(tmp_path)
    hea = base.with_suffix(".hea")
    hea.write_text(hea.read_text().replace(" 10800", " 5000", 1))
    with pytest.raises(
        DataError, match=r"rec.dat: header disagrees with data: header says 5000 samples, file holds 10800"
    ):
        read_record(base)


def test_header_with_wrong_rate(tmp_path: Path) -> None:
    base = write_record(tmp_path)
    hea = base.with_suffix(".hea")
    first, rest = hea.read_text().split("\n", 1)
    hea.write_text(first.replace(" 360 ", " 36000 ") + "\n" + rest)
    with pytest.raises(DataError, match=r"rec.hea: sampling rate 36000 Hz is implausible"):
        read_record(base)


def test_nan_csv(tmp_path: Path) -> None:
    x = synthetic_ecg(250.0, 20)
    x[1000:1500] = np.nan
    pd.DataFrame({"MLII": x}).to_csv(tmp_path / "nan.csv", index=False)
    with pytest.raises(
        DataError, match=r"nan.csv: column 'MLII' has 500 missing/NaN samples \(first at sample 1000\)"
    ):
        read_record(tmp_path / "nan.csv", fs=250)


def test_flat_segment(tmp_path: Path) -> None:
    x = synthetic_ecg(250.0, 20)
    x[1000:2000] = 0.3
    pd.DataFrame({"MLII": x}).to_csv(tmp_path / "flat.csv", index=False)
    with pytest.raises(DataError, match=r"flat.csv: column 'MLII' is flat for 4.0 s"):
        read_record(tmp_path / "flat.csv", fs=250)


@pytest.mark.parametrize("name", ["empty.csv", "empty.hea"])
def test_empty_file(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"")
    with pytest.raises(DataError, match=rf"{name}: .*empty"):
        read_record(tmp_path / name)


def test_non_ecg_binary(tmp_path: Path) -> None:
    blob = np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    (tmp_path / "junk.csv").write_bytes(blob)
    with pytest.raises(DataError, match=r"junk.csv: "):
        read_record(tmp_path / "junk.csv", fs=360)
    (tmp_path / "junk.hea").write_bytes(blob)
    with pytest.raises(DataError, match=r"junk.hea: not a readable WFDB header"):
        read_record(tmp_path / "junk")


def test_implausible_csv_rate_and_short_signal(tmp_path: Path) -> None:
    pd.DataFrame({"MLII": synthetic_ecg(250.0, 20)}).to_csv(tmp_path / "a.csv", index=False)
    with pytest.raises(DataError, match=r"a.csv: sampling rate 5 Hz is implausible"):
        read_record(tmp_path / "a.csv", fs=5)
    pd.DataFrame({"MLII": synthetic_ecg(250.0, 3)}).to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(DataError, match=r"short.csv: column 'MLII' is 3.0 s long; expected at least 10 s"):
        read_record(tmp_path / "short.csv", fs=250)
