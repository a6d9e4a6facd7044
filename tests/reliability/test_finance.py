"""Reliability corpus, finance: price tables that used to give silent wrong answers or tracebacks."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import refused, snapshot

from genforge.errors import DataError
from genforge.finance.data import load_prices
from genforge.outputs import MANIFEST


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


# ------------------------------------------------------------------------------------------ dates


def _dated(dates: pd.Index | list[str], seed: int = 0) -> pd.DataFrame:
    """A price table over the given date strings (a random walk, so no check but the dates' can fail)."""
    n = len(dates)
    close = 100 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0, 0.01, n)))
    return pd.DataFrame({"Date": list(dates), "Open": close, "High": close * 1.01, "Low": close * 0.99,
                         "Close": close})


def _early_days(n_months: int = 6) -> pd.DatetimeIndex:
    """Business days on the 1st-12th of each month: no day above 12, so d/m and m/d both parse."""
    days = pd.bdate_range("2021-01-01", periods=n_months * 23)
    return days[days.day <= 12]


def test_day_first_dates_read_in_one_order(tmp_path):
    """The issue's case: 600 European dates; a day above 12 decides day-first for the whole column."""
    days = pd.bdate_range("2020-01-01", periods=600)
    path = tmp_path / "eu.csv"
    _dated(days.strftime("%d/%m/%Y")).to_csv(path, index=False)
    frame = load_prices(path)
    assert (frame.index == days).all()
    assert frame.index.day_of_week.max() <= 4  # no weekend dates invented


def test_month_first_dates_decided_by_day_over_12(tmp_path):
    days = pd.bdate_range("2020-01-01", periods=100)
    path = tmp_path / "us.csv"
    _dated(days.strftime("%m-%d-%y")).to_csv(path, index=False)
    assert (load_prices(path).index == days).all()


def test_ambiguous_dates_refused_by_cli(cli, tmp_path):
    path = tmp_path / "amb.csv"
    _dated(_early_days().strftime("%d/%m/%Y")).to_csv(path, index=False)
    out = tmp_path / "f.csv"
    r = cli("finance", "vol", "forecast", path, "--out", out, "--steps", "1")
    refused(r, "amb.csv", "'Date'", "--dayfirst", "--monthfirst")
    assert not out.exists()


@pytest.mark.parametrize("dayfirst", [True, False])
def test_ambiguous_dates_read_as_told(tmp_path, dayfirst):
    days = _early_days()
    path = tmp_path / "amb.csv"
    _dated(days.strftime("%d/%m/%Y" if dayfirst else "%m/%d/%Y")).to_csv(path, index=False)
    frame = load_prices(path, dayfirst=dayfirst, max_gap_days=None)
    assert (frame.index == days).all()


def test_ambiguous_dates_refused_by_library(tmp_path):
    path = tmp_path / "amb.csv"
    _dated(_early_days().strftime("%d.%m.%Y")).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"amb\.csv: column 'Date' has dates like '01\.01\.2021'"):
        load_prices(path)


def test_option_contradicted_by_file_refused(cli, tmp_path):
    path = tmp_path / "eu.csv"
    _dated(pd.bdate_range("2020-01-01", periods=320).strftime("%d/%m/%Y")).to_csv(path, index=False)
    out = tmp_path / "model"
    r = cli("finance", "vol", "train", path, "--out", out, "--steps", "1", "--monthfirst")
    refused(r, "eu.csv", "day-first date", "row 9", "month-first")
    assert not out.exists()


def test_mixed_day_and_month_first_refused(tmp_path):
    days = pd.bdate_range("2020-01-01", periods=80)
    text = list(days[:40].strftime("%d/%m/%Y")) + list(days[40:].strftime("%m/%d/%Y"))
    path = tmp_path / "mixed.csv"
    _dated(text).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"mixed\.csv: column 'Date' mixes day-first .* and month-first"):
        load_prices(path)


def test_iso_dates_need_no_option(tmp_path):
    days = _early_days()
    path = tmp_path / "iso.csv"
    _dated(days.strftime("%Y-%m-%d")).to_csv(path, index=False)
    assert (load_prices(path, dayfirst=True, max_gap_days=None).index == days).all()


# ------------------------------------------------------------------------------------------ gaps


def _gapped(tmp_path) -> Path:
    """400 business days with six months (130 days) cut out of the middle."""
    days = pd.bdate_range("2019-01-01", periods=530)
    frame = _dated(days.strftime("%Y-%m-%d")).drop(index=range(200, 330))
    path = tmp_path / "gap.csv"
    frame.to_csv(path, index=False)
    return path


def test_gap_warns_in_library(tmp_path):
    from genforge.finance.data import DataWarning

    with pytest.warns(DataWarning, match=r"gap\.csv: column 'Date' has 1 gap\(s\) longer than 10 business"):
        frame = load_prices(_gapped(tmp_path))
    assert len(frame) == 400


