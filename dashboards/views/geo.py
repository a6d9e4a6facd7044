"""Geo augmentation: a point layer on a plain-coordinate map, its local Moran's I clusters, a SpaceGAN
fitted on it, generated draws beside the real values, the MIE / RMSE selection curves, and downloads.

UI only: reading, validation, weights, Moran's I, the model and its scores all come from ``genforge.geo``.
The default layer is libpysal's Baltimore house sales (embedded); users may upload CSV, Parquet or GeoJSON.
Maps are plotly scatter plots on the layer's own coordinates (no tile server, works offline).
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from genforge.errors import GenforgeError
from genforge.geo import SpaceGAN, baltimore, moran, prepare, read_layer, score_mean, weights

TITLE = "Geo augmentation"
ICON = ":material/map:"


@st.cache_data(show_spinner="reading the layer ...", max_entries=4)
def _layer(name: str, payload: bytes | None):
    """The raw table (and whether it is the embedded default) of an uploaded file or Baltimore."""
    if payload is None:
        data = baltimore()
        return data.frame, data.target[0], list(data.coords), data.covariates, "projected"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(name).name
        path.write_bytes(payload)
        frame, _, declared = read_layer(path)
    return frame, None, None, None, declared or "auto"


@st.cache_data(show_spinner="Moran's I (esda) ...", max_entries=8)
def _moran(frame: pd.DataFrame, target: str, coords: tuple[str, str], crs: str, k: int):
    data = prepare(frame, target, coords, [], crs=crs, k=k, source="upload", duplicates="keep")
    summary, table = moran(data.y[:, 0], weights(data.xy, f"knn:{k}"), permutations=199)
    return summary, table


@st.cache_resource(show_spinner="training SpaceGAN ...", max_entries=4)
def _model(
    key: str,
    _frame: pd.DataFrame,
    target: str,
    coords: tuple[str, str],
    covariates: tuple[str, ...],
    crs: str,
    k: int,
    steps: int,
) -> SpaceGAN:
    data = prepare(_frame, target, coords, list(covariates), crs=crs, k=k, source="upload")
    return SpaceGAN(k=k, max_steps=steps, check_every=max(10, steps // 20), n_draws=10, progress=False).fit(
        data
    )


def _map(frame: pd.DataFrame, coords: list[str], color, title: str, discrete: bool = False) -> go.Figure:
    kwargs = (
        {
            "color_discrete_map": {
                "HH": "#d7301f",
                "LL": "#2b8cbe",
                "HL": "#fdae61",
                "LH": "#abd9e9",
                "ns": "#cccccc",
            }
        }
        if discrete
        else {"color_continuous_scale": "Viridis"}
    )
    fig = px.scatter(frame, x=coords[0], y=coords[1], color=color, title=title, **kwargs)
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    fig.update_layout(height=420, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig


def main() -> None:
    st.title(TITLE)
    st.caption(
        "SpaceGAN (Klemmer et al. 2019) on the core GAN: generated values conditioned on each point's "
        "neighbourhood, checkpoints chosen by the Moran's I error (MIE)."
    )
    upload = st.file_uploader(
        "Point layer (CSV, Parquet or GeoJSON); default: Baltimore house sales",
        type=["csv", "parquet", "geojson", "json"],
    )
    try:
        frame, default_target, default_coords, default_covs, crs = _layer(
            upload.name if upload else "baltimore", upload.getvalue() if upload else None
        )
    except GenforgeError as exc:
        st.error(str(exc))
        return
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    if len(numeric) < 3:
        st.error("the layer needs two numeric coordinate columns and a numeric target column")
        return
    left, mid, right = st.columns(3)
    guess = (
        default_coords
        or [c for c in numeric if c.lower() in ("x", "lon", "longitude")][:1]
        + [c for c in numeric if c.lower() in ("y", "lat", "latitude")][:1]
    )
    x_col = left.selectbox("x / longitude", numeric, index=numeric.index(guess[0]) if len(guess) == 2 else 0)
    y_col = mid.selectbox("y / latitude", numeric, index=numeric.index(guess[1]) if len(guess) == 2 else 1)
    rest = [c for c in numeric if c not in (x_col, y_col)]
    target = right.selectbox(
        "target", rest, index=rest.index(default_target) if default_target in rest else 0
    )
    covs = st.multiselect(
        "covariates",
        [c for c in rest if c != target],
        default=[c for c in (default_covs or []) if c in rest and c != target],
    )
    k = st.slider("neighbours k", 2, 16, 8)
    coords = (x_col, y_col)
    try:
        summary, table = _moran(frame, target, coords, crs, k)
    except GenforgeError as exc:
        st.error(str(exc))
        return
    st.metric("global Moran's I of the target", f"{summary['I']:.3f}", help=f"p_sim {summary.get('p_sim')}")
    shown = frame.assign(cluster=table["cluster"].to_numpy(), local_I=table["local_I"].to_numpy())
    a, b = st.columns(2)
    a.plotly_chart(_map(shown, list(coords), target, f"real {target}"), width="stretch", key="geo_real")
    b.plotly_chart(
        _map(shown, list(coords), "cluster", "local Moran clusters (p < 0.05)", discrete=True),
        width="stretch",
        key="geo_clusters",
    )

    steps = st.select_slider("training steps", [100, 300, 1000, 2000], value=300)
    if not st.button("Fit SpaceGAN and generate", type="primary") and "geo_key" not in st.session_state:
        st.info("Fit a model to see generated draws, the selection curves and downloads.")
        return
    key = hashlib.sha1(
        pd.util.hash_pandas_object(frame, index=False).values.tobytes()
        + repr((target, coords, covs, crs, k, steps)).encode()
    ).hexdigest()
    st.session_state["geo_key"] = key
    try:
        model = _model(key, frame, target, coords, tuple(covs), crs, k, steps)
    except GenforgeError as exc:
        st.error(str(exc))
        return
    n_draws = 10
    generated = model.sample(n_per_point=n_draws, seed=1)
    draw = st.slider("draw", 0, n_draws - 1, 0)
    mean = generated.groupby(generated.index % len(frame))[target].mean().to_numpy()
    scores = score_mean(frame[[target]].to_numpy(float), mean, model.W_)
    c1, c2, c3 = st.columns(3)
    c1.metric("RMSE of the mean of draws", f"{scores['rmse']:.4g}")
    c2.metric("MIE of the mean of draws", f"{scores['mie']:.4g}")
    c3.metric("best-MIE step", str(model.best_step_["mie"]))
    one = generated[generated["draw"] == draw]
    a, b = st.columns(2)
    a.plotly_chart(_map(one, list(coords), target, f"generated draw {draw}"), width="stretch", key="geo_draw")
    b.plotly_chart(
        _map(frame.assign(**{target: mean}), list(coords), target, f"mean of {n_draws} draws"),
        width="stretch",
        key="geo_mean",
    )
    curves = pd.DataFrame(model.selection_)
    fig = go.Figure()
    fig.add_scatter(x=curves["step"], y=curves["mie"], name="MIE")
    fig.add_scatter(
        x=curves["step"], y=curves["rmse"] / max(curves["rmse"].max(), 1e-12), name="RMSE (scaled)"
    )
    fig.update_layout(title="selection curves (mean of draws, every check)", height=320, xaxis_title="step")
    st.plotly_chart(fig, width="stretch", key="geo_curves")
    st.download_button(
        "download generated rows (CSV)",
        generated.to_csv(index=False).encode(),
        file_name="generated.csv",
        mime="text/csv",
    )
    st.caption(
        f"{len(generated)} rows ({n_draws} per point); real values for comparison: "
        f"mean {np.mean(frame[target]):.4g}, generated mean {generated[target].mean():.4g}"
    )


main()
