"""Test beats for protocols that look outside plain MIT-BIH: other sampling rates, added noise, any database.

- :func:`resampled_beats`: MIT-BIH records as another Holter database would store them, resampled to
  ``fs`` (128 or 250 Hz) with the reference annotations mapped to the new rate (rounded to its samples),
  then read by the usual pipeline (which resamples everything to 180 Hz): what changes is what the
  lower rate and the coarser annotation grid lose.
- :func:`noisy_beats`: MIT-BIH records with a noise recording of the Noise Stress Test Database added at a
  chosen SNR, in the layout of the published stress records (PhysioNet's ``nst``): clean for the first
  5 minutes, then noise in alternating 2-minute segments. The SNR follows ``nst``'s definition in spirit:
  signal power from the QRS peak-to-peak amplitude (``(p2p)^2 / 8``, median over the annotated beats),
  noise power from the noise recording's variance; only the beats in the noisy segments are returned
  (``noisy=True`` marks them), since the clean ones are those of the plain protocol.
- :func:`annotated_records`: the annotated WFDB records of any folder (a hospital's own recordings).

Beat tables are cached as Parquet under the usual beat cache, keyed by record, file stamps and settings.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from genforge.ecg.data import read_wfdb, record_from_array
from genforge.ecg.preprocess import CACHE_VERSION, beat_table, default_cache_dir
from genforge.errors import DataError

NOISE_KINDS = ("bw", "em", "ma")
NOISE_SNRS = (24.0, 12.0, 6.0, 0.0)
CLEAN_SECONDS = 300.0  # the stress records' first 5 minutes are clean
SEGMENT_SECONDS = 120.0  # then noise in alternating 2-minute segments


def _stamp(root: Path, name: str) -> str:
    files = sorted(f for f in root.glob(f"{name}.*") if f.suffix in {".hea", ".dat", ".atr"})
    return "-".join(f"{f.stat().st_size}.{int(f.stat().st_mtime)}" for f in files)


def _cached(key_parts: list[str], cache: Path | bool | None, make) -> pd.DataFrame:
    if not cache:
        return make()
    from genforge.io import write_table_atomic

    digest = hashlib.sha1("|".join(key_parts).encode()).hexdigest()[:16]
    path = Path(cache) / f"protocol-{digest}-v{CACHE_VERSION}.parquet"
    if path.exists():
        return pd.read_parquet(path)
    frame = make()
    write_table_atomic(path, frame)
    return frame


def resampled_beats(
    root: Path, names: list[str], fs: float, cache_dir: Path | None = None, progress: bool = False
) -> pd.DataFrame:
    """Reference-position beats of ``names`` after resampling each record to ``fs`` (see the module)."""
    from tqdm.auto import tqdm

    cache = default_cache_dir() if cache_dir is None else cache_dir
    frames = []
    for name in tqdm(names, desc=f"beats at {fs:g} Hz", unit="record", disable=None if progress else True):

        def make(name: str = name) -> pd.DataFrame:
            source = read_wfdb(root / name, target_fs=fs)  # the signal at fs; annotations at the file's rate
            record = record_from_array(source.signal, fs, name=name, lead=source.lead)
            record.ann_samples = np.rint(source.ann_samples * fs / source.fs_source).astype(np.int64)
            record.ann_symbols = source.ann_symbols
            return beat_table(record, peaks="reference")

        frames.append(_cached(["resampled", name, _stamp(root, name), f"{fs:g}"], cache, make))
    return pd.concat(frames, ignore_index=True)


def noise_segments(n: int, fs: float) -> np.ndarray:
    """[n] bool: where the stress layout adds noise (after 5 clean minutes, alternating 2-minute blocks)."""
    t = np.arange(n) / fs
    on = np.zeros(n, dtype=bool)
    late = t >= CLEAN_SECONDS
    on[late] = ((t[late] - CLEAN_SECONDS) // SEGMENT_SECONDS) % 2 == 0
    return on


def qrs_power(signal: np.ndarray, beats: np.ndarray, fs: float) -> float:
    """``(p2p)^2 / 8``: the power of a sine of the median QRS peak-to-peak amplitude (within +-50 ms)."""
    half = int(round(0.05 * fs))
    p2p = [np.ptp(signal[max(0, b - half) : b + half + 1]) for b in beats if half <= b < len(signal) - half]
    if not p2p:
        raise DataError("noise protocol: no annotated beats to measure the QRS amplitude on")
    return float(np.median(p2p)) ** 2 / 8.0


def noisy_beats(
    root: Path,
    names: list[str],
    noise_dir: Path,
    kind: str,
    snr_db: float,
    cache_dir: Path | None = None,
    progress: bool = False,
    offset_s: float = 0.0,
) -> pd.DataFrame:
    """Reference-position beats of ``names`` with noise ``kind`` added at ``snr_db``, noisy segments only.

    ``offset_s``: where in the noise recording the added noise starts (0 for the DS2 protocol; the DS1
    check ``ds1-cv-noise`` starts half-way, so settings are not chosen on the very noise DS2 gets)."""
    import wfdb
    from tqdm.auto import tqdm

    if kind not in NOISE_KINDS:
        raise DataError(f"noise kind {kind!r}: expected one of {', '.join(NOISE_KINDS)}")
    noise_path = Path(noise_dir) / kind
    if not noise_path.with_suffix(".hea").is_file():
        raise DataError(f"{noise_path}.hea: missing; expected the MIT-BIH Noise Stress Test Database there")
    noise = wfdb.rdrecord(str(noise_path), channels=[0]).p_signal[:, 0].astype(np.float64)
    noise = noise - noise.mean()
    noise_power = float(noise.var())
    cache = default_cache_dir() if cache_dir is None else cache_dir
    frames = []
    bar = tqdm(names, desc=f"{kind} {snr_db:g} dB", unit="record", disable=None if progress else True)
    for name in bar:

        def make(name: str = name) -> pd.DataFrame:
            fs = float(wfdb.rdheader(str(root / name)).fs)
            source = read_wfdb(root / name, target_fs=fs)  # validated, at the file's own rate
            x = np.asarray(source.signal, dtype=np.float64)
            gain = np.sqrt(qrs_power(x, source.ann_samples, fs) / (noise_power * 10 ** (snr_db / 10)))
            start = int(round(offset_s * fs)) % len(noise)
            added = np.resize(np.roll(noise, -start), len(x)) * gain * noise_segments(len(x), fs)
            record = record_from_array(x + added, fs, name=name, lead=source.lead)
            record.ann_samples, record.ann_symbols = source.ann_samples, source.ann_symbols
            beats = beat_table(record, peaks="reference")
            on = noise_segments(len(x), fs)[np.clip(beats["sample"].to_numpy(), 0, len(x) - 1)]
            return beats[on].reset_index(drop=True)

        key = ["noise", name, _stamp(root, name), _stamp(Path(noise_dir), kind), kind, f"{snr_db:g}"]
        if offset_s:
            key.append(f"offset {offset_s:g}")
        frames.append(_cached(key, cache, make))
    return pd.concat(frames, ignore_index=True)


def annotated_records(directory: Path) -> list[str]:
    """Names of the WFDB records in ``directory`` that have a header, a signal and reference annotations."""
    directory = Path(directory)
    names = sorted(
        h.stem
        for h in directory.glob("*.hea")
        if h.with_suffix(".atr").is_file() and any(directory.glob(f"{h.stem}.dat"))
    )
    if not names:
        raise DataError(f"{directory}: no annotated WFDB records (.hea + .dat + .atr) found")
    return names