def test_gap_warns_once_on_cli_and_trains(cli, tmp_path):
    out = tmp_path / "scen"
    r = cli("finance", "scenarios", "train", _gapped(tmp_path), "--out", out, "--steps", "1", "--window", "8",
            "--hidden", "4")
    assert r.rc == 0, r.err
    warned = [ln for ln in r.err.splitlines() if ln.startswith("warning:")]
    assert len(warned) == 1 and "gap.csv" in warned[0] and "largest 131" in warned[0], r.err
    assert (out / "config.json").is_file()


def test_strict_gaps_refused_and_nothing_written(cli, tmp_path):
    out = tmp_path / "scen"
    r = cli("finance", "scenarios", "train", _gapped(tmp_path), "--out", out, "--steps", "1", "--strict-gaps")
    refused(r, "gap.csv", "'Date'", "131", "--strict-gaps")
    assert not out.exists()


def test_gap_below_max_gap_days_is_quiet(tmp_path):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_prices(_gapped(tmp_path), max_gap_days=200, strict_gaps=True)


# ------------------------------------------------------------------------------------------ numeric options

_P = "PRICES"  # replaced by a price file
_M = "MODEL"  # replaced by a folder name that need not exist

NUMERIC_CASES = [
    (("vol", "forecast", _P, "--out", "OUT.csv", "--last", "-5"), "--last"),
    (("vol", "forecast", _P, "--out", "OUT.csv", "--steps", "0"), "--steps"),
    (("vol", "forecast", _P, "--out", "OUT.csv", "--max-gap-days", "0"), "--max-gap-days"),
    (("vol", "train", _P, "--out", "OUT", "--steps", "0"), "--steps"),
    (("vol", "train", _P, "--out", "OUT", "--seed", "-1"), "--seed"),
    (("vol", "train", _P, "--out", "OUT", "--base", "garch"), "--base"),
    (("vol", "evaluate", "--data", _P, "--json", "OUT.json", "--jobs", "0"), "--jobs"),
    (("vol", "evaluate", "--data", _P, "--json", "OUT.json", "--mcs-reps", "0"), "--mcs-reps"),
    (("vol", "evaluate", "--data", _P, "--json", "OUT.json", "--vae-steps", "0"), "--vae-steps"),
    (("vol", "evaluate", "--data", _P, "--json", "OUT.json", "--warm-steps", "-1"), "--warm-steps"),
    (("vol", "evaluate", "--data", _P, "--json", "OUT.json", "--seed", "-3"), "--seed"),
    (("vol", "evaluate", "--data", _P, "--json", "OUT.json", "--initial", "10"), "--initial"),
    (("vol", "evaluate", "--data", _P, "--json", "OUT.json", "--refit-every", "0"), "--refit-every"),
    (("scenarios", "train", _P, "--out", "OUT", "--window", "1"), "--window"),
    (("scenarios", "train", _P, "--out", "OUT", "--steps", "0"), "--steps"),
    (("scenarios", "train", _P, "--out", "OUT", "--hidden", "0"), "--hidden"),
    (("scenarios", "train", _P, "--out", "OUT", "--seed", "-1"), "--seed"),
    (("scenarios", "simulate", "--model", _M, "--out", "OUT.csv", "--paths", "0"), "--paths"),
    (("scenarios", "simulate", "--model", _M, "--out", "OUT.csv", "--length", "0"), "--length"),
    (("scenarios", "simulate", "--model", _M, "--out", "OUT.csv", "--seed", "-1"), "--seed"),
    (("scenarios", "evaluate", "--json", "OUT.json", "--seeds", "0"), "--seeds"),
    (("scenarios", "evaluate", "--json", "OUT.json", "--hidden", "0"), "--hidden"),
    (("scenarios", "evaluate", "--json", "OUT.json", "--sf-window", "1"), "--sf-window"),
    (("scenarios", "evaluate", "--json", "OUT.json", "--ema-decay", "1.5"), "--ema-decay"),
    (("scenarios", "evaluate", "--json", "OUT.json", "--lr", "-1"), "--lr"),
    (("loans", "synthesize", "--n", "0", "--out", "OUT.csv"), "--n"),
    (("loans", "synthesize", "--n", "5", "--out", "OUT.csv", "--steps", "0"), "--steps"),
    (("loans", "synthesize", "--n", "5", "--out", "OUT.csv", "--seed", "-1"), "--seed"),
    (("loans", "synthesize", "--n", "5", "--out", "OUT.csv", "--id-columns", "keep"), "--id-columns"),
    (("loans", "price", _P, "--out", "OUT.csv", "--lgd", "1.5"), "--lgd"),
    (("loans", "price", _P, "--out", "OUT.csv", "--margin", "2"), "--margin"),
    (("loans", "price", _P, "--out", "OUT.csv", "--funding-cost", "-0.9"), "--funding-cost"),
    (("loans", "evaluate", "--json", "OUT.json", "--seeds", "0"), "--seeds"),
    (("loans", "evaluate", "--json", "OUT.json", "--first-seed", "-1"), "--first-seed"),
    (("loans", "evaluate", "--json", "OUT.json", "--steps", "0"), "--steps"),
]


