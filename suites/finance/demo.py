"""The finance demo (``genforge demo``, ``genforge finance demo``): a quick, self-checking run of the
volatility forecaster on the bundled S&P 500 (``arch``; nothing is downloaded)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from genforge.finance.cli_checks import one_thread
from genforge.io import write_json_atomic, write_table_atomic, write_text_atomic


def run_demo(out_dir: Path, quick: bool = False) -> dict[str, Any]:
    """Fit the VAE forecaster on 2010-2017 S&P 500 closes (fixed parameters afterwards) and forecast
    every day of 2018 beside a GJR-GARCH(1,1,1)-t fitted on the same window.

    Writes ``forecasts_2018.csv``, ``metrics.json`` and ``README.txt`` under ``out_dir`` (and nowhere
    else); returns the metrics. A one-window check that runs in seconds; the full protocol is
    ``genforge finance vol evaluate``.
    """
    from genforge.finance.data import load_sp500
    from genforge.finance.volatility.evaluate import holdout_comparison

    one_thread()
    out_dir = Path(out_dir)
    start = time.perf_counter()
    prices = load_sp500().loc["2010-01-01":]
    test_days = int((prices.index >= "2018-01-01").sum())
    vae_params = {"steps": 200 if quick else 300, "n_samples": 128}
    table, losses = holdout_comparison(prices, test_days, vae_params, baselines=("gjr_t",))
    by_model = losses.set_index("model")
    metrics: dict[str, Any] = {
        "train": f"{prices.index[0].date()}..2017-12-29",
        "test_days": test_days,
        "qlike_vae": float(by_model.loc["vae", "qlike"]),
        "qlike_gjr_t": float(by_model.loc["gjr_t", "qlike"]),
        "var_1_hits_vae": int(by_model.loc["vae", "var_1 hits"]),
        "var_5_hits_vae": int(by_model.loc["vae", "var_5 hits"]),
        "expected_var_5_hits": round(0.05 * test_days, 1),
    }
    write_table_atomic(out_dir / "forecasts_2018.csv", table)
    metrics["seconds"] = round(time.perf_counter() - start, 1)
    write_json_atomic(out_dir / "metrics.json", metrics)
    write_text_atomic(
        out_dir / "README.txt",
        "Finance demo: VAE volatility forecaster vs GJR-GARCH-t on "
        "2018 S&P 500 (fit on 2010-2017, fixed parameters). See metrics.json.\n",
    )
    return metrics
