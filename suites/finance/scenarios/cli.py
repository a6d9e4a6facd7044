"""``genforge finance`` commands for market scenarios and loan books.

``register(app)`` adds: train-gen, simulate, synthesize-loans, price-loans, evaluate-gen,
evaluate-loans. User mistakes raise :class:`genforge.errors.GenforgeError` (one line, exit code 2
through the core entry point); result files are written atomically, and every input is checked
before any training starts, so a failed command leaves no file behind. Heavy imports happen inside
the commands, so ``genforge --help`` stays fast.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer

from genforge.errors import GenforgeError

TABLE_SUFFIXES = {".csv", ".parquet", ".pq"}


def _table_out(path: Path, option: str = "--out") -> None:
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise GenforgeError(f"{option} {path}: unknown table type {path.suffix!r}; expected .csv or .parquet")
    if path.is_dir():
        raise GenforgeError(f"{option} {path}: is a folder; expected a file name")


def _dir_out(path: Path, option: str = "--out") -> None:
    if path.exists() and not path.is_dir():
        raise GenforgeError(f"{option} {path}: is a file; expected a folder")


def _json_out(path: Path | None) -> None:
    if path is not None and (path.is_dir() or path.suffix.lower() != ".json"):
        raise GenforgeError(f"--json {path}: expected a .json file name")


def _positive(name: str, value: int) -> None:
    if value < 1:
        raise GenforgeError(f"{name} {value}: expected a positive number")


def _threads() -> None:
    """One torch thread: the machines are shared and one thread does not spin (ENVIRONMENT.md)."""
    import torch

    torch.set_num_threads(1)


def _read_loans(path: Path | None) -> Any:
    """A user's loan table (CSV/Parquet), or German credit when ``path`` is None."""
    from genforge.finance.data import load_german_credit, read_table

    if path is None:
        return load_german_credit()
    df = read_table(path)
    if len(df) == 0:
        raise GenforgeError(f"{path}: no rows; expected a loan table with a header and rows")
    return df


