"""The Finance dashboard page, headless with Streamlit's AppTest (small default window)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from test_volatility import simulated_prices  # tests/finance is on sys.path (pytest prepend mode)

PAGE = Path(__file__).resolve().parents[2] / "dashboards" / "views" / "finance.py"
TIMEOUT = 240


@pytest.fixture
def app() -> AppTest:
    return AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)


def _texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info]
    return "\n".join(str(p) for p in parts)


def none_boxes(at: AppTest) -> list[str]:
    """Elements that show the bare text "None" (a value written by Streamlit's magic by mistake)."""
    return [str(e.value) for e in [*at.markdown, *at.text, *at.code] if str(e.value).strip() == "None"]


def test_default_page_shows_forecasts_and_the_loss_table(app):
    at = app.run()
    assert not at.exception, at.exception
    assert none_boxes(at) == []
    assert at.title[0].value == "Finance"
    assert len(at.tabs) == 3
    vol = at.tabs[0]  # the scenario / loan tabs belong to finance-gen's module
    assert not vol.error, [e.value for e in vol.error]
    losses = vol.dataframe[0].value
    models = set(losses.data["model"]) if hasattr(losses, "data") else set(losses["model"])
    assert {"vae", "gjr_t", "egarch_t", "garch_t"} <= models
    assert len(vol.metric) == 4 and vol.metric[0].value.endswith("%")
    assert vol.metric[2].label.startswith("1% VaR (level ")  # exception feedback by default
    at.toggle[0].set_value(False).run()
    assert not at.exception, at.exception
    assert at.tabs[0].metric[2].label == "1% VaR"  # a fixed level


def test_bad_upload_shows_an_error_and_the_page_keeps_working(app):
    at = app.run()
    at.radio[0].set_value("Upload").run()
    assert "Upload a price file" in _texts(at)
    prices, _ = simulated_prices(n=400, seed=6)
    frame = prices.reset_index()
    frame.loc[9, "Date"] = frame.loc[8, "Date"]  # duplicate date
    at.file_uploader[0].upload("mine.csv", frame.to_csv(index=False).encode(), "text/csv").run()
    assert not at.exception, at.exception
    errors = at.tabs[0].error
    assert errors and "mine.csv" in errors[0].value and "duplicate date" in errors[0].value
    assert len(at.tabs) == 3  # the rest of the page is still there


def test_good_upload_is_forecast(app):
    at = app.run()
    at.radio[0].set_value("Upload").run()
    prices, _ = simulated_prices(n=400, seed=7)
    at.file_uploader[0].upload("good.csv", prices.reset_index().to_csv(index=False).encode(), "text/csv")
    at.run()
    assert not at.exception, at.exception
    vol = at.tabs[0]
    assert not vol.error, [e.value for e in vol.error]
    assert vol.metric and vol.dataframe
