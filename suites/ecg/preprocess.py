"""From a :class:`~genforge.ecg.data.Record` to a table of beats: filter, find R peaks, cut windows.

Steps (all at the internal rate, :data:`~genforge.ecg.data.INTERNAL_FS`):

1. band-pass 0.5-40 Hz (2nd-order Butterworth, zero phase, scipy) removes baseline wander and mains;
2. polarity: a lead whose dominant deflection is negative is flipped, so R points up everywhere;
3. R peaks from neurokit2 (``ecg_findpeaks``, method "neurokit"), or the reference annotation positions
   when asked (``peaks="reference"``); either way each position is moved to the local maximum within
   +-40 ms, because annotations of different databases sit 15-25 ms off the R peak and a window must be
   aligned on the same fiducial point for a model trained on one database to work on another;
4. one window per beat (``PRE`` samples before the peak, ``POST`` after; 128 samples = 0.71 s), scaled by
   the record's median-beat amplitude so that patients with different gains look alike;
5. a local template beside each window: the median of the *typical* beats among the 101 around it (typical:
   within twice the record's median distance of the record's median beat, so ectopic beats never shape
   it; the record's median beat where fewer than 3 are typical). Most beats of a recording are normal, so
   the difference between a beat and its template is a patient-independent view of its shape, and a
   local template follows slow changes of morphology (electrode drift, posture) that a record-wide one
   mistakes for abnormality (chosen on DS1 patient-wise CV; figures in ``docs/results/ecg.md``).
   Beside it, the local noise level (``noise``, :func:`local_noise`): how far the typical beats around
   differ from their templates, so a detector can read a beat's deviation relative to the noise of its
   segment (typical is judged against the beats around too, so a noisy segment's normal beats count);
6. RR-interval features: previous and next RR, the local RR (mean of the 10 beats around), the 5-minute
   average RR, the ratios of previous/next RR to the local RR, and the local irregularity (median
   absolute change of log RR over the 50 beats around). Premature supraventricular beats look normal and
   stand out only in timing, and only relative to how regular the patient's own rhythm is around them.

The beat table is a pandas DataFrame: metadata columns, ``rr_*`` columns, ``noise``, ``w_000..w_127``
(the beat) and ``t_000..t_127`` (its local template).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd

from genforge.ecg.data import AAMI, Record, check_heart_rate, check_qrs_spectrum
from genforge.errors import DataError

PRE, POST = 50, 78
WINDOW = PRE + POST
ALIGN_S = 0.04
MATCH_S = 0.15
LOCAL_BEATS = 10
AVG_HALF_S = 150.0
IRR_BEATS = 50
IRR_FLOOR = 0.05
TEMPLATE_HALF = 50
TEMPLATE_TYPICAL = 2.0
TEMPLATE_BLOCK = 10
TEMPLATE_MIN = 3
TEMPLATE_FLOOR_Q = 0.25  # typical beats: judged against the lower quartile of distances around them too
WAVE_COLS = [f"w_{i:03d}" for i in range(WINDOW)]
TEMPLATE_COLS = [f"t_{i:03d}" for i in range(WINDOW)]
RR_COLS = ["rr_pre", "rr_post", "rr_local", "rr_avg", "rr_pre_ratio", "rr_post_ratio"]
MODEL_RR_COLS = ["rr_pre", "rr_post", "rr_local", "rr_avg"]
IRR_COL = "rr_irr"
NOISE_COL = "noise"
META_COLS = ["record", "sample", "time_s", "peak", "symbol", "aami"]


def bandpass(x: np.ndarray, fs: float, low: float = 0.5, high: float = 40.0) -> np.ndarray:
    """Zero-phase Butterworth band-pass (baseline wander below ``low``, noise above ``high``)."""
    from scipy.signal import butter, sosfiltfilt

    high = min(high, 0.45 * fs)
    sos = butter(2, [low, high], btype="band", fs=fs, output="sos")
    return sosfiltfilt(sos, np.asarray(x, dtype=np.float64)).astype(np.float32)


def polarity(x: np.ndarray) -> int:
    """+1 if the dominant deflections point up, -1 if the lead is inverted."""
    hi, lo = np.percentile(x, [99.5, 0.5])
    return -1 if -lo > 1.5 * hi else 1


def detect_peaks(x: np.ndarray, fs: float) -> np.ndarray:
    """R-peak indices of a filtered, upright signal (neurokit2's default detector)."""
    from neurokit2 import ecg_findpeaks  # heavy import (~10 s cold): only when detection is needed

    try:
        peaks = ecg_findpeaks(x, sampling_rate=int(round(fs)), method="neurokit")["ECG_R_Peaks"]
    except Exception:  # neurokit fails on signals without QRS complexes
        peaks = np.array([], dtype=np.int64)
    return np.asarray(peaks, dtype=np.int64)


def align_peaks(x: np.ndarray, peaks: np.ndarray, fs: float, radius_s: float = ALIGN_S) -> np.ndarray:
    """Move each peak to the largest sample within +-``radius_s`` (vectorised)."""
    r = int(round(radius_s * fs))
    if len(peaks) == 0 or r == 0:
        return np.asarray(peaks, dtype=np.int64)
    offsets = np.arange(-r, r + 1)
    idx = np.clip(peaks[:, None] + offsets[None, :], 0, len(x) - 1)
    return idx[np.arange(len(peaks)), np.argmax(x[idx], axis=1)].astype(np.int64)


def rr_features(peaks: np.ndarray, fs: float) -> pd.DataFrame:
    """RR features in seconds (de Chazal et al. 2004 style) plus two ratios and the local irregularity.

    ``rr_pre``/``rr_post``: the intervals to the previous and next beat; ``rr_local``: mean RR of the 10
    beats around (centred); ``rr_avg``: mean RR within +-150 s (the 5-minute average);
    ``rr_pre_ratio``/``rr_post_ratio``: previous/next RR over the local RR; ``rr_irr``: median of
    ``|log RR_i - log RR_(i-1)|`` over the 50 beats around (centred), i.e. how irregular the rhythm is
    locally (near 0 in sinus rhythm, large in atrial fibrillation).
    """
    t = np.asarray(peaks, dtype=float) / fs
    n = len(t)
    if n < 2:
        raise ValueError("need at least two beats for RR features")
    rr = np.diff(t)
    pre = np.r_[rr[0], rr]
    post = np.r_[rr, rr[-1]]
    local = pd.Series(pre).rolling(LOCAL_BEATS, center=True, min_periods=1).mean().to_numpy()
    csum = np.r_[0.0, np.cumsum(pre)]
    lo = np.searchsorted(t, t - AVG_HALF_S, side="left")
    hi = np.searchsorted(t, t + AVG_HALF_S, side="right")
    avg = (csum[hi] - csum[lo]) / np.maximum(hi - lo, 1)
    jumps = np.r_[np.nan, np.abs(np.diff(np.log(np.clip(pre, 1e-3, None))))]
    irr = pd.Series(jumps).rolling(IRR_BEATS, center=True, min_periods=3).median()
    irr = irr.fillna(float(np.nanmedian(jumps)) if n > 1 else 0.0).to_numpy()
    return pd.DataFrame(
        {
            "rr_pre": pre,
            "rr_post": post,
            "rr_local": local,
            "rr_avg": avg,
            "rr_pre_ratio": pre / local,
            "rr_post_ratio": post / local,
            IRR_COL: irr,
        }
    )


def windows(x: np.ndarray, peaks: np.ndarray) -> np.ndarray:
    """[n_beats, WINDOW] windows around each peak (edge-padded at the record's ends)."""
    padded = np.pad(x, (PRE, POST), mode="edge")
    idx = peaks[:, None] + np.arange(WINDOW)[None, :]  # padded index = peak - PRE + PRE + k
    return padded[idx].astype(np.float32)


def _typical(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the record's median beat, mask of typical beats). A beat is typical when its RMS distance to that
    median beat is within ``TEMPLATE_TYPICAL`` times the larger of the record's median distance and the
    lower quartile of the distances of the beats around it (same blocks as the templates). Ectopic beats
    are atypical, so they shape neither the templates nor the noise level; in a segment where noise
    (electrode motion) moves every beat away from the median beat, the lower quartile rises with it, so
    the noisy normal beats stay typical and the noise level follows the noise (without the local floor
    they were all atypical and the level stayed the record's; chosen on ``ds1-cv-noise``)."""
    overall = np.median(w, axis=0)
    dev = np.sqrt(((w - overall) ** 2).mean(axis=1))
    floor = np.empty(len(w))
    for start, lo, hi in _local_blocks(len(w)):
        floor[start : start + TEMPLATE_BLOCK] = np.quantile(dev[lo:hi], TEMPLATE_FLOOR_Q)
    return overall, dev <= TEMPLATE_TYPICAL * np.maximum(np.median(dev), floor)


def _local_blocks(n: int):
    """(block start, first neighbour, last neighbour + 1) per block of ``TEMPLATE_BLOCK`` beats."""
    for start in range(0, n, TEMPLATE_BLOCK):
        centre = start + TEMPLATE_BLOCK // 2
        yield start, max(0, centre - TEMPLATE_HALF), min(n, centre + TEMPLATE_HALF + 1)


def local_templates(w: np.ndarray, typical: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """[n, WINDOW] template per beat: median of the typical beats within ``TEMPLATE_HALF`` beats of it.

    Typical beats are within ``TEMPLATE_TYPICAL`` times the median RMS distance of the record's median
    beat. Computed once per block of ``TEMPLATE_BLOCK`` beats (neighbouring beats share a template), which
    keeps it to a few milliseconds per record. ``typical``: the record's (median beat, typical mask) from
    ``_typical`` when already computed.
    """
    overall, typical_mask = typical if typical is not None else _typical(w)
    out = np.empty_like(w)
    for start, lo, hi in _local_blocks(len(w)):
        near = w[lo:hi][typical_mask[lo:hi]]
        enough = len(near) >= TEMPLATE_MIN
        out[start : start + TEMPLATE_BLOCK] = np.median(near, axis=0) if enough else overall
    return out


def local_noise(
    w: np.ndarray, templates: np.ndarray, typical: tuple[np.ndarray, np.ndarray] | None = None
) -> np.ndarray:
    """[n] noise level around each beat: the median RMS distance of the typical beats within
    ``TEMPLATE_HALF`` beats to their own local templates (same blocks as :func:`local_templates`).

    It is how much normal beats differ from their template here: large in segments with muscle noise or
    electrode motion, small in clean ones. Ectopic beats are atypical and never raise it. Limit: a burst
    of strong noise shorter than about a quarter of the 101 beats around leaves those beats atypical, so
    there the level stays the record's and they score as abnormal; longer noisy stretches are followed.
    """
    _, typical_mask = typical if typical is not None else _typical(w)
    residual = np.sqrt(((w - templates) ** 2).mean(axis=1))
    fallback = float(np.median(residual[typical_mask]))
    out = np.empty(len(w), dtype=np.float32)
    for start, lo, hi in _local_blocks(len(w)):
        near = residual[lo:hi][typical_mask[lo:hi]]
        out[start : start + TEMPLATE_BLOCK] = np.median(near) if len(near) >= TEMPLATE_MIN else fallback
    return out


def beat_table(record: Record, peaks: str = "detect") -> pd.DataFrame:
    """The beats of one record as a DataFrame (see module docstring for the columns).

    ``peaks="detect"`` finds R peaks with neurokit2 and labels each with the nearest reference beat
    annotation within 150 ms (if the record has annotations); ``peaks="reference"`` uses the annotated
    beat positions (beat symbols of the AAMI classes only). Raises :class:`DataError` when the record
    yields too few beats, or when its stated sampling rate is evidently wrong: the reference beats' or the
    found beats' median heart rate is implausible at that rate, or the spectrum has no QRS energy there
    (:func:`~genforge.ecg.data.check_heart_rate`, :func:`~genforge.ecg.data.check_qrs_spectrum`). The
    annotation and spectrum checks run before peak detection, which a wrong rate would only mislead.
    """
    if peaks not in {"detect", "reference"}:
        raise DataError(f"peaks={peaks!r}: expected 'detect' or 'reference'")
    fs = record.fs
    y = bandpass(record.signal, fs)
    sign = polarity(y)
    y = y * sign
    ann_int = ann_sym = None
    if record.has_annotations:
        keep = np.array([s in AAMI for s in record.ann_symbols], dtype=bool)
        ann_int = record.to_internal(record.ann_samples[keep])
        ann_sym = record.ann_symbols[keep]
        check_heart_rate(record, record.ann_samples[keep] / record.fs_source, "reference beats")
    check_qrs_spectrum(record, y)
    if peaks == "reference":
        if ann_int is None or len(ann_int) == 0:
            raise DataError(f"{record.source}: peaks='reference' needs beat annotations (.atr); none found")
        pk, symbols = ann_int, ann_sym
    else:
        pk = detect_peaks(y, fs)
        symbols = _match(pk, ann_int, ann_sym, int(round(MATCH_S * fs))) if ann_int is not None else None
    pk = align_peaks(y, np.asarray(pk, dtype=np.int64), fs)
    order = np.argsort(pk, kind="stable")
    pk = pk[order]
    if symbols is not None:
        symbols = np.asarray(symbols, dtype=object)[order]
    if len(pk) < 5:
        raise DataError(f"{record.source}: only {len(pk)} beats found; expected an ECG with QRS complexes")
    check_heart_rate(record, pk / fs, "reference beats" if peaks == "reference" else "detected beats")
    rr = rr_features(pk, fs)
    w = windows(y, pk)
    w = w - np.median(w, axis=1, keepdims=True)
    template = np.median(w, axis=0)
    scale = float(template.max() - template.min())
    if not np.isfinite(scale) or scale <= 1e-6:
        raise DataError(f"{record.source}: beats have no amplitude; expected an ECG")
    w /= scale
    typical = _typical(w)
    templates = local_templates(w, typical)
    noise = local_noise(w, templates, typical)
    sample = record.to_source(pk)
    meta = pd.DataFrame(
        {
            "record": record.name,
            "sample": sample,
            "time_s": sample / record.fs_source,
            "peak": pk,
            "symbol": symbols if symbols is not None else "",
            "aami": [AAMI.get(s, "") for s in symbols] if symbols is not None else "",
        }
    )
    waves = pd.DataFrame(w, columns=WAVE_COLS)
    temps = pd.DataFrame(templates.astype(np.float32), columns=TEMPLATE_COLS)
    frame = pd.concat([meta, rr, pd.DataFrame({NOISE_COL: noise}), waves, temps], axis=1)
    frame.attrs.update(polarity=sign, scale=scale, fs=fs, lead=record.lead)
    return frame


def beat_arrays(beats: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(waves [n, WINDOW], templates [n, WINDOW], rr [n, len(MODEL_RR_COLS)]) as float32 arrays."""
    missing = [c for c in (*RR_COLS, WAVE_COLS[0], TEMPLATE_COLS[0]) if c not in beats.columns]
    if missing:
        raise DataError(f"beat table lacks column(s) {', '.join(missing)}; build it with beat_table()")
    return (
        beats[WAVE_COLS].to_numpy(np.float32),
        beats[TEMPLATE_COLS].to_numpy(np.float32),
        beats[MODEL_RR_COLS].to_numpy(np.float32),
    )


def prematurity_features(beats: pd.DataFrame) -> np.ndarray:
    """[n, 3] timing features relative to the patient's own rhythm around each beat (float64).

    ``log(RR_pre / RR_local)`` and ``log(RR_post / RR_local)``, each divided by the local irregularity
    (``rr_irr`` + ``IRR_FLOOR``), and ``log(RR_local / RR_avg)``. A premature beat in a regular rhythm gets
    a large negative first feature; the same RR jump inside atrial fibrillation does not.
    """
    cols = ["rr_pre", "rr_post", "rr_local", "rr_avg", IRR_COL]
    missing = [c for c in cols if c not in beats.columns]
    if missing:
        raise DataError(
            f"beat table lacks column(s) {', '.join(missing)}; build it with beat_table() (preprocessing "
            f"version {CACHE_VERSION})"
        )
    pre, post, local, avg = (np.log(np.clip(beats[c].to_numpy(np.float64), 1e-3, None)) for c in cols[:4])
    spread = np.clip(beats[IRR_COL].to_numpy(np.float64), 0.0, None) + IRR_FLOOR
    return np.stack([(pre - local) / spread, (post - local) / spread, local - avg], axis=1)


def _match(peaks: np.ndarray, ann: np.ndarray, sym: np.ndarray, tol: int) -> np.ndarray:
    """Symbol of the nearest annotation within ``tol`` samples of each peak ('' when none)."""
    out = np.full(len(peaks), "", dtype=object)
    if len(ann) == 0 or len(peaks) == 0:
        return out
    pos = np.searchsorted(ann, peaks)
    left = np.clip(pos - 1, 0, len(ann) - 1)
    right = np.clip(pos, 0, len(ann) - 1)
    pick = np.where(np.abs(ann[left] - peaks) <= np.abs(ann[right] - peaks), left, right)
    ok = np.abs(ann[pick] - peaks) <= tol
    out[ok] = sym[pick[ok]]
    return out


CACHE_VERSION = "6"


def default_cache_dir() -> Path:
    """``$GENFORGE_CACHE/ecg`` or the user's cache folder (``~/.cache/genforge/ecg``)."""
    base = os.environ.get("GENFORGE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "genforge")
    return Path(base) / "ecg"


def load_beats(
    root: Path,
    records: list[str],
    peaks: str = "reference",
    cache_dir: Path | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Beat tables of several records of one folder, concatenated; cached as Parquet per record.

    The cache key holds the record's file sizes and times, the peak source and the preprocessing
    version, so a changed file or a new version never reads stale beats. ``cache_dir=None`` uses
    :func:`default_cache_dir`; pass ``False`` to disable caching.
    """
    from tqdm.auto import tqdm

    from genforge.ecg.data import read_record
    from genforge.io import write_table_atomic

    root = Path(root)
    cache = default_cache_dir() if cache_dir is None else (Path(cache_dir) if cache_dir else None)
    frames = []
    for name in tqdm(records, desc="beats", unit="record", disable=None if progress else True, leave=False):
        key = None
        if cache is not None:
            stamp = "-".join(
                f"{int(f.stat().st_size)}.{int(f.stat().st_mtime)}"
                for f in sorted(root.glob(f"{name}.*"))
                if f.suffix in {".hea", ".dat", ".atr"}
            )
            key = (
                cache
                / f"{name}-{peaks}-v{CACHE_VERSION}-{hashlib.sha1(stamp.encode()).hexdigest()[:12]}.parquet"
            )
            if key.exists():
                frames.append(pd.read_parquet(key))
                continue
        frame = beat_table(read_record(root / name), peaks=peaks)
        if key is not None:
            write_table_atomic(key, frame)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
