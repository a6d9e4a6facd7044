"""``genforge finance ...``: one sub-command group per product, plus the demo.

- ``genforge finance vol train|forecast|evaluate`` (:mod:`genforge.finance.volatility.cli`)
- ``genforge finance scenarios train|simulate|evaluate`` (:mod:`genforge.finance.scenarios.cli`)
- ``genforge finance loans synthesize|price|evaluate`` (:mod:`genforge.finance.loans.cli`)
- ``genforge finance demo``

The flat names of the first release (``train-vol``, ``evaluate-gen``, ``synthesize-loans``, ...) still
work for one release as hidden aliases that print one deprecation line on stderr.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from genforge.finance.cli_checks import dir_out
from genforge.finance.loans import cli as loans_cli
from genforge.finance.scenarios import cli as scenarios_cli
from genforge.finance.volatility import cli as vol_cli

app = typer.Typer(
    help="Finance: VAE volatility forecasts vs the GARCH family, market scenarios, loan books and pricing.",
    no_args_is_help=True,
)
app.add_typer(vol_cli.app, name="vol")
app.add_typer(scenarios_cli.app, name="scenarios")
app.add_typer(loans_cli.app, name="loans")

# Old flat command -> (its new home, the function). Removed in the release after 0.2.
DEPRECATED: dict[str, tuple[str, Callable[..., Any]]] = {
    "train-vol": ("vol train", vol_cli.train),
    "forecast": ("vol forecast", vol_cli.forecast),
    "evaluate-vol": ("vol evaluate", vol_cli.evaluate),
    "train-gen": ("scenarios train", scenarios_cli.train),
    "simulate": ("scenarios simulate", scenarios_cli.simulate),
    "evaluate-gen": ("scenarios evaluate", scenarios_cli.evaluate),
    "synthesize-loans": ("loans synthesize", loans_cli.synthesize),
    "price-loans": ("loans price", loans_cli.price),
    "evaluate-loans": ("loans evaluate", loans_cli.evaluate),
}


def _alias(old: str, new: str, command: Callable[..., Any]) -> Callable[..., Any]:
    """``command`` under its old name: the same options, one deprecation line on stderr first."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        print(
            f"warning: `genforge finance {old}` is deprecated; use `genforge finance {new}` "
            "(the old name goes in the next release)",
            file=sys.stderr,
        )
        return command(*args, **kwargs)

    return run


for _old, (_new, _command) in DEPRECATED.items():
    app.command(_old, hidden=True, help=f"Deprecated: use `genforge finance {_new}`.")(
        _alias(_old, _new, _command)
    )


def default_demo_dir() -> Path:
    """``genforge-results/finance-demo-<timestamp>`` in the current folder."""
    return Path("genforge-results") / f"finance-demo-{time.strftime('%Y%m%d-%H%M%S')}"


@app.command()
def demo(
    out: Path = typer.Option(
        None, "--out", help="Folder for the demo's files; default genforge-results/finance-demo-<timestamp>."
    ),
    quick: bool = typer.Option(False, "--quick", help="Fewer training steps (a few seconds)."),
) -> None:
    """A quick, self-checking run: the VAE forecaster vs GJR-GARCH-t on 2018 (S&P 500)."""
    from genforge.finance.demo import run_demo

    out = out if out is not None else default_demo_dir()
    dir_out(out)
    metrics = run_demo(out, quick=quick)
    typer.echo(json.dumps(metrics, indent=2))
    typer.echo(f"wrote {out}")
