"""Reading and validating ECG signals: WFDB records and plain CSV/Parquet tables.

Every reader returns a :class:`Record`: one lead, converted to float32 and resampled to the suite's
single internal rate :data:`INTERNAL_FS` (180 Hz: MIT-BIH's 360 Hz divides exactly by two, a 128-sample
beat window then spans 0.71 s, and it keeps everything cheap on CPU). Reference annotations (``.atr``)
are kept at the record's own sampling rate, because that is what users and viewers count in.

Validation happens here, once, with one-line :class:`~genforge.errors.DataError` messages that name the
file: a missing ``.dat``, truncated data, a header that disagrees with the data, NaN or flat segments, an
implausible sampling rate, an unknown lead. Nothing downloads implicitly; :func:`download` is the one
explicit door to PhysioNet.

A sampling rate can also be wrong but plausible (a header saying 60 Hz for 360 Hz data, a CSV read with the
wrong ``fs``); that shows only in what the signal looks like at the stated rate, so
:func:`check_heart_rate` and :func:`check_qrs_spectrum` are called by
:func:`~genforge.ecg.preprocess.beat_table` once the signal is filtered and its beats are found.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd

from genforge.errors import DataError

INTERNAL_FS = 180.0
"""Every signal is resampled to this rate (Hz) before filtering, peak detection and windowing."""

DEFAULT_LEAD = "MLII"
MIN_FS, MAX_FS = 50.0, 10_000.0
MIN_SECONDS = 10.0
FLAT_SECONDS = 2.0

MIN_BPM, MAX_BPM = 20.0, 250.0
"""A record's median heart rate outside this range (beats/min) means its stated sampling rate is wrong.
All 48 MIT-BIH records give 50-113 bpm from their reference beats and from detected R peaks."""

QRS_CENTRE_HZ, QRS_EDGE_HZ = 3.0, 8.0
"""A signal whose 0.5-40 Hz power spectrum centres below ``QRS_CENTRE_HZ`` *and* has 95% of its power
below ``QRS_EDGE_HZ`` (both at the stated rate) has no QRS energy where a QRS complex puts it (roughly
5-25 Hz): its stated rate is too low. MIT-BIH at its true 360 Hz: centres 3.4-13.3 Hz, 95% edges 8.2-27.8 Hz
(lowest: 207 with ventricular flutter, centre 3.4 Hz but edge 9.3 Hz; paced 107, edge 8.2 Hz but centre
4.0 Hz); stated as 60 Hz: centres 1.2-2.7 Hz, edges 1.9-7.9 Hz. See :func:`qrs_spectrum`."""

# MIT-BIH inter-patient split (de Chazal et al. 2004); paced records 102, 104, 107, 217 excluded.
DS1 = ("101 106 108 109 112 114 115 116 118 119 122 124 201 203 205 207 208 209 215 220 223 230").split()
DS2 = ("100 103 105 111 113 117 121 123 200 202 210 212 213 214 219 221 222 228 231 232 233 234").split()
PACED = ("102", "104", "107", "217")

AAMI = {
    **dict.fromkeys("NLRej", "N"),
    **dict.fromkeys("AaJS", "S"),
    **dict.fromkeys("VE", "V"),
    "F": "F",
    **dict.fromkeys("/fQ", "Q"),
}
"""MIT-BIH beat symbol -> AAMI class. Symbols not listed here are not beats (rhythm, noise, ...)."""

# bits per stored sample of the WFDB formats we can size-check
_FORMAT_BITS = {
    "8": 8,
    "16": 16,
    "24": 24,
    "32": 32,
    "61": 16,
    "80": 8,
    "160": 16,
    "212": 12,
    "310": 32 / 3,
    "311": 32 / 3,
}


@dataclass
class Record:
    """One ECG lead at :data:`INTERNAL_FS`, plus what is needed to map back to the source file."""

    name: str
    signal: np.ndarray
    fs: float
    fs_source: float
    n_source: int
    lead: str
    source: str
    ann_samples: np.ndarray | None = None
    ann_symbols: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)
    fs_origin: str = "given"
    """Where ``fs_source`` came from: ``"header"`` (WFDB), ``"fs"`` (the caller's ``fs=``), ``"time column
    '<name>'"`` (a table's time column) or ``"given"`` (an in-memory array). Error messages about a
    wrong rate name it, so users know what to fix."""

    @property
    def has_annotations(self) -> bool:
        return self.ann_samples is not None and len(self.ann_samples) > 0

    @property
    def duration_s(self) -> float:
        return self.n_source / self.fs_source

    def to_source(self, internal_index: np.ndarray) -> np.ndarray:
        """Internal-rate sample indices -> sample indices at the record's own rate."""
        idx = np.rint(np.asarray(internal_index, dtype=float) * self.fs_source / self.fs).astype(np.int64)
        return np.clip(idx, 0, max(self.n_source - 1, 0))

    def to_internal(self, source_index: np.ndarray) -> np.ndarray:
        idx = np.rint(np.asarray(source_index, dtype=float) * self.fs / self.fs_source).astype(np.int64)
        return np.clip(idx, 0, max(len(self.signal) - 1, 0))

    @property
    def rate_file(self) -> str:
        """The file that states the sampling rate (the ``.hea`` of a WFDB record, else the source)."""
        return f"{self.source}.hea" if self.fs_origin == "header" else self.source

    @property
    def rate_phrase(self) -> str:
        """The stated rate and where it came from, for messages: "the header's 360 Hz", ..."""
        if self.fs_origin == "header":
            return f"the header's {self.fs_source:g} Hz"
        if self.fs_origin == "fs":
            return f"the given fs={self.fs_source:g} Hz"
        if self.fs_origin.startswith("time column"):
            return f"the {self.fs_source:g} Hz of its {self.fs_origin}"
        return f"{self.fs_source:g} Hz"


# ----------------------------------------------------------------------------------------- resolving
def data_root(data: str | os.PathLike[str] | None = None) -> Path:
    """The MIT-BIH folder: ``data`` (a mitdb folder or its parent), else ``$GENFORGE_DATA``/mitdb."""
    if data is None:
        env = os.environ.get("GENFORGE_DATA")
        if not env:
            raise DataError(
                "no data folder given: pass --data DIR or set GENFORGE_DATA to the reference folder"
            )
        data = env
    root = Path(data)
    if (root / "mitdb").is_dir() and not list(root.glob("*.hea")):
        root = root / "mitdb"
    if not root.is_dir():
        raise DataError(f"{root}: data folder not found; expected a folder of WFDB records (.hea/.dat)")
    return root


def resolve_records(paths: list[str | os.PathLike[str]]) -> list[Path]:
    """Expand folders into their records; a record may be named with or without its extension.

    Returns record paths without extension for WFDB records and with it for CSV/Parquet files.
    """
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            heads = sorted(p.glob("*.hea"))
            tables = sorted([*p.glob("*.csv"), *p.glob("*.parquet")])
            if not heads and not tables:
                raise DataError(f"{p}: folder holds no records (.hea or .csv/.parquet files)")
            out += [h.with_suffix("") for h in heads] + tables
        elif p.suffix.lower() in {".csv", ".parquet", ".pq"}:
            out.append(p)
        elif p.suffix.lower() in {".hea", ".dat", ".atr"}:
            out.append(p.with_suffix(""))
        else:
            out.append(p)
    return out


def parse_records_option(spec: str | None, root: Path) -> list[str]:
    """``"DS1"``, ``"DS2"``, ``"all"`` or a comma list like ``"101,106"`` -> names of records in ``root``."""
    if spec is None or spec.lower() == "ds1":
        names = list(DS1)
    elif spec.lower() == "ds2":
        names = list(DS2)
    elif spec.lower() == "all":
        names = sorted(h.stem for h in root.glob("*.hea"))
    else:
        names = [s.strip() for s in spec.split(",") if s.strip()]
    missing = [n for n in names if not (root / f"{n}.hea").exists()]
    if missing:
        raise DataError(f"{root}: record(s) not found: {', '.join(missing)}")
    return names


# ------------------------------------------------------------------------------------------- readers
def read_record(
    path: str | os.PathLike[str],
    lead: str | None = None,
    fs: float | None = None,
    annotations: bool = True,
    target_fs: float = INTERNAL_FS,
) -> Record:
    """Read one record: WFDB (``.hea``/``.dat``[/``.atr``], with or without extension) or CSV/Parquet.

    ``lead`` selects a channel by name (default: MLII when present, else the first channel).
    ``fs`` is required for CSV/Parquet (unless the table has a ``time``/``time_s`` column) and ignored
    for WFDB, whose header states it. Raises :class:`DataError` with a one-line message naming the file.
    """
    p = Path(path)
    if p.suffix.lower() in {".csv", ".parquet", ".pq"}:
        return read_table_signal(p, fs=fs, lead=lead, target_fs=target_fs)
    return read_wfdb(p, lead=lead, annotations=annotations, target_fs=target_fs)


def read_wfdb(
    path: str | os.PathLike[str],
    lead: str | None = None,
    annotations: bool = True,
    target_fs: float = INTERNAL_FS,
) -> Record:
    """Read a WFDB record, validating the header against the signal file before decoding it."""
    import wfdb

    base = Path(path)
    if base.suffix.lower() in {".hea", ".dat", ".atr"}:
        base = base.with_suffix("")
    hea = base.with_suffix(".hea")
    if not hea.exists():
        raise DataError(f"{hea}: header file not found; expected a WFDB record (.hea + .dat)")
    if hea.stat().st_size == 0:
        raise DataError(f"{hea}: header file is empty; expected a WFDB header")
    try:
        header = wfdb.rdheader(str(base))
    except Exception as exc:  # wfdb raises many types for garbage headers
        raise DataError(f"{hea}: not a readable WFDB header ({_short(exc)})") from None
    _check_signal_count(hea, header)
    fs_src = float(header.fs or 0)
    _check_fs(fs_src, hea)
    if not header.sig_name or not header.n_sig:
        raise DataError(f"{hea}: header lists no signals")
    sig_len = int(header.sig_len or 0)
    if sig_len <= 0:
        raise DataError(f"{hea}: header gives no signal length; expected the number of samples")

    names = [str(n) if n else "" for n in header.sig_name]
    channel, lead_name, notes = _pick_lead(names, lead, hea)
    _check_dat_size(header, base, sig_len)

    try:
        rec = wfdb.rdrecord(str(base), channels=[channel])
    except Exception as exc:
        raise DataError(
            f"{base.with_suffix('.dat')}: signal file could not be decoded ({_short(exc)})"
        ) from None
    x = rec.p_signal[:, 0].astype(np.float64)
    if len(x) != sig_len:
        raise DataError(
            f"{base.with_suffix('.dat')}: header says {sig_len} samples, signal file holds {len(x)}"
        )
    _check_values(x, fs_src, base.with_suffix(".dat"))

    ann_samples = ann_symbols = None
    atr = base.with_suffix(".atr")
    if annotations and atr.exists():
        try:
            ann = wfdb.rdann(str(base), "atr")
        except Exception as exc:
            raise DataError(f"{atr}: annotation file could not be read ({_short(exc)})") from None
        ann_samples = np.asarray(ann.sample, dtype=np.int64)
        ann_symbols = np.asarray(ann.symbol, dtype=object)
        if len(ann_samples) and (ann_samples.max() >= sig_len + fs_src or ann_samples.min() < 0):
            raise DataError(
                f"{atr}: annotations run past the signal ({ann_samples.max()} >= {sig_len} samples)"
            )

    signal = resample(x, fs_src, target_fs)
    return Record(
        name=base.name,
        signal=signal,
        fs=target_fs,
        fs_source=fs_src,
        n_source=sig_len,
        lead=lead_name,
        source=str(base),
        ann_samples=ann_samples,
        ann_symbols=ann_symbols,
        notes=notes,
        fs_origin="header",
    )


def read_table_signal(
    path: str | os.PathLike[str],
    fs: float | None = None,
    lead: str | None = None,
    target_fs: float = INTERNAL_FS,
) -> Record:
    """Read a CSV/Parquet signal: one numeric column per lead (optionally a ``time``/``time_s`` column).

    The sampling rate comes from ``fs`` or, failing that, from a regular time column in seconds.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: file not found")
    if p.stat().st_size == 0:
        raise DataError(f"{p}: file is empty; expected a table with one numeric column per lead")
    try:
        if p.suffix.lower() == ".csv":
            frame = pd.read_csv(p)
        else:
            frame = pd.read_parquet(p)
    except UnicodeDecodeError:
        raise DataError(
            f"{p}: not a text table (binary content); expected CSV with numeric columns"
        ) from None
    except Exception as exc:
        raise DataError(f"{p}: could not be read as a table ({_short(exc)})") from None
    if frame.empty or len(frame.columns) == 0:
        raise DataError(f"{p}: table has no rows; expected one numeric column per lead")
    time_col = next((c for c in frame.columns if str(c).lower() in {"time", "time_s", "t", "seconds"}), None)
    leads = [c for c in frame.columns if c != time_col]
    if not leads:
        raise DataError(f"{p}: no signal column besides '{time_col}'")
    notes: list[str] = []
    if lead is not None:
        if lead not in leads:
            raise DataError(f"{p}: lead '{lead}' not found; columns are {', '.join(map(str, leads))}")
        col = lead
    elif DEFAULT_LEAD in leads:
        col = DEFAULT_LEAD
    else:
        col = leads[0]
        if len(leads) > 1:
            notes.append(f"no '{DEFAULT_LEAD}' column; using the first column '{col}'")
    values = pd.to_numeric(frame[col], errors="coerce")
    bad = values.isna() & frame[col].notna()
    if bad.any():
        first = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"{p}: column '{col}' has {int(bad.sum())} non-numeric values (first at row {first + 2}); "
            "expected numbers"
        )
    fs_origin = "fs"
    if fs is None:
        if time_col is None:
            raise DataError(f"{p}: sampling rate unknown; pass --fs (Hz) or add a 'time_s' column")
        fs_origin = f"time column '{time_col}'"
        t = pd.to_numeric(frame[time_col], errors="coerce").to_numpy(dtype=float)
        dt = np.diff(t)
        if len(dt) == 0 or not np.all(np.isfinite(dt)) or np.median(dt) <= 0:
            raise DataError(f"{p}: column '{time_col}' is not an increasing time in seconds")
        fs = 1.0 / float(np.median(dt))
    _check_fs(float(fs), p)
    x = values.to_numpy(dtype=np.float64)
    _check_values(x, float(fs), p, column=str(col))
    signal = resample(x, float(fs), target_fs)
    return Record(
        name=p.stem,
        signal=signal,
        fs=target_fs,
        fs_source=float(fs),
        n_source=len(x),
        lead=str(col),
        source=str(p),
        notes=notes,
        fs_origin=fs_origin,
    )


def record_from_array(
    signal: np.ndarray, fs: float, name: str = "signal", lead: str = "ECG", target_fs: float = INTERNAL_FS
) -> Record:
    """Wrap an in-memory signal (validated like a file) as a :class:`Record`."""
    x = np.asarray(signal, dtype=np.float64).ravel()
    _check_fs(float(fs), name)
    _check_values(x, float(fs), name)
    return Record(
        name=name,
        signal=resample(x, float(fs), target_fs),
        fs=target_fs,
        fs_source=float(fs),
        n_source=len(x),
        lead=lead,
        source=name,
    )


def resample(x: np.ndarray, fs_from: float, fs_to: float) -> np.ndarray:
    """Polyphase resampling (scipy) by the rational ratio fs_to / fs_from; float32 out."""
    from scipy.signal import resample_poly

    if abs(fs_from - fs_to) < 1e-9:
        return np.asarray(x, dtype=np.float32)
    ratio = Fraction(fs_to / fs_from).limit_denominator(1000)
    return resample_poly(x, ratio.numerator, ratio.denominator).astype(np.float32)


def download(database: str, directory: str | os.PathLike[str], records: list[str] | None = None) -> Path:
    """Download a PhysioNet database with ``wfdb.dl_database`` (the only place that touches the network)."""
    import wfdb

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    try:
        wfdb.dl_database(database, dl_dir=str(out), records=records or "all", annotators="all")
    except Exception as exc:
        raise DataError(f"{database}: download from PhysioNet failed ({_short(exc)})") from None
    return out


# ---------------------------------------------------------------------------------------- validation
def _pick_lead(names: list[str], lead: str | None, where: Path) -> tuple[int, str, list[str]]:
    if lead is not None:
        if lead in names:
            return names.index(lead), lead, []
        raise DataError(
            f"{where}: lead '{lead}' not found; the record has {', '.join(n or '?' for n in names)}"
        )
    if DEFAULT_LEAD in names:
        return names.index(DEFAULT_LEAD), DEFAULT_LEAD, []
    first = names[0] or "channel 0"
    note = f"{where.stem}: no '{DEFAULT_LEAD}' lead; using the first channel '{first}'"
    warnings.warn(note, stacklevel=3)
    return 0, first, [note]


def check_heart_rate(record: Record, beat_times_s: np.ndarray, which: str = "detected beats") -> None:
    """Raise a :class:`DataError` when the beats' median heart rate at the stated rate is implausible.

    ``beat_times_s`` are beat times in seconds *at the record's stated rate*. A rate outside
    :data:`MIN_BPM`-:data:`MAX_BPM` is not a patient but a wrong sampling rate (a 6x too low header turns
    75 bpm into 12 bpm). Fewer than five beats say nothing and pass (other checks deal with those).
    """
    t = np.sort(np.asarray(beat_times_s, dtype=float))
    if len(t) < 5:
        return
    rr = float(np.median(np.diff(t)))
    hr = 60.0 / rr if rr > 0 else math.inf
    if not MIN_BPM <= hr <= MAX_BPM:
        raise DataError(
            f"{record.rate_file}: median heart rate {hr:.0f} bpm ({which}) at {record.rate_phrase}; "
            f"is the sampling rate right? (expected {MIN_BPM:g}-{MAX_BPM:g} bpm)"
        )


SPECTRUM_SEGMENT_S, SPECTRUM_SEGMENTS = 2.8, 64


def qrs_spectrum(filtered: np.ndarray, fs: float) -> tuple[float, float]:
    """(centre, 95% edge) in Hz of a band-passed ECG's 0.5-40 Hz power spectrum.

    The centre is the power-weighted mean frequency, the edge the frequency below which 95% of the power
    lies. Both scale with the ratio of the stated to the true sampling rate, which is what makes a wrong
    rate visible: QRS complexes keep real ECGs well above the thresholds of :data:`QRS_CENTRE_HZ`.
    The spectrum is the mean periodogram (Hann window) of at most 64 segments of 2.8 s spread evenly
    over the record: a few milliseconds for a 30-minute record, where a full Welch estimate costs ~0.1 s.
    """
    from scipy.signal import periodogram

    x = np.asarray(filtered, dtype=np.float64)
    seg = min(len(x), int(round(SPECTRUM_SEGMENT_S * fs)))
    if seg < 2:
        return math.nan, math.nan
    n_seg = len(x) // seg
    rows = np.linspace(0, n_seg - 1, min(n_seg, SPECTRUM_SEGMENTS)).round().astype(int)
    segments = x[: n_seg * seg].reshape(n_seg, seg)[rows]
    f, p = periodogram(segments, fs=fs, window="hann", detrend="constant", axis=-1)
    p = p.mean(axis=0)
    band = (f >= 0.5) & (f <= 40.0)
    f, p = f[band], p[band]
    total = float(p.sum())
    if len(f) == 0 or not np.isfinite(total) or total <= 0:
        return math.nan, math.nan
    centre = float((f * p).sum() / total)
    edge = float(np.interp(0.95, np.cumsum(p) / total, f))  # interpolated between frequency bins
    return centre, edge


def check_qrs_spectrum(record: Record, filtered: np.ndarray) -> None:
    """Raise a :class:`DataError` when the filtered signal has no QRS-band energy at the stated rate.

    ``filtered`` is the record's signal band-passed 0.5-40 Hz at ``record.fs``. Only a rate stated too low
    is caught this way: on MIT-BIH, every record stated 6x too low (60 Hz), 34 of 47 at 4x, half at 3x, a
    few at 2x. A rate stated too high squeezes the QRS into frequencies that the resampling to
    :data:`INTERNAL_FS` removes; that shows only in the heart rate (:func:`check_heart_rate`).
    """
    centre, edge = qrs_spectrum(filtered, record.fs)
    if centre < QRS_CENTRE_HZ and edge < QRS_EDGE_HZ:
        raise DataError(
            f"{record.rate_file}: no QRS energy at {record.rate_phrase}: the spectrum centres at "
            f"{centre:.1f} Hz with 95% below {edge:.1f} Hz; is the sampling rate right? (expected a centre "
            f"above {QRS_CENTRE_HZ:g} Hz or energy past {QRS_EDGE_HZ:g} Hz, as QRS complexes give)"
        )


def _check_fs(fs: float, where: object) -> None:
    if not math.isfinite(fs) or not MIN_FS <= fs <= MAX_FS:
        raise DataError(
            f"{where}: sampling rate {fs:g} Hz is implausible for an ECG; expected {MIN_FS:g}-{MAX_FS:g} Hz"
        )


def _check_signal_count(hea: Path, header: object) -> None:
    """The record line's signal count must match the signal lines that follow it (else wfdb fails later,
    blaming the signal file)."""
    try:
        lines = [ln.strip() for ln in hea.read_text(encoding="latin-1").splitlines()]
    except OSError as exc:
        raise DataError(f"{hea}: header file could not be read ({_short(exc)})") from None
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    if not lines or "/" in lines[0].split()[0]:
        return  # multi-segment records list segments, not signals
    declared, listed = int(getattr(header, "n_sig", 0) or 0), len(lines) - 1
    if declared != listed or len(getattr(header, "file_name", None) or []) != declared:
        raise DataError(
            f"{hea}: record line declares {declared} signal(s) but {listed} signal line(s) follow; expected "
            "the count on the first line to match the signal lines"
        )


def _check_dat_size(header: object, base: Path, sig_len: int) -> None:
    """Compare each signal file's size with the header's promise (catches truncation, wrong lengths)."""
    files: dict[str, list[str]] = {}
    for fname, fmt in zip(header.file_name, header.fmt, strict=False):
        files.setdefault(fname, []).append(str(fmt))
    offsets = dict(zip(header.file_name, header.byte_offset or [None] * len(header.file_name), strict=False))
    for fname, fmts in files.items():
        dat = base.parent / fname
        if not dat.exists():
            raise DataError(f"{dat}: signal file missing (named in {base.with_suffix('.hea').name})")
        bits = [_FORMAT_BITS.get(f) for f in fmts]
        if any(b is None for b in bits):
            continue  # exotic format: rely on the decoder's own checks
        expected = math.ceil(sig_len * sum(bits) / 8) + int(offsets.get(fname) or 0)
        actual = dat.stat().st_size
        frame_bytes = max(sum(bits) / 8, 1)
        if actual < expected - frame_bytes:
            have = int((actual - int(offsets.get(fname) or 0)) * 8 // sum(bits))
            raise DataError(
                f"{dat}: truncated: header says {sig_len} samples, file holds only {max(have, 0)}"
            )
        if actual > expected + 2 * frame_bytes + 512:
            have = int((actual - int(offsets.get(fname) or 0)) * 8 // sum(bits))
            raise DataError(
                f"{dat}: header disagrees with data: header says {sig_len} samples, file holds {have}"
            )


def _check_values(x: np.ndarray, fs: float, where: object, column: str | None = None) -> None:
    what = f"column '{column}'" if column else "signal"
    if len(x) < MIN_SECONDS * fs:
        raise DataError(
            f"{where}: {what} is {len(x) / fs:.1f} s long; expected at least {MIN_SECONDS:g} s of ECG"
        )
    nan = ~np.isfinite(x)
    if nan.any():
        first = int(np.flatnonzero(nan)[0])
        raise DataError(
            f"{where}: {what} has {int(nan.sum())} missing/NaN samples (first at sample {first}); "
            "expected a gap-free signal"
        )
    run = _longest_constant_run(x)
    if run >= FLAT_SECONDS * fs:
        raise DataError(f"{where}: {what} is flat for {run / fs:.1f} s (lead off?); expected a varying ECG")
    span = float(np.percentile(x, 99.5) - np.percentile(x, 0.5))
    if span <= 0:
        raise DataError(f"{where}: {what} carries no signal; expected a varying ECG")


def _longest_constant_run(x: np.ndarray) -> int:
    change = np.flatnonzero(np.diff(x) != 0)
    if len(change) == 0:
        return len(x)
    edges = np.r_[-1, change, len(x) - 1]
    return int(np.diff(edges).max())


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]