@pytest.mark.parametrize(("argv", "option"), NUMERIC_CASES, ids=[f"{a[1]}{o}" for a, o in NUMERIC_CASES])
def test_numeric_option_out_of_range(cli, tmp_path, argv, option):
    prices = tmp_path / "p.csv"
    _prices().to_csv(prices, index=False)
    swap = {_P: str(prices), _M: str(tmp_path / "model")}
    args = [swap.get(a, str(tmp_path / a) if a.startswith("OUT") else a) for a in argv]
    before = sorted(p.name for p in tmp_path.iterdir())
    refused(cli("finance", *args), option)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


# ------------------------------------------------------------------------------------------ overwrite guard


def _foreign(folder: Path) -> Path:
    """A folder that holds the user's own files (not a finance model)."""
    folder.mkdir()
    (folder / "config.json").write_text('{"mine": true}')
    (folder / "notes.txt").write_text("keep me")
    return folder


@pytest.mark.parametrize("command", [
    ("vol", "train", "PRICES", "--steps", "1"),
    ("scenarios", "train", "PRICES", "--steps", "1"),
])
def test_train_refuses_foreign_folder(cli, tmp_path, command):
    prices = tmp_path / "p.csv"
    _prices().to_csv(prices, index=False)
    out = _foreign(tmp_path / "mine")
    before = snapshot(out)
    args = [str(prices) if a == "PRICES" else a for a in command]
    refused(cli("finance", *args, "--out", out), str(out), "config.json", "--overwrite")
    assert snapshot(out) == before


def test_scenarios_train_refuses_ecg_model(cli, tmp_path, ecg_model):
    prices = tmp_path / "p.csv"
    _prices().to_csv(prices, index=False)
    out = tmp_path / "ecg"
    shutil.copytree(ecg_model, out)
    before = snapshot(out)
    refused(cli("finance", "scenarios", "train", prices, "--out", out, "--steps", "1"), "--overwrite")
    assert snapshot(out) == before


def test_scenarios_train_other_settings_lists_keys_then_overwrite(cli, tmp_path):
    prices = tmp_path / "p.csv"
    _prices().to_csv(prices, index=False)
    out = tmp_path / "scen"
    small = ("--window", "8", "--hidden", "4")
    assert cli("finance", "scenarios", "train", prices, "--out", out, "--steps", "1", *small).rc == 0
    before = snapshot(out)
    r = cli("finance", "scenarios", "train", prices, "--out", out, "--steps", "2", *small)
    refused(r, MANIFEST, "steps: 1 -> 2", "--overwrite")
    assert snapshot(out) == before
    r = cli("finance", "scenarios", "train", prices, "--out", out, "--steps", "2", *small, "--overwrite")
    assert r.rc == 0, r.err
    assert snapshot(out) != before and (out / "config.json").is_file()


def test_scenarios_train_overwrite_replaces_foreign_folder(cli, tmp_path):
    prices = tmp_path / "p.csv"
    _prices().to_csv(prices, index=False)
    out = _foreign(tmp_path / "mine")
    r = cli("finance", "scenarios", "train", prices, "--out", out, "--steps", "1", "--window", "8",
            "--hidden", "4", "--overwrite")
    assert r.rc == 0, r.err
    assert not (out / "notes.txt").exists() and (out / MANIFEST).is_file()


def test_loans_save_model_refuses_foreign_folder(cli, tmp_path):
    book = _book(tmp_path)
    out = tmp_path / "synth.csv"
    model = _foreign(tmp_path / "mine")
    before = snapshot(model)
    r = cli("finance", "loans", "synthesize", "--data", book, "--n", "5", "--out", out, "--steps", "1",
            "--id-columns", "drop", "--save-model", model)
    refused(r, "--save-model", str(model), "--overwrite")
    assert snapshot(model) == before and not out.exists()


# ------------------------------------------------------------------------------------------ loan tables


