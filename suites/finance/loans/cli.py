"""``genforge finance loans ...``: synthetic loan books (CTGAN-style GAN), loan pricing and their evaluation.

User mistakes raise :class:`genforge.errors.GenforgeError` (one line, exit code 2 through the core
entry point); result files are written atomically and every input is checked before any training
starts, so a failed command leaves no file behind.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer

from genforge.errors import GenforgeError
from genforge.finance.cli_checks import dir_out, json_out, one_thread, positive, table_out

app = typer.Typer(
    help="Loan books: synthetic books from a CTGAN-style GAN, risk-based pricing, quality and utility.",
    no_args_is_help=True,
)


def _read_loans(path: Path | None) -> Any:
    """A user's loan table (CSV/Parquet), or German credit when ``path`` is None."""
    from genforge.finance.data import read_table
    from genforge.finance.loans.data import load_german_credit

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


@app.command("synthesize")
def synthesize(
    n: int = typer.Option(..., "--n", help="Number of synthetic loans."),
    data: Path = typer.Option(None, "--data", help="Loan table (CSV/Parquet); default: German credit."),
    out: Path = typer.Option(..., "--out", help="Synthetic loan table (.parquet or .csv)."),
    condition: list[str] = typer.Option([], "--condition", help="COLUMN=VALUE on a categorical column."),
    steps: int = typer.Option(4000, help="Adversarial training steps (the validated default)."),
    save_model: Path = typer.Option(None, "--save-model", help="Also save the LoanBookGAN to this folder."),
    seed: int = typer.Option(0, min=0),
    id_columns: str = typer.Option(
        "refuse",
        "--id-columns",
        help="Identifier-like columns (customer ids, account numbers, near-unique keys), which synthetic "
        "rows would copy: refuse (an error naming them), drop (left out), or regenerate (fresh ids "
        "SYN-000001, ... sharing no value with the real ones).",
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace whatever --save-model holds (another model, other settings)."
    ),
) -> None:
    """Fit a CTGAN-style LoanBookGAN on the loans and write N synthetic loans.

    A --save-model folder holding anything else (another model, a model fitted with other settings) is
    refused unless --overwrite is given."""
    from genforge.finance.loans.data import ID_COLUMN_MODES
    from genforge.finance.loans.models import LoanBookGAN
    from genforge.io import write_table_atomic
    from genforge.outputs import check_claim, output_job

    table_out(out)
    positive("--n", n)
    positive("--steps", steps)
    if id_columns not in ID_COLUMN_MODES:
        raise GenforgeError(f"--id-columns {id_columns!r}: expected one of {', '.join(ID_COLUMN_MODES)}")
    job = {"data": None if data is None else str(data.resolve()), "steps": steps, "seed": seed,
           "id_columns": id_columns}
    if save_model is not None:
        dir_out(save_model, "--save-model")
        check_claim(save_model, "genforge finance loans synthesize", job, overwrite=overwrite, resume=False,
                    option="--save-model")
    conditions = _parse_conditions(condition)
    df = _read_loans(data)
    missing = [c for c in conditions if c not in df.columns]
    if missing:
        raise GenforgeError(
            f"--condition: column(s) {missing} not in the loan table ({data or 'German credit'})"
        )
    one_thread()
    start = time.perf_counter()
    gan = LoanBookGAN(steps=steps, seed=seed, id_columns=id_columns)
    gan._validate(df)  # fail before training on a bad table
    gan.fit(df)
    synth = gan.sample(n, conditions=conditions, seed=seed)
    if save_model is not None:
        with output_job(save_model, "genforge finance loans synthesize", job, overwrite=overwrite,
                        resume=False, option="--save-model"):
            gan.save(save_model)
    write_table_atomic(out, synth)
    typer.echo(f"fitted on {len(df)} loans in {time.perf_counter() - start:.1f} s; wrote {n} loans to {out}")


@app.command("price")
def price(
    loans: Path = typer.Argument(..., help="Loans to price (CSV/Parquet) with the PD model's columns."),
    out: Path = typer.Option(..., "--out", help="Priced table (.csv or .parquet)."),
    train: Path = typer.Option(
        None, "--train", help="Loans with outcomes for the PD model; default: German credit."
    ),
    target: str = typer.Option("creditability", help="Default flag column in --train."),
    bad_value: str = typer.Option("bad", help="Value of the target that means default."),
    model: str = typer.Option("logistic", help="PD model: logistic or gbm."),
    lgd: float = typer.Option(0.45, min=0.0, max=1.0, help="Loss given default (fraction)."),
    funding_cost: float = typer.Option(0.03, help="Funding cost (decimal rate, above -0.5 and below 1)."),
    margin: float = typer.Option(0.02, help="Margin (decimal rate, above -0.5 and below 1)."),
) -> None:
    """Price loans: rate = PD x LGD + funding cost + margin, PD from a scikit-learn model."""
    from genforge.finance.data import read_table
    from genforge.finance.loans.models import LoanPricer
    from genforge.io import write_table_atomic

    table_out(out)
    for name, value in (("--funding-cost", funding_cost), ("--margin", margin)):
        if not -0.5 < value < 1.0:
            raise GenforgeError(f"{name} {value}: expected a decimal rate above -0.5 and below 1 (e.g. 0.03)")
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


@app.command("evaluate")
def evaluate(
    json_path: Path = typer.Option(None, "--json", help="Write the results here."),
    data: Path = typer.Option(
        None, "--data", help="Loan table with a 'creditability' column; default: German credit."
    ),
    seeds: int = typer.Option(3),
    first_seed: int = typer.Option(
        0, min=0, help="First split/training seed (seeds first .. first + seeds - 1)."
    ),
    steps: int = typer.Option(4000, help="LoanBookGAN steps per seed (the validated default)."),
) -> None:
    """Quality (column shapes + pair trends), TSTR/TRTR AUROC and DCR privacy of synthetic loan books."""
    from genforge.finance.loans.evaluate import LoanEvalConfig
    from genforge.finance.loans.evaluate import evaluate_loans as run
    from genforge.finance.loans.models import LoanBookGAN
    from genforge.io import write_json_atomic

    json_out(json_path)
    positive("--seeds", seeds)
    positive("--steps", steps)
    df = _read_loans(data)
    if "creditability" not in df.columns:
        raise GenforgeError(f"{data}: column 'creditability' missing; expected the good/bad outcome")
    LoanBookGAN()._identifiers(df)  # identifier columns refused before any work (the GANs would copy them)
    one_thread()
    result = run(
        df,
        LoanEvalConfig(seeds=seeds, first_seed=first_seed, steps=steps, progress=True),
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
