"""Batch scoring of records: one row per beat, resumable per record, atomic outputs, torchrun-aware.

``score_records`` is what ``genforge ecg score`` runs. Each record's beats are written to a part file in
a work folder (``<out>.parts/<model fingerprint>/``) as soon as the record is done, so a rerun skips the
finished records; the final Parquet table is merged from the part files and written atomically. Under
``torchrun`` the records are split across ranks (``genforge.training.distributed.shard``); rank 0 merges
once every rank has finished. A record that cannot be read or scored is reported and skipped.
A WFDB annotation file of the flagged beats (extension ``.gfa``, comment annotations whose note holds the
score) is written per record beside the output, where WFDB viewers find it next to the record's header
when the output lives in the records' folder.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from genforge.ecg.data import read_record, resolve_records
from genforge.ecg.models import SIMULATED_PREFIX, ECGAnomalyDetector
from genforge.ecg.preprocess import beat_table
from genforge.errors import GenforgeError
from genforge.io import atomic_path, write_table_atomic, write_text_atomic
from genforge.outputs import check_writable

OUT_COLS = [
    "record",
    "sample",
    "time_s",
    "score",
    "flag",
    "symbol",
    "aami",
    "shape_score",
    "timing_score",
    "patient_score",  # distance to the training beats of the same record; NaN for records not in training
    "path",  # the record's file (records are identified by path: two 100s in different folders differ)
]
ANN_EXT = "gfa"


def score_record(
    detector: ECGAnomalyDetector,
    path: str | os.PathLike[str],
    lead: str | None = None,
    fs: float | None = None,
    peaks: str = "detect",
    threshold: float | None = None,
    beats: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Score every beat of one record: the output columns :data:`OUT_COLS` (``score`` higher = abnormal)."""
    if beats is None:
        beats = beat_table(read_record(path, lead=lead, fs=fs), peaks=peaks)
    parts = detector.score_parts(beats)
    # the model's own thresholds: one for records seen in training, one for new records
    thr = detector.thresholds(beats) if threshold is None else float(threshold)
    return pd.DataFrame(
        {
            "record": beats["record"].to_numpy(),
            "sample": beats["sample"].to_numpy(np.int64),
            "time_s": beats["time_s"].to_numpy(np.float64),
            "score": parts["score"].to_numpy(),
            "flag": parts["score"].to_numpy() > thr,
            "symbol": beats["symbol"].astype(str).to_numpy(),
            "aami": beats["aami"].astype(str).to_numpy(),
            "shape_score": parts["shape"].to_numpy(),
            "timing_score": parts["timing"].to_numpy(),
            "patient_score": parts["patient"].to_numpy(),
        }
    )


@dataclass
class ScoreReport:
    """What a scoring run did: the records scored now, skipped (already done), and failed (with why)."""

    out: Path
    scored: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    n_records: int = 0
    n_beats: int = 0
    n_flagged: int = 0
    target_far: float | None = None  # the model's false-alarm target (records seen in training)
    new_patient_far: dict | None = None  # its false-alarm rate on held-out patients (median, q25, q75, max)
    seen_records: list[str] = field(default_factory=list)  # records in the output seen in training


def model_fingerprint(
    model_dir: str | os.PathLike[str], threshold: float | None, peaks: str, lead: str | None, fs: float | None
) -> str:
    """A short hash of the model files and the scoring options: part files of another setup are not reused."""
    h = hashlib.sha256()
    for name in ("config.json", "model.safetensors"):
        p = Path(model_dir) / name
        if p.exists():
            h.update(p.read_bytes())
    h.update(repr((threshold, peaks, lead, fs)).encode())
    return h.hexdigest()[:16]


