"""ECG anomalies: pick or upload a record, see its flagged beats, tune the threshold, inspect the worst beats.

UI only: reading, beat extraction, scoring, explanations and summaries all come from ``genforge.ecg``.
Model folder: ``$GENFORGE_ECG_MODEL`` (default ``models/ecg``) or typed in; without one, a small model can
be trained on SIMULATED ECG from the page. Records folder: ``$GENFORGE_ECG_RECORDS``, else the MIT-BIH
reference folder under ``$GENFORGE_DATA`` when present.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

TITLE = "ECG anomalies"
ICON = ":material/monitor_heart:"
TOP_BEATS = 4
VIEW_SECONDS = 20.0


@st.cache_resource(show_spinner="loading the model ...")
def _detector(model_dir: str, stamp: float):
    from genforge.ecg import ECGAnomalyDetector

    return ECGAnomalyDetector.load(model_dir)


@st.cache_resource(show_spinner="training a small model on SIMULATED ECG ...")
def _demo_detector(folder: str):
    from genforge.ecg.simulate import train_demo_model

    return str(train_demo_model(Path(folder)))


@st.cache_data(show_spinner="reading the record and finding beats ...", max_entries=8)
def _beats(path: str, stamp: float, fs: float | None, peaks: str):
    from genforge.ecg import beat_table, read_record

    record = read_record(path, fs=fs)
    beats = beat_table(record, peaks=peaks)
    return record.signal, record.fs, record.fs_source, record.name, record.lead, record.notes, beats


def _stamp(path: Path) -> float:
    files = [path] if path.exists() else list(path.parent.glob(path.name + ".*"))
    return sum(f.stat().st_mtime + f.stat().st_size for f in files)


def _default_records_dir() -> str:
    env = os.environ.get("GENFORGE_ECG_RECORDS")
    if env:
        return env
    data = os.environ.get("GENFORGE_DATA")
    if data and (Path(data) / "mitdb").is_dir():
        return str(Path(data) / "mitdb")
    return ""


UPLOAD_STORE = "genforge-ecg-uploads"
UPLOAD_KEEP = 8  # as many as _beats caches: older uploads are deleted, not left in the temp folder


def _prune_uploads(store: Path, keep: int) -> None:
    """Delete all but the ``keep`` most recently used upload folders (uploads may be large)."""
    folders = sorted((p for p in store.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    for old in folders[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def _save_uploads(files) -> Path:
    """Uploaded files into a temporary folder of their own; returns the record path to read.

    One folder per distinct upload (named by a hash of the names and bytes) under the temp folder's
    ``genforge-ecg-uploads``, so reruns of the page reuse it and the cached beats; only the
    ``UPLOAD_KEEP`` most recently used are kept. Raises DataError when the files do not make exactly
    one record.
    """
    from genforge.errors import DataError

    digest = hashlib.sha256()
    for f in sorted(files, key=lambda f: f.name):
        digest.update(f.name.encode() + f.getvalue())
    store = Path(tempfile.gettempdir()) / UPLOAD_STORE
    folder = store / digest.hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    os.utime(folder)  # most recently used: kept by the pruning below
    _prune_uploads(store, keep=UPLOAD_KEEP)
    for f in files:
        target = folder / Path(f.name).name  # the bare name: an upload cannot write elsewhere
        if not target.exists():
            target.write_bytes(f.getvalue())
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


def _upload_message(exc: Exception, record_path: Path | None) -> str:
    """An error message about an uploaded file, naming the file as uploaded, not its temporary copy."""
    text = str(exc)
    if record_path is not None:
        text = text.replace(str(record_path.parent) + os.sep, "")
    return text


st.title(TITLE)
st.caption("A VAE on beat shape plus RR timing flags abnormal heartbeats. Scores: higher = more abnormal.")

# ------------------------------------------------------------------------------------------- model
with st.sidebar:
    st.header("Model")
    model_dir = st.text_input(
        "model folder", os.environ.get("GENFORGE_ECG_MODEL", "models/ecg"), key="model_dir"
    )
    use_demo = st.checkbox("use a small model trained on SIMULATED ECG", value=False, key="use_demo")
    peaks = st.radio(
        "beat positions",
        ["detect", "reference"],
        horizontal=True,
        key="peaks",
        help="detect: neurokit2 R peaks; reference: the .atr annotations",
    )

detector = None
try:
    if use_demo:
        model_dir = _demo_detector(str(Path(tempfile.gettempdir()) / "genforge-ecg-demo-model"))
        st.sidebar.warning("SIMULATED model: trained on simulated ECG, for trying the page only.")
    if not Path(model_dir, "config.json").is_file():
        st.info(
            f"No model at '{model_dir}'. Train one with `genforge ecg train --data DIR --out {model_dir}`, "
            "or tick 'use a small model trained on SIMULATED ECG' in the sidebar."
        )
    else:
        detector = _detector(model_dir, _stamp(Path(model_dir, "model.safetensors")))
except Exception as exc:  # a broken model folder must not take the page down
    st.error(f"model: {exc}")

# ------------------------------------------------------------------------------------------ record
source = st.radio("record source", ["folder", "upload"], horizontal=True, key="source")
record_path: Path | None = None
fs_csv: float | None = None
if source == "folder":
    folder = st.text_input("records folder", _default_records_dir(), key="folder")
    if folder:
        base = Path(folder)
        names = sorted({p.stem for p in base.glob("*.hea")} | {p.name for p in base.glob("*.csv")})
        if not base.is_dir():
            st.error(f"records folder '{folder}' not found")
        elif not names:
            st.warning(f"no records (.hea or .csv) in '{folder}'")
        else:
            choice = st.selectbox("record", names, key="record")
            record_path = base / choice
            if choice.endswith(".csv"):
                fs_csv = st.number_input(
                    "sampling rate of the CSV (Hz)", 50.0, 10000.0, 360.0, key="fs_folder"
                )
else:
    uploads = st.file_uploader(
        "upload .hea + .dat (+ .atr), or a .csv",
        accept_multiple_files=True,
        type=["hea", "dat", "atr", "csv", "parquet"],
        key="upload",
    )
    fs_csv = st.number_input("sampling rate of a CSV upload (Hz)", 50.0, 10000.0, 360.0, key="fs_upload")
    if uploads:
        try:
            record_path = _save_uploads(uploads)
        except Exception as exc:  # the upload makes no record: say why, keep the page usable
            st.error(str(exc))

if detector is None or record_path is None:
    st.stop()

try:
    signal, fs, fs_source, name, lead, notes, beats = _beats(
        str(record_path), _stamp(record_path), fs_csv, peaks
    )
    from genforge.ecg import record_summary, score_record

    scored = score_record(detector, record_path, beats=beats)
except Exception as exc:  # bad file: one message, the page stays usable
    st.error(_upload_message(exc, record_path) if source == "upload" else str(exc))
    st.stop()

for note in notes:
    st.warning(note)

# ------------------------------------------------------------------------------------------ threshold
lo, hi = float(np.floor(scored["score"].min())), float(np.ceil(scored["score"].max()))
default = float(np.clip(detector.threshold_, lo, hi))
threshold = st.slider(
    "threshold (anomaly score)",
    lo,
    max(hi, lo + 1.0),
    default,
    key="threshold",
    help="the model's default flags about 1% of normal beats",
)
scored["flag"] = scored["score"] > threshold
summary = record_summary(scored)

c1, c2, c3, c4 = st.columns(4)
c1.metric("record", f"{name} ({lead})")
c2.metric("beats", f"{summary['beats']:,}")
c3.metric("flagged", f"{summary['flagged']:,}")
c4.metric("flagged %", f"{summary['flagged_pct']:.1f}%")
if summary["same_record_reference"]:
    st.caption(
        "This record was in the model's training set: its beats are also compared with its own training "
        "beats (the same-record term), so scores here are patient-adapted."
    )
if "per_class" in summary:
    st.caption("per reference class (AAMI): beats and flagged")
    st.dataframe(pd.DataFrame(summary["per_class"]).T, width="content")

# ------------------------------------------------------------------------------------------ plots
duration = len(signal) / fs
start = st.slider("view from (s)", 0.0, max(duration - VIEW_SECONDS, 0.0), 0.0, step=1.0, key="start")
first = int(start * fs)
seg = signal[first : first + int(VIEW_SECONDS * fs)]
t = (first + np.arange(len(seg))) / fs
fig = go.Figure(go.Scattergl(x=t, y=seg, mode="lines", name="ECG", line={"width": 1}))
view = scored[(scored["time_s"] >= start) & (scored["time_s"] < start + VIEW_SECONDS)]
peak_idx = np.clip((view["time_s"].to_numpy() * fs).astype(int), 0, len(signal) - 1)
flag = view["flag"].to_numpy()
fig.add_trace(
    go.Scatter(
        x=view["time_s"][flag],
        y=signal[peak_idx][flag],
        mode="markers",
        name="flagged",
        marker={"color": "red", "size": 10, "symbol": "x"},
    )
)
fig.update_layout(
    height=300,
    margin={"l": 10, "r": 10, "t": 30, "b": 10},
    xaxis_title="time (s)",
    title=f"{name}: {VIEW_SECONDS:.0f} s from {start:.0f} s",
)
st.plotly_chart(fig, key="signal")

fig2 = go.Figure(
    go.Scattergl(
        x=scored["time_s"],
        y=scored["score"],
        mode="markers",
        name="beats",
        marker={"size": 3, "color": np.where(scored["flag"], "red", "steelblue")},
    )
)
fig2.add_hline(y=threshold, line_dash="dash", annotation_text="threshold")
fig2.update_layout(
    height=220,
    margin={"l": 10, "r": 10, "t": 30, "b": 10},
    title="anomaly score per beat",
    xaxis_title="time (s)",
)
st.plotly_chart(fig2, key="scores")

# ------------------------------------------------------------------------------------ worst beats
st.subheader("most anomalous beats")
top = scored.sort_values("score", ascending=False).head(TOP_BEATS)
cols = st.columns(len(top)) if len(top) else []
for col, (i, row) in zip(cols, top.iterrows(), strict=False):
    ex = detector.explain(beats.loc[[i]])
    f = go.Figure()
    f.add_trace(go.Scatter(x=ex["t_ms"], y=ex["input"], name="beat", line={"color": "black"}))
    f.add_trace(
        go.Scatter(x=ex["t_ms"], y=ex["reconstruction"], name="reconstruction", line={"color": "red"})
    )
    f.add_trace(go.Scatter(x=ex["t_ms"], y=ex["template"], name="local template", line={"dash": "dot"}))
    label = f" ({row['symbol']})" if row["symbol"] else ""
    f.update_layout(
        height=250,
        margin={"l": 5, "r": 5, "t": 30, "b": 5},
        showlegend=False,
        title=f"t={row['time_s']:.1f}s score {row['score']:.1f}{label}",
    )
    col.plotly_chart(f, key=f"beat-{i}")
st.caption(
    "black: the beat; red: the VAE's reconstruction; dotted: the local template (median of the typical "
    "beats around it)."
)

# ------------------------------------------------------------------------------------------ downloads
st.download_button(
    "download beat scores (CSV)",
    scored.to_csv(index=False).encode(),
    f"{name}_scores.csv",
    mime="text/csv",
    key="dl_csv",
)
flagged = scored[scored["flag"]]
st.download_button(
    "download flagged beats (CSV)",
    flagged.to_csv(index=False).encode(),
    f"{name}_flagged.csv",
    mime="text/csv",
    key="dl_flagged",
)
