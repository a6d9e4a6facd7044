"""``genforge finance vol ...``: train, forecast and evaluate the VAE volatility forecaster.

PRICES arguments default to the bundled S&P 500 (``arch``); ``sp500`` / ``nasdaq`` name the bundled
series. User mistakes raise :class:`genforge.errors.GenforgeError`, which the core ``genforge``
entry point prints as one line (exit code 2); outputs are written atomically, so a failed command
leaves no file behind.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer

from genforge.errors import GenforgeError
from genforge.finance.cli_checks import (
    DayFirstOpt,
    MaxGapOpt,
    OverwriteOpt,
    StrictGapsOpt,
    dir_out,
    json_out,
    one_thread,
    prices_source,
    read_prices,
    save_model,
    table_out,
)
from genforge.io import write_json_atomic, write_table_atomic

app = typer.Typer(
    help="Volatility: next-day variance with predictive quantiles and VaR (VAE) vs the GARCH family.",
    no_args_is_help=True,
)

PricesArg = typer.Argument(None, help="Price file (CSV/Parquet, OHLC[V]); default: bundled S&P 500.")
SortOpt = typer.Option(
    True, "--sort/--no-sort", help="Sort rows by date (--no-sort: unsorted dates are an error)."
)
VarFeedbackOpt = typer.Option(
    None,
    "--var-feedback",
    metavar="RATE",
    help="Exception feedback on the VaR level (adaptive conformal inference): after each VaR "
    "exception the level drops by RATE x level (a wider VaR), after each quiet day it creeps back. "
    "Default 0.05 (the ratio of Gibbs & Candes 2021) with the skewt VaR, 0 (a fixed level) otherwise.",
    show_default=False,
)


def _check_feedback(rate: float | None, var_method: str = "skewt") -> None:
    if rate is None:
        return
    if rate < 0 or (rate > 0 and var_method != "skewt"):
        raise GenforgeError(
            f"--var-feedback {rate}: expected a rate >= 0, used with --var-method skewt (got {var_method})"
        )


@app.command("train")
def train(
    prices: str = PricesArg,
    out: Path = typer.Option(..., "--out", help="Folder for the model (safetensors + JSON)."),
    steps: int = typer.Option(300, help="Training steps of the VAE."),
    base: str = typer.Option("gjr", help="Base variance the VAE corrects: gjr (GJR-GARCH-t) or ewma."),
    seed: int = typer.Option(0, min=0),
    var_feedback: float | None = VarFeedbackOpt,
    sort: bool = SortOpt,
    dayfirst: bool | None = DayFirstOpt,
    max_gap_days: int = MaxGapOpt,
    strict_gaps: bool = StrictGapsOpt,
    overwrite: bool = OverwriteOpt,
) -> None:
    """Fit the VAE volatility forecaster on all of PRICES and save it to --out.

    A folder holding anything else (another model, a model trained with other settings) is refused unless
    --overwrite is given; nothing is written before the model is trained."""
    from genforge.finance.volatility.models import VolatilityForecaster
    from genforge.outputs import check_claim

    dir_out(out)
    if steps < 1:
        raise GenforgeError(f"--steps {steps}: expected a positive number of steps")
    if base not in ("gjr", "ewma"):
        raise GenforgeError(f"--base {base!r}: expected gjr or ewma")
    _check_feedback(var_feedback)
    job = {"prices": prices_source(prices), "steps": steps, "base": base, "seed": seed,
           "var_feedback": var_feedback, "sort": sort, "dayfirst": dayfirst}
    check_claim(out, "genforge finance vol train", job, overwrite=overwrite, resume=False)  # before any work
    data = read_prices(prices, min_rows=300, sort=sort, dayfirst=dayfirst, max_gap_days=max_gap_days,
                       strict_gaps=strict_gaps)
    one_thread()
    start = time.perf_counter()
    model = VolatilityForecaster(steps=steps, base=base, seed=seed, var_feedback=var_feedback).fit(data)
    save_model(model, out, "genforge finance vol train", job, overwrite)
    typer.echo(
        f"trained on {len(data)} prices ({data.index[0].date()} .. {data.index[-1].date()}) in "
        f"{time.perf_counter() - start:.1f} s; calibration {model.calibration_:.3f}; saved to {out}"
    )


@app.command()
def forecast(
    prices: str = PricesArg,
    out: Path = typer.Option(..., "--out", help="Forecast table (.csv or .parquet)."),
    model: Path = typer.Option(
        None, "--model", help="A folder from `vol train`; without it the model is fitted on PRICES first."
    ),
    steps: int = typer.Option(300, min=1, help="Training steps when no --model is given."),
    last: int = typer.Option(0, min=0, help="Keep only the last N forecasts (0 = all)."),
    var_feedback: float | None = typer.Option(
        None,
        "--var-feedback",
        metavar="RATE",
        help="Exception feedback on the VaR level (see `vol train --help`); default: the --model's "
        "setting, else 0.05. It runs over the forecasts from the first close on.",
        show_default=False,
    ),
    sort: bool = SortOpt,
    dayfirst: bool | None = DayFirstOpt,
    max_gap_days: int = MaxGapOpt,
    strict_gaps: bool = StrictGapsOpt,
) -> None:
    """Next-day variance forecasts (mean, quantiles, VaR) for every close of PRICES."""
    from genforge.finance.volatility.models import VolatilityForecaster

    table_out(out)
    if model is not None and not (model / "config.json").is_file():
        raise GenforgeError(
            f"--model {model}: no config.json there; expected a folder written by "
            "`genforge finance vol train`"
        )
    data = read_prices(prices, min_rows=60 if model is not None else 300, sort=sort, dayfirst=dayfirst,
                       max_gap_days=max_gap_days, strict_gaps=strict_gaps)
    one_thread()
    est = VolatilityForecaster.load(model) if model is not None else VolatilityForecaster(steps=steps)
    if var_feedback is not None:
        _check_feedback(var_feedback, est.var_method)
        est.var_feedback = var_feedback
    if model is None:
        est.fit(data)
    table = est.predict(data)
    if last > 0:
        table = table.iloc[-last:]
    write_table_atomic(out, table)
    row = table.iloc[-1]
    level = f" at level {100 * row['var_level_1']:.2f}% after feedback" if "var_level_1" in table else ""
    typer.echo(
        f"{len(table)} forecasts written to {out}; after {row['date'].date()}: variance "
        f"{row['variance']:.3f} (volatility {row['volatility']:.3f}%), 1% VaR {row['var_1']:.3f}%{level}"
    )


@app.command("evaluate")
def evaluate(
    data: str = typer.Option(None, "--data", help="Price file; default: bundled S&P 500 (1999-2018)."),
    json_path: Path = typer.Option(None, "--json", help="Write the results as JSON here."),
    table_path: Path = typer.Option(None, "--table", help="Write the daily out-of-sample forecasts here."),
    initial: int = typer.Option(1000, help="Returns in the first training window."),
    refit_every: int = typer.Option(20, help="Refit every N trading days."),
    vae_steps: int = typer.Option(300, min=1, help="VAE training steps per refit."),
    warm_steps: int = typer.Option(
        0, min=0, help="If > 0, later refits continue from the previous weights for this many steps."
    ),
    no_vae: bool = typer.Option(False, "--no-vae", help="Baselines only."),
    mcs_reps: int = typer.Option(1000, min=1, help="Bootstrap replications of the model confidence set."),
    jobs: int = typer.Option(1, min=1, help="Processes for the VAE's refits (only without warm starts)."),
    seed: int = typer.Option(0, min=0, help="Seed of the VAE (weights, batches, latent draws)."),
    var_method: str = typer.Option(
        "skewt",
        "--var-method",
        help="VAE VaR quantile of the standardised residuals: skewt (Hansen skewed t, ML; the "
        "default), fhs (empirical) or evt (GPD tail, McNeil-Frey).",
    ),
    var_feedback: float | None = VarFeedbackOpt,
    dayfirst: bool | None = DayFirstOpt,
    max_gap_days: int = MaxGapOpt,
    strict_gaps: bool = StrictGapsOpt,
) -> None:
    """Rolling out-of-sample evaluation: the VAE vs GARCH(1,1)-t, GJR-t, EGARCH-t, EWMA, HAR."""
    from genforge.finance.volatility.evaluate import baseline_models, evaluate_volatility, format_table
    from genforge.finance.volatility.models import VolatilityForecaster
    from genforge.finance.volatility.var_methods import VAR_METHODS

    json_out(json_path)
    if table_path is not None:
        table_out(table_path, "--table")
    if initial < 300 or refit_every < 1:
        raise GenforgeError(f"--initial {initial} / --refit-every {refit_every}: expected >= 300 and >= 1")
    if var_method not in VAR_METHODS:
        raise GenforgeError(f"--var-method {var_method!r}: expected one of {', '.join(VAR_METHODS)}")
    _check_feedback(var_feedback, var_method)
    prices = read_prices(data, min_rows=initial + 2, dayfirst=dayfirst, max_gap_days=max_gap_days,
                         strict_gaps=strict_gaps)
    one_thread()
    models: list[Any] = []
    if not no_vae:
        models.append(
            VolatilityForecaster(
                steps=vae_steps,
                warm_steps=warm_steps,
                warm_start=warm_steps > 0,
                seed=seed,
                var_method=var_method,
                var_feedback=var_feedback,
            )
        )
    models.extend(baseline_models())
    result, table = evaluate_volatility(
        prices,
        models,
        initial=initial,
        refit_every=refit_every,
        reference=None if no_vae else "vae",
        mcs_reps=mcs_reps,
        jobs=jobs,
        log=lambda m: typer.echo(m, err=True),
    )
    if not no_vae:
        result["vae_var_method"] = var_method
        result["vae_var_feedback"] = models[0].feedback_rate
    result["anchors_qlike"] = {"gjr_t": 1.5517, "egarch_t": 1.5602, "garch_t": 1.5938, "ewma": 1.6223}
    text = format_table(result)
    typer.echo(text)
    typer.echo(f"MCS (10%, QLIKE) members: {', '.join(result['mcs'])}")
    if json_path is not None:
        write_json_atomic(json_path, result)
    if table_path is not None:
        write_table_atomic(table_path, table)