def score_records(
    paths: list[str | os.PathLike[str]],
    model_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    lead: str | None = None,
    fs: float | None = None,
    peaks: str = "detect",
    threshold: float | None = None,
    work_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> ScoreReport:
    """Score records (files or folders) into one Parquet table; see the module docstring."""
    from tqdm.auto import tqdm

    from genforge.training import distributed as dist

    out = Path(out)
    if out.suffix.lower() not in {".parquet", ".pq"}:
        raise GenforgeError(f"--out {out}: expected a .parquet file name")
    if out.is_dir():
        raise GenforgeError(f"--out {out}: is a folder; expected a .parquet file name")
    check_writable(out, "--out", folder=False)
    if threshold is not None and not math.isfinite(threshold):
        raise GenforgeError(f"--threshold {threshold}: expected a finite number")
    records = resolve_records(list(paths))
    keys = _unique_keys(records)
    ann_names = annotation_names(keys, echo)  # before any work: every record gets its own annotation file
    stamps = {key: content_fingerprint(rec) for key, rec in zip(keys, records, strict=True)}
    detector = ECGAnomalyDetector.load(model_dir)
    real = [k for k in keys if not k.startswith(SIMULATED_PREFIX)]
    if detector.trained_on_simulated_only and real:
        echo(
            f"warning: {model_dir} was trained on SIMULATED ECG only and flags most normal beats of real "
            f"recordings ({', '.join(real[:3])}{', ...' if len(real) > 3 else ''}); train a model on real "
            "records with 'genforge ecg train' before reading its flags"
        )
    fp = model_fingerprint(model_dir, threshold, peaks, lead, fs)
    parts_dir = Path(work_dir) if work_dir else out.with_name(out.name + ".parts")
    parts_dir = parts_dir / fp
    parts_dir.mkdir(parents=True, exist_ok=True)
    dist.init()
    report = ScoreReport(out=out, target_far=detector.target_far, new_patient_far=detector.new_patient_far_)
    mine = list(dist.shard(list(zip(keys, records, strict=True))))
    bar = tqdm(mine, desc="score", unit="record", disable=None if progress else True)
    for key, rec in bar:
        part = parts_dir / f"{key}.{stamps[key]}.parquet"
        error = parts_dir / f"{key}.{stamps[key]}.error.txt"
        if part.exists():
            report.resumed.append(key)
            continue
        bar.set_postfix_str(key)
        try:
            table = score_record(detector, rec, lead=lead, fs=fs, peaks=peaks, threshold=threshold)
            table["record"], table["path"] = key, str(rec)
        except GenforgeError as exc:
            write_text_atomic(error, str(exc))
            continue
        if error.exists():
            error.unlink()
        write_table_atomic(part, table)
        report.scored.append(key)
    bar.close()
    dist.barrier()
    if not dist.is_main():
        return report
    frames = []
    for key in keys:
        part, error = parts_dir / f"{key}.{stamps[key]}.parquet", parts_dir / f"{key}.{stamps[key]}.error.txt"
        if part.exists():
            frames.append(pd.read_parquet(part))
        elif error.exists():
            report.failed[key] = error.read_text().strip()
            echo(f"error: {report.failed[key]}")
        else:
            report.failed[key] = f"{key}: not scored (another rank failed?)"
    if frames:
        table = pd.concat(frames, ignore_index=True).reindex(columns=OUT_COLS)  # parts of older versions
        table.attrs = {}
        write_table_atomic(out, table)
        write_annotations(table, out.parent, names=ann_names)
        report.n_records = len(frames)
        report.n_beats, report.n_flagged = len(table), int(table["flag"].sum())
        known = set(detector.training_records_ or [])
        report.seen_records = sorted({str(r) for r in table["record"]} & known)
    work_root = parts_dir.parent if parts_dir.parent.name.endswith(".parts") else parts_dir
    if not report.failed or not frames:  # complete, or nothing worth resuming: leave no work files behind
        shutil.rmtree(work_root, ignore_errors=True)
    return report


def content_fingerprint(record: str | os.PathLike[str]) -> str:
    """A short hash of what a record's files hold now: size, mtime, and the bytes of their start, middle
    and end (the header and a sample of the data). A part file is reused only for the same content, so a
    record replaced after a failed run is scored again."""
    path = Path(record)
    files = (
        [path]
        if path.suffix.lower() in {".csv", ".parquet", ".pq"}
        else [path.with_name(path.name + ext) for ext in (".hea", ".dat", ".atr")]
    )
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        try:
            st = f.stat()
            h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
            with open(f, "rb") as fh:
                for offset in sorted({0, max(0, st.st_size // 2 - 32768), max(0, st.st_size - 65536)}):
                    fh.seek(offset)
                    h.update(fh.read(65536))
        except OSError:
            h.update(b"missing")
    return h.hexdigest()[:12]


def wfdb_name(name: str) -> str:
    """``name`` as WFDB accepts a record name: letters, digits, ``_`` and ``-`` (others become ``_``)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name) or "record"


def annotation_names(keys: list[str], echo: Callable[[str], None] = print) -> dict[str, str]:
    """Record key -> annotation file stem, WFDB-safe and distinct; says which names were changed."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for key in keys:
        name = base = wfdb_name(key)
        n = 1
        while name in taken:
            n += 1
            name = f"{base}_{n}"
        taken.add(name)
        names[key] = name
        if name != key:
            echo(
                f"note: record {key!r}: annotation file named {name}.{ANN_EXT} (WFDB names take letters, "
                "digits, _ and -)"
            )
    return names


def write_annotations(
    table: pd.DataFrame, directory: Path, names: dict[str, str] | None = None
) -> list[Path]:
    """One WFDB annotation file ``<record>.gfa`` per record with its flagged beats (comment + score).

    ``names`` maps a record to its file stem (default: the record, made WFDB-safe by :func:`wfdb_name`).
    """
    import wfdb

    written = []
    for record, group in table.groupby("record", sort=False):
        flagged = group[group["flag"]]
        stem = (names or {}).get(str(record)) or wfdb_name(str(record))
        target = directory / f"{stem}.{ANN_EXT}"
        with tempfile.TemporaryDirectory(dir=directory) as tmp:
            samples = flagged["sample"].to_numpy(np.int64)
            if len(samples) == 0:  # wrann cannot write an empty file; keep a one-line text marker out
                if target.exists():
                    target.unlink()
                continue
            wfdb.wrann(
                stem,
                ANN_EXT,
                samples,
                symbol=['"'] * len(samples),
                aux_note=[f"anomaly {s:.2f}" for s in flagged["score"]],
                write_dir=tmp,
            )
            with atomic_path(target) as final:
                shutil.copyfile(Path(tmp) / f"{stem}.{ANN_EXT}", final)
        written.append(target)
    return written


def _unique_keys(records: list[Path]) -> list[str]:
    """One distinct key per record path: its name, or ``<folder>_<name>`` where names clash."""
    names = [rec.stem if rec.suffix.lower() in {".csv", ".parquet", ".pq"} else rec.name for rec in records]
    resolved = [rec.resolve() for rec in records]
    keys, seen = [], set()
    for rec, name, full in zip(records, names, resolved, strict=True):
        clash = sum(1 for other, n in zip(resolved, names, strict=True) if n == name and other != full)
        key = base = f"{rec.parent.name}_{name}" if clash else name
        n = 1
        while key in seen:
            n += 1
            key = f"{base}_{n}"
        seen.add(key)
        keys.append(key)
    return keys


def record_summary(table: pd.DataFrame) -> dict[str, object]:
    """Beats, flagged beats and percentage; whether the same-record term applied (the record was in the
    model's training set); per reference class counts (all and flagged) when labelled."""
    n = int(len(table))
    flagged = int(table["flag"].sum()) if n else 0
    out: dict[str, object] = {
        "beats": n,
        "flagged": flagged,
        "flagged_pct": 100.0 * flagged / n if n else 0.0,
        "same_record_reference": bool(
            n and "patient_score" in table and table["patient_score"].notna().any()
        ),
    }
    if n and "aami" in table and (table["aami"] != "").any():
        counts = table.groupby("aami")["flag"].agg(["size", "sum"])
        out["per_class"] = {
            str(k or "unlabelled"): {"beats": int(r["size"]), "flagged": int(r["sum"])}
            for k, r in counts.iterrows()
        }
    return out