def _book(tmp_path, n: int = 200, with_id: bool = True) -> Path:
    """A small loan book; ``customer_id`` is a real-looking key, one distinct value per loan."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "amount": rng.gamma(2.0, 1000.0, n).round(2),
        "grade": rng.choice(list("ABC"), n),
        "creditability": rng.choice(["good", "bad"], n, p=[0.7, 0.3]),
    })
    if with_id:
        frame.insert(0, "customer_id", rng.permutation(np.arange(100_000, 100_000 + n)))
    path = tmp_path / "book.csv"
    frame.to_csv(path, index=False)
    return path


def test_loan_error_names_the_file(cli, tmp_path):
    path = _book(tmp_path, with_id=False)
    frame = pd.read_csv(path)
    frame.loc[7, "amount"] = np.nan
    frame.to_csv(path, index=False)
    out = tmp_path / "synth.csv"
    r = cli("finance", "loans", "synthesize", "--data", path, "--n", "5", "--out", out, "--steps", "1")
    line = refused(r, "book.csv", "'amount'", "missing")
    assert "loan table" not in line and not out.exists()


def test_loan_price_error_names_the_file(cli, tmp_path):
    train = _book(tmp_path, with_id=False)
    loans = tmp_path / "to_price.csv"
    pd.read_csv(train).drop(columns=["grade"]).to_csv(loans, index=False)
    out = tmp_path / "priced.csv"
    r = cli("finance", "loans", "price", loans, "--train", train, "--out", out)
    line = refused(r, "to_price.csv", "'grade'")
    assert "loan table" not in line and not out.exists()


def test_identifier_column_refused(cli, tmp_path):
    """The issue's case: a customer-ID column would come back as real IDs in the synthetic rows."""
    out = tmp_path / "synth.csv"
    r = cli("finance", "loans", "synthesize", "--data", _book(tmp_path), "--n", "5", "--out", out,
            "--steps", "1")
    refused(r, "book.csv", "'customer_id'", "identifiers", "--id-columns")
    assert not out.exists()


def test_identifier_column_refused_by_loans_evaluate(cli, tmp_path):
    out = tmp_path / "loans.json"
    r = cli("finance", "loans", "evaluate", "--data", _book(tmp_path), "--json", out, "--seeds", "1",
            "--steps", "1")
    refused(r, "book.csv", "'customer_id'", "identifiers")
    assert not out.exists()


def test_identifier_column_dropped(cli, tmp_path):
    out = tmp_path / "synth.csv"
    r = cli("finance", "loans", "synthesize", "--data", _book(tmp_path), "--n", "40", "--out", out,
            "--steps", "2", "--id-columns", "drop")
    assert r.rc == 0, r.err
    assert list(pd.read_csv(out).columns) == ["amount", "grade", "creditability"]


def test_no_synthetic_row_carries_a_real_identifier(cli, tmp_path):
    book = _book(tmp_path)
    real = set(pd.read_csv(book)["customer_id"].astype(str))
    out, model = tmp_path / "synth.csv", tmp_path / "model"
    r = cli("finance", "loans", "synthesize", "--data", book, "--n", "200", "--out", out, "--steps", "2",
            "--id-columns", "regenerate", "--save-model", model)
    assert r.rc == 0, r.err
    synth = pd.read_csv(out, dtype={"customer_id": str})
    assert list(synth.columns) == ["customer_id", "amount", "grade", "creditability"]
    assert synth["customer_id"].is_unique and not set(synth["customer_id"]) & real
    # the saved model regenerates too, and its files hold no real id
    from genforge.finance.loans.models import LoanBookGAN

    again = LoanBookGAN.load(model).sample(50, seed=3)
    assert not set(again["customer_id"].astype(str)) & real
    stored = "".join(p.read_text(errors="ignore") for p in model.iterdir() if p.suffix == ".json")
    assert not any(value in stored for value in real)


def test_regenerated_ids_avoid_a_real_prefix():
    from genforge.finance.loans.models import LoanBookGAN

    rng = np.random.default_rng(1)
    n = 120
    book = pd.DataFrame({"account": [f"SYN-{k:06d}" for k in range(1, n + 1)],
                         "amount": rng.gamma(2.0, 500.0, n), "grade": rng.choice(list("AB"), n)})
    gan = LoanBookGAN(steps=1, hidden=(8,), latent_dim=4, batch_size=60, progress=False,
                      id_columns="regenerate").fit(book)
    synth = gan.sample(30, seed=0)
    assert not set(synth["account"]) & set(book["account"])


def test_identifier_detection():
    from genforge.finance.loans.data import identifier_columns
    from genforge.finance.loans.models import example_book

    n = 100
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "CustomerID": rng.integers(0, 40, n),  # by name: 40 customers with several loans each
        "email": [f"p{k}@example.org" for k in range(n)],  # by name and by values
        "ref": [f"r{k:04d}" for k in range(n)],  # near-unique text: a key whatever its name
        "amount": rng.gamma(2.0, 900.0, n).round(0).astype(int),  # amounts repeat: not a key
        "income": rng.normal(3000, 500, n),  # unique floats are measurements, not keys
        "checking_account": rng.choice(["none", "low", "high"], n),  # id-like name, 3 values
    })
    assert identifier_columns(frame) == ["CustomerID", "email", "ref"]
    assert identifier_columns(example_book()) == []
