"""``genforge finance scenarios ...``: market scenarios from a TCN GAN (Quant GAN style) and their evaluation.

User mistakes raise :class:`genforge.errors.GenforgeError` (one line, exit code 2 through the core
entry point); result files are written atomically and every input is checked before any training
starts, so a failed command leaves no file behind. Heavy imports happen inside the commands, so
``genforge --help`` stays fast.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

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
    positive,
    prices_source,
    read_prices,
    save_model,
    table_out,
)

app = typer.Typer(
    help="Market scenarios: return paths from a TCN GAN (or a diffusion model), scored by the TimeGAN "
    "protocol and Quant GAN's stylized facts.",
    no_args_is_help=True,
)


@app.command("train")
def train(
    prices: str = typer.Argument(None, help="Price file (CSV/Parquet); default: bundled S&P 500."),
    out: Path = typer.Option(..., "--out", help="Folder for the scenario model (safetensors + JSON)."),
    window: int = typer.Option(127, help="Training window (Quant GAN: 127)."),
    steps: int = typer.Option(1000, help="Adversarial training steps."),
    hidden: int = typer.Option(64, help="TCN width."),
    seed: int = typer.Option(0, min=0),
    dayfirst: bool | None = DayFirstOpt,
    max_gap_days: int = MaxGapOpt,
    strict_gaps: bool = StrictGapsOpt,
    overwrite: bool = OverwriteOpt,
) -> None:
    """Train a ScenarioGAN on the daily log returns (percent) of PRICES' Close and save it to --out.

    A folder holding anything else (another model, a model trained with other settings) is refused unless
    --overwrite is given; nothing is written before the model is trained."""
    from genforge.finance.data import log_returns
    from genforge.finance.scenarios.models import ScenarioGAN
    from genforge.outputs import check_claim

    dir_out(out)
    positive("--steps", steps)
    positive("--hidden", hidden)
    if window < 2:
        raise GenforgeError(f"--window {window}: expected at least 2 steps")
    job = {"prices": prices_source(prices), "window": window, "steps": steps, "hidden": hidden, "seed": seed,
           "dayfirst": dayfirst}
    check_claim(out, "genforge finance scenarios train", job, overwrite=overwrite, resume=False)
    data = read_prices(prices, dayfirst=dayfirst, max_gap_days=max_gap_days, strict_gaps=strict_gaps)
    returns = log_returns(data)
    if len(returns) <= window:
        raise GenforgeError(f"{prices}: {len(returns)} returns; expected more than --window {window}")
    one_thread()
    start = time.perf_counter()
    model = ScenarioGAN(
        window=window, steps=steps, hidden=hidden, preprocessing="lambertw", global_noise=False, seed=seed
    )
    model.fit(returns.to_frame("return"))
    save_model(model, out, "genforge finance scenarios train", job, overwrite)
    typer.echo(f"trained on {len(returns)} returns in {time.perf_counter() - start:.1f} s; saved to {out}")


@app.command("simulate")
def simulate(
    model: Path = typer.Option(..., "--model", help="Folder written by `scenarios train`."),
    paths: int = typer.Option(100, "--paths", help="Number of paths."),
    length: int = typer.Option(250, "--length", help="Steps per path."),
    out: Path = typer.Option(..., "--out", help="Table of paths (.parquet or .csv): path, t, return."),
    seed: int = typer.Option(0, min=0),
) -> None:
    """Sample return paths from a trained scenario model."""
    from genforge.finance.scenarios.models import ScenarioGAN
    from genforge.io import write_table_atomic

    table_out(out)
    positive("--paths", paths)
    positive("--length", length)
    if not model.is_dir():
        raise GenforgeError(
            f"--model {model}: folder not found; expected a folder written by "
            "`genforge finance scenarios train`"
        )
    est = ScenarioGAN.load(model)
    frame = est.simulate(paths, length, seed=seed)
    write_table_atomic(out, frame)
    typer.echo(f"wrote {paths} paths x {length} steps to {out}")


@app.command("evaluate")
def evaluate(
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
    from genforge.finance.scenarios.data import default_stock_csv
    from genforge.finance.scenarios.evaluate import GenEvalConfig
    from genforge.finance.scenarios.evaluate import evaluate_gen as run
    from genforge.io import write_json_atomic

    json_out(json_path)
    if model not in ("gan", "diffusion"):
        raise GenforgeError(f"--model {model}: expected gan or diffusion")
    for name, value in (
        ("--seeds", seeds),
        ("--hidden", hidden),
        ("--steps", 1 if steps is None else steps),
        ("--judge-steps", judge_steps),
        ("--predictor-steps", predictor_steps),
        ("--sf-steps", sf_steps),
        ("--sf-paths", sf_paths),
    ):
        positive(name, value)
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
        progress=True,
    )
    one_thread()
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
