"""ECG anomalies: pick or upload a record, see its flagged beats, tune the threshold, inspect the worst beats.

UI only: reading, upload pairing, beat extraction, scoring, explanations and summaries all come from
``genforge.ecg``'s public names. The page opens on ``$GENFORGE_ECG_MODEL`` when set, else on the model and
records of the newest demo run under the results folder (``genforge demo`` / ``genforge ecg demo``), else
``models/ecg``. Records folder: ``$GENFORGE_ECG_RECORDS``, else the demo's records, else the MIT-BIH
reference folder under ``$GENFORGE_DATA`` when present. A model trained on SIMULATED ECG only is refused
for real records: it knows one simulated heart and flags most normal beats of a real one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from genforge.dashboards.common import results_root
from genforge.ecg import record_summary, score_record, upload_message

TITLE = "ECG anomalies"
ICON = ":material/monitor_heart:"
TOP_BEATS = 4
VIEW_SECONDS = 20.0
SLIDER_RANGE = (0.5, 3.0)  # the threshold slider, in units of the model's threshold
SCORE_FLOOR = 0.05  # scores below this many thresholds sit on the floor of the log axis


@st.cache_resource(show_spinner="loading the model ...")
def _detector(model_dir: str, stamp: float):
    from genforge.ecg import ECGAnomalyDetector

    return ECGAnomalyDetector.load(model_dir)


@st.cache_resource(show_spinner="training a small model on SIMULATED ECG ...")
def _demo_detector(folder: str):
    from genforge.ecg import train_demo_model

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


def _latest_demo():
    from genforge.ecg import latest_demo_outputs

    return latest_demo_outputs(results_root())


def _default_model_dir(demo) -> str:
    env = os.environ.get("GENFORGE_ECG_MODEL")
    if env:
        return env
    return str(demo.model) if demo is not None else "models/ecg"


def _default_records_dir(demo) -> str:
    env = os.environ.get("GENFORGE_ECG_RECORDS")
    if env:
        return env
    if demo is not None and not os.environ.get("GENFORGE_ECG_MODEL"):
        return str(demo.records)
    data = os.environ.get("GENFORGE_DATA")
    if data and (Path(data) / "mitdb").is_dir():
        return str(Path(data) / "mitdb")
    return ""


st.title(TITLE)
st.caption(
    "Beat shape (a PCA + nearest-neighbour density; a VAE beside it explains each beat) plus RR timing "
    "flags abnormal heartbeats. Scores are shown in units of the model's threshold: above 1 = flagged."
)
demo = _latest_demo()

# ------------------------------------------------------------------------------------------- model
with st.sidebar:
    st.header("Model")
    model_dir = st.text_input("model folder", _default_model_dir(demo), key="model_dir")
    use_demo = st.checkbox("use a small model trained on SIMULATED ECG", value=False, key="use_demo")
    peaks = st.radio(
        "beat positions",
        ["detect", "reference"],
        horizontal=True,
        key="peaks",
        help="detect: neurokit2 R peaks; reference: the .atr annotations",
    )
    if demo is not None and model_dir == str(demo.model):
        st.caption(f"opened on the latest demo run: {demo.model.parent}")

detector = None
try:
    if use_demo:
        model_dir = _demo_detector(str(Path(tempfile.gettempdir()) / "genforge-ecg-demo-model"))
    if not Path(model_dir, "config.json").is_file():
        st.info(
            f"No model at '{model_dir}'. Train one with `genforge ecg train --data DIR --out {model_dir}`, "
            "run `genforge ecg demo` (the page then opens on its model and records), or tick 'use a small "
            "model trained on SIMULATED ECG' in the sidebar."
        )
    else:
        detector = _detector(model_dir, _stamp(Path(model_dir, "model.safetensors")))
except Exception as exc:  # a broken model folder must not take the page down
    st.error(f"model: {exc}")
simulated_model = detector is not None and detector.trained_on_simulated_only
if simulated_model:
    st.sidebar.warning("SIMULATED model: trained on simulated ECG only, for SIMULATED records.")

# ------------------------------------------------------------------------------------------ record
source = st.radio("record source", ["folder", "upload"], horizontal=True, key="source")
record_path: Path | None = None
fs_csv: float | None = None
if source == "folder":
    folder = st.text_input("records folder", _default_records_dir(demo), key="folder")
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
        from genforge.ecg import records_from_upload

        try:
            record_path = records_from_upload(uploads)
        except Exception as exc:  # the upload makes no record: say why, keep the page usable
            st.error(str(exc))

if detector is None or record_path is None:
    st.stop()

try:
    signal, fs, fs_source, name, lead, notes, beats = _beats(
        str(record_path), _stamp(record_path), fs_csv, peaks
    )
    if simulated_model and not str(name).startswith("SIMULATED"):
        st.error(
            f"'{name}' is a real recording, and this model was trained on SIMULATED ECG only: it knows one "
            "simulated heart and flags most normal beats of real ones (68% of MIT-BIH record 100's). Train "
            "a model on real records first: `genforge ecg train --data DIR --records DS1 --out models/ecg`."
        )
        st.stop()
    scored = score_record(detector, record_path, beats=beats)
except Exception as exc:  # bad file: one message, the page stays usable
    st.error(upload_message(exc, record_path) if source == "upload" else str(exc))
    st.stop()

for note in notes:
    st.warning(note)

# ------------------------------------------------------------------------------------------ threshold
# the model's threshold for this record (one for records seen in training, one for new records)
model_threshold = float(np.median(detector.thresholds(beats))) if len(beats) else detector.threshold_
unit = model_threshold if model_threshold > 0 else 1.0  # the score axis is in units of this
seen = bool(len(beats)) and bool(detector.seen_in_training(beats).all())
expected = detector.new_patient_far_
if seen or not expected:
    far_text = f"about {100 * detector.target_far:.0f}% of normal beats"
else:
    far_text = (
        f"{100 * expected['median']:.1f}% of normal beats (median over held-out training patients; "
        f"25-75%: {100 * expected['q25']:.1f}-{100 * expected['q75']:.1f}%)"
    )
factor = st.slider(
    "threshold (× the model's)",
    SLIDER_RANGE[0],
    SLIDER_RANGE[1],
    1.0,
    step=0.05,
    key="threshold",
    help=f"1 = the model's threshold for this record ({model_threshold:.2f}), expected to flag {far_text}",
)
threshold = factor * unit
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
is_wfdb = Path(str(record_path) + ".hea").is_file()
amplitude = "ECG (mV)" if is_wfdb else "ECG (units of the file)"
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
    yaxis_title=amplitude,
    title=f"{name} ({lead}, band-passed 0.5-40 Hz): {VIEW_SECONDS:.0f} s from {start:.0f} s",
)
st.plotly_chart(fig, key="signal")

relative = np.maximum(scored["score"].to_numpy() / unit, SCORE_FLOOR)
fig2 = go.Figure(
    go.Scattergl(
        x=scored["time_s"],
        y=relative,
        mode="markers",
        name="beats",
        marker={"size": 3, "color": np.where(scored["flag"], "red", "steelblue")},
        customdata=scored["score"],
        hovertemplate="t=%{x:.1f} s<br>%{y:.2f} × threshold (score %{customdata:.2f})<extra></extra>",
    )
)
fig2.add_hline(y=factor, line_dash="dash", annotation_text="threshold")
fig2.update_layout(
    height=240,
    margin={"l": 10, "r": 10, "t": 30, "b": 10},
    title=f"anomaly score per beat, in units of the model's threshold (log scale; below {SCORE_FLOOR} "
    "drawn at the floor)",
    xaxis_title="time (s)",
    yaxis_title="score / threshold",
    yaxis_type="log",
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
        go.Scatter(x=ex["t_ms"], y=ex["reconstruction"], name="VAE reconstruction", line={"color": "red"})
    )
    f.add_trace(go.Scatter(x=ex["t_ms"], y=ex["template"], name="local template", line={"dash": "dot"}))
    label = f" ({row['symbol']})" if row["symbol"] else ""
    f.update_layout(
        height=280,
        margin={"l": 5, "r": 5, "t": 30, "b": 5},
        legend={"orientation": "h", "y": -0.35, "font": {"size": 9}},
        title=f"t={row['time_s']:.1f} s, {row['score'] / unit:.1f}× threshold{label}",
        xaxis_title="ms from the R peak",
        yaxis_title="× median beat height",
    )
    col.plotly_chart(f, key=f"beat-{i}")
st.caption(
    "Each beat is scaled by the record's median beat height. black: the beat; red: the VAE's "
    "reconstruction (local template + reconstructed deviation); dotted: the local template (median of the "
    "typical beats around it). Where red and black part is where the VAE was surprised (models saved "
    "since state version 7 score shape with a PCA + kNN density; the VAE explains)."
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
