"""Finance: next-day volatility with predictive bands beside the GARCH family, the loss table, and
uploads of the user's own prices; tabs for market scenarios and loan books (finance-gen's module).

The page only calls the suite's public API (``genforge.finance``). Data are cached with
``st.cache_data`` and the fitted comparison with ``st.cache_data`` keyed on the prices and settings,
so reruns of the script (every widget change) do not refit. A bad upload shows ``st.error`` and the
rest of the page keeps working.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

TITLE = "Finance"
ICON = ":material/show_chart:"

DEFAULT_HISTORY = 500  # trading days used on the page (fit + test); small so the page stays quick
DEFAULT_TEST = 60
DEFAULT_STEPS = 150


@st.cache_data(show_spinner=False)
def bundled_prices(name: str) -> pd.DataFrame:
    from genforge.finance import load_nasdaq, load_sp500

    return load_sp500() if name == "sp500" else load_nasdaq()


@st.cache_data(show_spinner=False)
def uploaded_prices(name: str, data: bytes) -> pd.DataFrame:
    """Read and validate an uploaded price file; raises DataError with a one-line message."""
    from genforge.finance import read_uploaded_table, validate_prices

    return validate_prices(read_uploaded_table(name, data), source=name, min_rows=300)


@st.cache_data(show_spinner="Fitting the VAE and the GARCH family ...")
def comparison(
    prices: pd.DataFrame, test_days: int, steps: int, feedback: bool = True
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The one-split comparison; ``feedback`` False gives the VAE a fixed VaR level (else the suite's
    default exception feedback)."""
    from genforge.finance import holdout_comparison

    params = {"steps": steps, "n_samples": 128, "var_feedback": None if feedback else 0.0}
    return holdout_comparison(prices, test_days, params)


def volatility_chart(table: pd.DataFrame) -> go.Figure:
    """Daily volatility (percent): VAE mean with its 90% band, GARCH-family lines, realised |r|."""
    fig = go.Figure()
    dates = table["date"]
    fig.add_trace(
        go.Scatter(
            x=dates, y=np.sqrt(table["sq_return_q95"]), line={"width": 0}, showlegend=False, hoverinfo="skip"
        )
    )
    fig.add_trace(
        go.Scatter(
            x=dates,
            y=np.sqrt(table["sq_return_q05"]),
            fill="tonexty",
            line={"width": 0},
            fillcolor="rgba(31,119,180,0.15)",
            name="VAE 5-95% |return| band",
        )
    )
    fig.add_trace(go.Scatter(x=dates, y=table["volatility"], name="VAE volatility", line={"width": 2.5}))
    for name, label in (("gjr_t", "GJR-GARCH-t"), ("egarch_t", "EGARCH-t"), ("garch_t", "GARCH(1,1)-t")):
        column = f"{name}_variance"
        if column in table:
            fig.add_trace(go.Scatter(x=dates, y=np.sqrt(table[column]), name=label, line={"dash": "dot"}))
    fig.add_trace(
        go.Scatter(
            x=dates,
            y=table["abs_return"],
            mode="markers",
            name="|return| (realised)",
            marker={"size": 4, "color": "black"},
        )
    )
    fig.add_trace(go.Scatter(x=dates, y=table["var_1"], name="VAE 1% VaR", line={"color": "firebrick"}))
    fig.update_layout(
        yaxis_title="daily, percent", height=430, margin={"t": 30, "b": 10}, legend={"orientation": "h"}
    )
    return fig


def render_volatility() -> None:
    st.subheader("Next-day volatility: conditional VAE vs the GARCH family")
    st.caption(
        "The VAE learns the distribution of the next day's squared return relative to a GJR-GARCH-t "
        "forecast, from range (Parkinson) and return features. Here every model is fitted once on the "
        "history before the test days and then filtered with fixed parameters; the full protocol "
        "(`genforge finance vol evaluate`) refits every 20 days over 2002-2018."
    )
    source = st.radio("Prices", ["S&P 500 (bundled)", "NASDAQ (bundled)", "Upload"], horizontal=True)
    prices = None
    if source == "Upload":
        upload = st.file_uploader(
            "Daily prices: CSV or Parquet with Date, Open, High, Low, Close", type=["csv", "parquet"]
        )
        if upload is None:
            st.info("Upload a price file to forecast its volatility.")
            return
        from genforge.finance import GenforgeError

        try:
            prices = uploaded_prices(upload.name, upload.getvalue())
        except GenforgeError as exc:
            st.error(str(exc))
            return
    else:
        prices = bundled_prices("sp500" if source.startswith("S&P") else "nasdaq")

    left, middle, right = st.columns(3)
    history = left.number_input(
        "History (trading days)", 300, len(prices), min(DEFAULT_HISTORY, len(prices)), step=50
    )
    test_days = middle.number_input("Test days", 20, 500, DEFAULT_TEST, step=10)
    steps = right.number_input("VAE training steps", 20, 3000, DEFAULT_STEPS, step=50)
    feedback = st.toggle(
        "Exception feedback on the VaR level",
        value=True,
        help="After each VaR exception on the test days the level drops a little (a wider VaR) and "
        "creeps back on quiet days (adaptive conformal inference, rate 0.05). Off: a fixed 1% / 5% level.",
    )
    window = prices.iloc[-int(history) :]
    if len(window) - 1 - int(test_days) < 250:
        st.error(
            f"History of {len(window)} days leaves fewer than 250 returns to fit on; "
            "raise the history or lower the test days."
        )
        return
    try:
        table, losses = comparison(window, int(test_days), int(steps), feedback)
    except Exception as exc:  # a fit that fails on odd user data must not take the page down
        st.error(f"Forecasting failed: {type(exc).__name__}: {exc}")
        return
    st.plotly_chart(volatility_chart(table), width="stretch")
    last = table.iloc[-1]
    cols = st.columns(4)
    cols[0].metric("Last forecast: volatility", f"{last['volatility']:.2f}%")
    cols[1].metric(
        "90% band of |return|", f"{np.sqrt(last['sq_return_q05']):.2f}-{np.sqrt(last['sq_return_q95']):.2f}%"
    )
    level = f" (level {100 * last['var_level_1']:.2f}%)" if "var_level_1" in table else ""
    cols[2].metric("1% VaR" + level, f"{last['var_1']:.2f}%")
    cols[3].metric("GJR-GARCH-t volatility", f"{np.sqrt(last['gjr_t_variance']):.2f}%")
    st.markdown("**Losses on the test days** (squared-return proxy; lower is better)")
    st.dataframe(losses.style.format({"qlike": "{:.4f}", "mse": "{:.3f}"}), hide_index=True)


def render_generated(kind: str) -> None:
    """The scenarios or loans tab (:mod:`genforge.dashboards.views._finance_tabs`); a failure inside it
    is shown, not raised, so the other tabs keep working."""
    from genforge.dashboards.views import _finance_tabs as tabs

    render = tabs.render_scenarios if kind == "scenarios" else tabs.render_loans
    try:
        render()
    except Exception as exc:  # one tab's failure must not take the page down
        st.error(f"The {kind} view failed: {type(exc).__name__}: {exc}")


st.title("Finance")
vol_tab, scenario_tab, loan_tab = st.tabs(["Volatility", "Market scenarios", "Loan books"])
with vol_tab:
    render_volatility()
with scenario_tab:
    render_generated("scenarios")
with loan_tab:
    render_generated("loans")
