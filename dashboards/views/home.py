"""Home: what is installed (suites, device, versions) and the latest `genforge demo` results."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version

import pandas as pd
import streamlit as st

from genforge.dashboards.common import installed_suites, read_run, result_runs, results_root

TITLE = "Home"
ICON = ":material/home:"
PACKAGES = ("genforge", "torch", "streamlit", "scikit-learn")


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


@st.cache_resource
def _device() -> str:
    from genforge.devices import pick_device

    return str(pick_device("auto"))


st.title("genforge")
st.write(
    "Generative models (VAE, GAN, transformer, diffusion) at work for industries. "
    "Train all four families on real data with `genforge demo`; its results appear below."
)

left, middle, right = st.columns(3)
with left:
    st.subheader("Device")
    st.metric("training device", _device())
with middle:
    st.subheader("Versions")
    st.dataframe(
        pd.DataFrame(
            [{"package": "python", "version": platform.python_version()}]
            + [{"package": d, "version": _version(d)} for d in PACKAGES]
        ),
        hide_index=True,
    )
with right:
    st.subheader("Suites")
    suites = installed_suites()
    if suites:
        st.dataframe(pd.DataFrame(suites)[["suite", "command", "page"]], hide_index=True)
    else:
        st.write("No suites installed.")

st.header("Latest demo results")
runs = result_runs()
if not runs:
    st.info(
        f"No demo results in `{results_root()}` yet. Run `genforge demo` (a few minutes on a laptop CPU), "
        "or point `GENFORGE_RESULTS` at a results folder, then reload this page."
    )
    st.stop()

chosen = st.selectbox("results folder", runs, format_func=lambda p: p.name, index=0)
run = read_run(chosen)
if run.error:
    st.error(run.error)
    st.stop()
st.caption(f"{run.path} — created {run.metrics.get('created', '?')}, "
           f"{run.metrics.get('seconds_total', '?')} s in total"
           + (" (quick mode)" if run.metrics.get("quick") else ""))
judge = run.metrics.get("digit_classifier")
if judge:
    st.write(
        f"Digit samples are judged by an SVM trained on real digits; on real held-out digits it is "
        f"right {100 * judge.get('real_heldout_accuracy', 0):.0f}% of the time (chance: 10%)."
    )
rows = run.family_rows()
if rows:
    st.dataframe(pd.DataFrame(rows), hide_index=True)
for failure in run.metrics.get("failures", []):
    st.warning(f"failed: {failure}")

images = run.images()
if images:
    cols = st.columns(len(images))
    for col, (family, path) in zip(cols, images, strict=True):
        col.image(str(path), caption=f"{family} samples (one class per column)")
for family, text in run.texts():
    st.subheader(f"{family} sample")
    st.code(text, language=None)

suite_rows = run.metrics.get("suites", {})
if suite_rows:
    st.subheader("Suites")
    for name, row in suite_rows.items():
        with st.expander(f"{name}: {row.get('status')}"):
            st.json(row.get("metrics") or {k: v for k, v in row.items() if k != "traceback"})
