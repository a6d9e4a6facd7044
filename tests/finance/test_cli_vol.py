"""The volatility commands through the real ``genforge`` entry point, good and bad inputs."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from test_volatility import simulated_prices  # tests/finance is on sys.path (rootdir-less prepend mode)

from genforge.cli import main
from genforge.finance.demo import run_demo


@pytest.fixture(scope="module")
def prices_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("prices") / "prices.csv"
    prices, _ = simulated_prices(n=420, seed=3)
    prices.reset_index().to_csv(path, index=False)
    return path


def run(args, capsys):
    code = main(["finance", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_train_then_forecast_with_the_saved_model(tmp_path, prices_csv, capsys):
    model_dir = tmp_path / "model"
    code, out, err = run(["vol", "train", prices_csv, "--out", model_dir, "--steps", "30"], capsys)
    assert code == 0, err
    assert (model_dir / "model.safetensors").is_file() and (model_dir / "config.json").is_file()
    table_path = tmp_path / "fc.parquet"
    code, out, err = run(["vol", "forecast", prices_csv, "--model", model_dir, "--out", table_path], capsys)
    assert code == 0, err
    table = pd.read_parquet(table_path)
    assert len(table) == 420 - 22 and {"variance", "var_1", "var_5", "sq_return_q95"} <= set(table.columns)
    assert (table["variance"] > 0).all()
    assert "1% VaR" in out and "after feedback" in out and "var_level_1" in table  # the default
    # the saved model's feedback setting is used; --var-feedback overrides it
    fixed = tmp_path / "fixed"
    args = ["vol", "train", prices_csv, "--out", fixed, "--steps", "30", "--var-feedback", "0"]
    assert run(args, capsys)[0] == 0
    assert run(["vol", "forecast", prices_csv, "--model", fixed, "--out", table_path], capsys)[0] == 0
    assert "var_level_1" not in pd.read_parquet(table_path)
    args = ["vol", "forecast", prices_csv, "--model", fixed, "--var-feedback", "0.05", "--out", table_path]
    assert run(args, capsys)[0] == 0
    assert "var_level_1" in pd.read_parquet(table_path)


def test_forecast_fits_when_no_model_is_given(tmp_path, prices_csv, capsys):
    out_path = tmp_path / "fc.csv"
    code, _, err = run(
        ["vol", "forecast", prices_csv, "--steps", "20", "--last", "5", "--out", out_path], capsys
    )
    assert code == 0, err
    assert len(pd.read_csv(out_path)) == 5


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda d: d.assign(Date=d["Date"].where(d.index != 9, d["Date"][8])), "duplicate date"),
        (lambda d: d.drop(columns=["Close"]), "missing column(s) 'Close'"),
        (lambda d: d.assign(High=d["High"].astype(object).where(d.index != 2, "abc")), "non-numeric"),
        (lambda d: d.assign(Close=-d["Close"]), "value(s) <= 0"),
        (lambda d: d.head(100), "100 rows of prices; at least 300"),
    ],
)
def test_bad_prices_give_one_line_and_no_output(tmp_path, mutate, expected, capsys):
    prices, _ = simulated_prices(n=400, seed=4)
    bad = tmp_path / "bad.csv"
    mutate(prices.reset_index()).to_csv(bad, index=False)
    out_path = tmp_path / "fc.csv"
    code, _, err = run(["vol", "forecast", bad, "--steps", "5", "--out", out_path], capsys)
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and str(bad) in err and expected in err
    assert "Traceback" not in err
    assert not out_path.exists() and list(tmp_path.iterdir()) == [bad]


def test_unsorted_dates_are_an_error_with_no_sort(tmp_path, capsys):
    prices, _ = simulated_prices(n=400, seed=8)
    frame = prices.reset_index()
    frame.iloc[[10, 11]] = frame.iloc[[11, 10]].to_numpy()
    path = tmp_path / "unsorted.csv"
    frame.to_csv(path, index=False)
    out_path = tmp_path / "fc.csv"
    code, _, err = run(["vol", "forecast", path, "--no-sort", "--steps", "5", "--out", out_path], capsys)
    assert code == 2 and "not in increasing order at row 12" in err and not out_path.exists()


def test_bad_options_are_rejected_before_any_work(tmp_path, prices_csv, capsys):
    code, _, err = run(["vol", "forecast", prices_csv, "--out", tmp_path / "fc.txt"], capsys)
    assert code == 2 and "expected .csv or .parquet" in err
    code, _, err = run(
        ["vol", "forecast", prices_csv, "--model", tmp_path / "none", "--out", tmp_path / "a.csv"], capsys
    )
    assert code == 2 and "--model" in err
    code, _, err = run(["vol", "train", tmp_path / "missing.csv", "--out", tmp_path / "m"], capsys)
    assert code == 2 and "file not found" in err
    assert list(tmp_path.iterdir()) == []


def test_evaluate_vol_small_protocol_writes_the_json_keys(tmp_path, prices_csv, capsys):
    json_path = tmp_path / "vol.json"
    args = [
        "vol",
        "evaluate",
        "--data",
        prices_csv,
        "--initial",
        "300",
        "--vae-steps",
        "20",
        "--mcs-reps",
        "50",
        "--json",
        json_path,
    ]
    code, out, err = run(args, capsys)
    assert code == 0, err
    result = json.loads(json_path.read_text())
    names = {"vae", "garch_t", "gjr_t", "egarch_t", "ewma", "har"}
    assert set(result["qlike"]) == names and set(result["mse"]) == names
    assert set(result["var_tests"]) == names and set(result["var_tests"]["vae"]) == {"var_1", "var_5"}
    assert result["mcs"] and set(result["mcs"]) <= names and set(result["mcs_pvalues"]) == names
    assert result["n_days"] == 419 - 300 and result["protocol"]["refits"] == 6
    assert "vae" in out and "MCS" in out
    assert result["vae_var_method"] == "skewt"  # the estimator's default
    # every model is also backtested with exception feedback, beside its fixed-level VaR
    assert set(result["var_feedback"]["feedback"]) == names and "1% feedback" in out
    assert result["var_feedback"]["feedback"]["vae"] == result["var_tests"]["vae"]  # the default
    assert result["vae_var_feedback"] == 0.05


def test_forecast_with_var_feedback_reports_the_level(tmp_path, prices_csv, capsys):
    out_path = tmp_path / "fc.csv"
    args = ["vol", "forecast", prices_csv, "--steps", "20", "--var-feedback", "0.05", "--out", out_path]
    code, out, err = run(args, capsys)
    assert code == 0, err
    table = pd.read_csv(out_path)
    assert "var_level_1" in table and "after feedback" in out
    assert table["var_level_5"].nunique() > 1


def test_evaluate_vol_rejects_an_unknown_var_method(tmp_path, prices_csv, capsys):
    json_path = tmp_path / "vol.json"
    args = ["vol", "evaluate", "--data", prices_csv, "--var-method", "gauss", "--json", json_path]
    code, _, err = run(args, capsys)
    assert code == 2 and "--var-method 'gauss'" in err and "skewt" in err
    assert not json_path.exists()
    args = ["vol", "evaluate", "--data", prices_csv, "--var-method", "fhs", "--var-feedback", "0.05"]
    code, _, err = run(args, capsys)
    assert code == 2 and "--var-feedback 0.05" in err and "skewt" in err
    code, _, err = run(["vol", "train", prices_csv, "--out", tmp_path / "m", "--var-feedback", "-1"], capsys)
    assert code == 2 and ">= 0" in err and not (tmp_path / "m").exists()


def test_run_demo_is_quick_and_writes_its_files(tmp_path):
    metrics = run_demo(tmp_path / "demo", quick=True)
    assert metrics["test_days"] == 251
    assert metrics["qlike_vae"] > 0 and metrics["qlike_gjr_t"] > 0
    assert (tmp_path / "demo" / "metrics.json").is_file()
    assert (tmp_path / "demo" / "forecasts_2018.csv").is_file()
    assert metrics["seconds"] < 120
