"""Reliability corpus, finance: price tables that used to give silent wrong answers or tracebacks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import refused

from genforge.errors import DataError
from genforge.finance.data import load_prices


def _prices(n: int = 400, constant: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    close = np.full(n, 100.0) if constant else 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    dates = pd.bdate_range("2020-01-01", periods=n)
    return pd.DataFrame({"Date": dates.strftime("%Y-%m-%d"), "Open": close, "High": close * 1.01,
                         "Low": close * 0.99, "Close": close})


def test_constant_price_refused(tmp_path):
    path = tmp_path / "flat.csv"
    _prices(constant=True).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"flat\.csv: column 'Close' is \(nearly\) constant"):
        load_prices(path)


def test_semicolon_csv_is_read(tmp_path):
    path = tmp_path / "semi.csv"
    _prices().to_csv(path, index=False, sep=";")
    frame = load_prices(path)
    assert list(frame.columns[:4]) == ["Open", "High", "Low", "Close"] and len(frame) == 400


def test_semicolon_csv_with_decimal_commas_says_what_was_seen(tmp_path):
    path = tmp_path / "euro.csv"
    _prices().to_csv(path, index=False, sep=";", decimal=",")
    with pytest.raises(DataError, match=r"euro\.csv: semicolon-delimited with decimal commas"):
        load_prices(path)


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_forecast_numeric_option_not_finite(cli, tmp_path, value):
    path = tmp_path / "p.csv"
    _prices().to_csv(path, index=False)
    out = tmp_path / "f.csv"
    r = cli("finance", "vol", "forecast", path, "--out", out, "--var-feedback", value)
    refused(r, "--var-feedback")
    assert not out.exists()