def _parse_conditions(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        if "=" not in item:
            raise GenforgeError(f"--condition {item!r}: expected COLUMN=VALUE")
        key, value = item.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def train_gen(
    prices: str = typer.Argument(None, help="Price file (CSV/Parquet); default: bundled S&P 500."),
    out: Path = typer.Option(..., "--out", help="Folder for the scenario model (safetensors + JSON)."),
    window: int = typer.Option(127, help="Training window (Quant GAN: 127)."),
    steps: int = typer.Option(1000, help="Adversarial training steps."),
    hidden: int = typer.Option(64, help="TCN width."),
    seed: int = typer.Option(0),
) -> None:
    """Train a ScenarioGAN on the daily log returns (percent) of PRICES' Close and save it to --out."""
    from genforge.finance.data import load_prices_or_default, log_returns
    from genforge.finance.scenarios import ScenarioGAN

    _dir_out(out)
    _positive("--steps", steps)
    _positive("--hidden", hidden)
    if window < 2:
        raise GenforgeError(f"--window {window}: expected at least 2 steps")
    data = load_prices_or_default(prices)
    returns = log_returns(data)
    if len(returns) <= window:
        raise GenforgeError(f"{prices}: {len(returns)} returns; expected more than --window {window}")
    _threads()
    start = time.perf_counter()
    model = ScenarioGAN(
        window=window, steps=steps, hidden=hidden, preprocessing="lambertw", global_noise=False, seed=seed
    )
    model.fit(returns.to_frame("return"))
    model.save(out)
    typer.echo(f"trained on {len(returns)} returns in {time.perf_counter() - start:.1f} s; saved to {out}")


def simulate(
    model: Path = typer.Option(..., "--model", help="Folder written by train-gen."),
    paths: int = typer.Option(100, "--paths", help="Number of paths."),
    length: int = typer.Option(250, "--length", help="Steps per path."),
    out: Path = typer.Option(..., "--out", help="Table of paths (.parquet or .csv): path, t, return."),
    seed: int = typer.Option(0),
) -> None:
    """Sample return paths from a trained scenario model."""
    from genforge.finance.scenarios import ScenarioGAN
    from genforge.io import write_table_atomic

    _table_out(out)
    _positive("--paths", paths)
    _positive("--length", length)
    if not model.is_dir():
        raise GenforgeError(f"--model {model}: folder not found; expected a folder written by train-gen")
    est = ScenarioGAN.load(model)
    frame = est.simulate(paths, length, seed=seed)
    write_table_atomic(out, frame)
    typer.echo(f"wrote {paths} paths x {length} steps to {out}")


def synthesize_loans(
    n: int = typer.Option(..., "--n", help="Number of synthetic loans."),
    data: Path = typer.Option(None, "--data", help="Loan table (CSV/Parquet); default: German credit."),
    out: Path = typer.Option(..., "--out", help="Synthetic loan table (.parquet or .csv)."),
    condition: list[str] = typer.Option([], "--condition", help="COLUMN=VALUE on a categorical column."),
    steps: int = typer.Option(4000, help="Adversarial training steps (the validated default)."),
    save_model: Path = typer.Option(None, "--save-model", help="Also save the LoanBookGAN to this folder."),
    seed: int = typer.Option(0),
) -> None:
    """Fit a CTGAN-style LoanBookGAN on the loans and write N synthetic loans."""
    from genforge.finance.loans import LoanBookGAN
    from genforge.io import write_table_atomic

    _table_out(out)
    _positive("--n", n)
    _positive("--steps", steps)
    if save_model is not None:
        _dir_out(save_model, "--save-model")
    conditions = _parse_conditions(condition)
    df = _read_loans(data)
    missing = [c for c in conditions if c not in df.columns]
    if missing:
        raise GenforgeError(f"--condition: column(s) {missing} not in the loan table")
    _threads()
    start = time.perf_counter()
    gan = LoanBookGAN(steps=steps, seed=seed)
    gan._validate(df)  # fail before training on a bad table
    gan.fit(df)
    synth = gan.sample(n, conditions=conditions, seed=seed)
    write_table_atomic(out, synth)
    if save_model is not None:
        gan.save(save_model)
    typer.echo(f"fitted on {len(df)} loans in {time.perf_counter() - start:.1f} s; wrote {n} loans to {out}")


def price_loans(
    loans: Path = typer.Argument(..., help="Loans to price (CSV/Parquet) with the PD model's columns."),
    out: Path = typer.Option(..., "--out", help="Priced table (.csv or .parquet)."),
    train: Path = typer.Option(
        None, "--train", help="Loans with outcomes for the PD model; default: German credit."
    ),
    target: str = typer.Option("creditability", help="Default flag column in --train."),
    bad_value: str = typer.Option("bad", help="Value of the target that means default."),
    model: str = typer.Option("logistic", help="PD model: logistic or gbm."),
    lgd: float = typer.Option(0.45, help="Loss given default (fraction)."),
    funding_cost: float = typer.Option(0.03, help="Funding cost (decimal rate)."),
    margin: float = typer.Option(0.02, help="Margin (decimal rate)."),
) -> None:
    """Price loans: rate = PD x LGD + funding cost + margin, PD from a scikit-learn model."""
    from genforge.finance.data import read_table
    from genforge.finance.loans import LoanPricer
    from genforge.io import write_table_atomic

    _table_out(out)
    pricer = LoanPricer(
        target=target, bad_value=bad_value, model=model, lgd=lgd, funding_cost=funding_cost, margin=margin
    )
    pricer._check_params()
    to_price = read_table(loans)
    if len(to_price) == 0:
        raise GenforgeError(f"{loans}: no rows; expected loans to price")
    pricer.fit(_read_loans(train))
    priced = pricer.price(to_price.drop(columns=[target], errors="ignore"))
    write_table_atomic(out, priced)
    typer.echo(
        f"priced {len(priced)} loans: mean PD {priced['pd'].mean():.3f}, "
        f"mean rate {priced['rate'].mean():.4f}; wrote {out}"
    )


def evaluate_gen(
    json_path: Path = typer.Option(None, "--json", help="Write the results here."),
    stocks: Path = typer.Option(None, "--stocks", help="TimeGAN stock_data.csv; default: ../shared/data."),
    seeds: int = typer.Option(5),
    model: str = typer.Option("gan", help="Model for the TimeGAN stocks: gan or diffusion."),
    steps: int = typer.Option(
        None, help="Training steps per seed on the stocks (gan: 2000, diffusion: 3000)."
    ),
    hidden: int = typer.Option(32, help="TCN width of both GAN players (both protocols)."),
    lr: float = typer.Option(None, help="Learning rate of the stocks model (gan: 5e-4, diffusion: 1e-3)."),
    ema_decay: float = typer.Option(
        None,
        help="Decay of the weight average the stocks samples come from (gan: 0.95, diffusion: 0.995); "
        "0 samples the last step's weights.",
    ),
    critic_increments: bool = typer.Option(
        None,
        "--critic-increments/--no-critic-increments",
        help="GAN only (default on): the critic also reads each window's step-to-step changes, scaled "
        "to the values' size, so jitter costs the generator as much as a wrong level.",
        show_default=False,
    ),
    judge_steps: int = typer.Option(2000, help="Discriminative GRU judge steps (TimeGAN: 2000)."),
    predictor_steps: int = typer.Option(5000, help="Predictive GRU steps (TimeGAN: 5000)."),
    sf_steps: int = typer.Option(2000, help="GAN steps for the stylized-facts model."),
    sf_paths: int = typer.Option(50, help="Synthetic S&P 500 paths for the stylized facts."),
    sf_window: int = typer.Option(127, help="Training window of the stylized-facts model (Quant GAN: 127)."),
    skip_timegan: bool = typer.Option(False, help="Skip the TimeGAN protocol."),
    skip_stylized: bool = typer.Option(False, help="Skip the stylized facts."),
) -> None:
    """TimeGAN protocol (discriminative, predictive, nn_ratio) and Quant GAN stylized facts vs GARCH."""
    from genforge.finance.evaluate_gen import GenEvalConfig, default_stock_csv
    from genforge.finance.evaluate_gen import evaluate_gen as run
    from genforge.io import write_json_atomic

    _json_out(json_path)
    if model not in ("gan", "diffusion"):
        raise GenforgeError(f"--model {model}: expected gan or diffusion")
    for name, value in (
        ("--seeds", seeds),
        ("--steps", 1 if steps is None else steps),
        ("--judge-steps", judge_steps),
        ("--predictor-steps", predictor_steps),
        ("--sf-steps", sf_steps),
        ("--sf-paths", sf_paths),
    ):
        _positive(name, value)
    if sf_window < 2:
        raise GenforgeError(f"--sf-window {sf_window}: expected at least 2 steps")
    if lr is not None and not lr > 0:
        raise GenforgeError(f"--lr {lr}: expected a positive number")
    if ema_decay is not None and not 0.0 <= ema_decay < 1.0:
        raise GenforgeError(f"--ema-decay {ema_decay}: expected a number in [0, 1) (0: no averaging)")
    if critic_increments and model != "gan":
        raise GenforgeError(f"--critic-increments: a GAN option; --model is {model}")
    if stocks is not None and not stocks.is_file():
        raise GenforgeError(f"--stocks {stocks}: file not found; expected TimeGAN's stock_data.csv")
    cfg = GenEvalConfig(
        seeds=seeds,
        model=model,
        steps=steps,
        hidden=hidden,
        lr=lr,
        ema_decay=ema_decay,
        critic_increments=critic_increments,
        judge_steps=judge_steps,
        predictor_steps=predictor_steps,
        sf_steps=sf_steps,
        sf_paths=sf_paths,
        sf_window=sf_window,
        skip_timegan=skip_timegan,
        skip_stylized=skip_stylized,
    )
    _threads()
    result = run(stocks or default_stock_csv(), cfg, log=lambda m: typer.echo(m, err=True))
    headline = {
        k: result[k]
        for k in (
            "discriminative",
            "predictive",
            "nn_ratio",
            "roughness",
            "emd_lag1",
            "emd_lag5",
            "emd_lag20",
            "emd_lag100",
            "acf_abs",
            "leverage",
        )
        if k in result
    }
    if "stylized_facts" in result:
        headline["garch"] = {k: v for k, v in result["stylized_facts"]["garch"].items()}
    typer.echo(json.dumps(headline, indent=2))
    if json_path is not None:
        write_json_atomic(json_path, result)


def evaluate_loans(
    json_path: Path = typer.Option(None, "--json", help="Write the results here."),
    data: Path = typer.Option(
        None, "--data", help="Loan table with a 'creditability' column; default: German credit."
    ),
    seeds: int = typer.Option(3),
    first_seed: int = typer.Option(0, help="First split/training seed (seeds first .. first + seeds - 1)."),
    steps: int = typer.Option(4000, help="LoanBookGAN steps per seed (the validated default)."),
) -> None:
    """Quality (column shapes + pair trends), TSTR/TRTR AUROC and DCR privacy of synthetic loan books."""
    from genforge.finance.evaluate_loans import LoanEvalConfig
    from genforge.finance.evaluate_loans import evaluate_loans as run
    from genforge.io import write_json_atomic

    _json_out(json_path)
    _positive("--seeds", seeds)
    _positive("--steps", steps)
    df = _read_loans(data)
    if "creditability" not in df.columns:
        raise GenforgeError(f"{data}: column 'creditability' missing; expected the good/bad outcome")
    _threads()
    result = run(
        df,
        LoanEvalConfig(seeds=seeds, first_seed=first_seed, steps=steps),
        log=lambda m: typer.echo(m, err=True),
    )
    headline = {
        k: result[k]
        for k in ("quality", "tstr_over_trtr", "tstr_auroc", "trtr_auroc", "dcr_ratio", "exact_copies")
    }
    headline["sdv_ctgan"] = result["sdv_ctgan"]
    typer.echo(json.dumps(headline, indent=2))
    if json_path is not None:
        write_json_atomic(json_path, result)


def register(app: typer.Typer) -> None:
    """Add the scenario and loan commands to the finance app."""
    app.command("train-gen")(train_gen)
    app.command("simulate")(simulate)
    app.command("synthesize-loans")(synthesize_loans)
    app.command("price-loans")(price_loans)
    app.command("evaluate-gen")(evaluate_gen)
    app.command("evaluate-loans")(evaluate_loans)
