"""``genforge games ...``: train, levels, play, evaluate, demo (typer app ``app``), and ``run_demo``.

Imports are lazy (the core CLI loads this module at start-up). Expected mistakes raise
:class:`~genforge.errors.GenforgeError`; the core CLI prints them as one line and exits with code 2.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import typer

from genforge.errors import GenforgeError

app = typer.Typer(
    help="Games: generate, blend and check playable levels (level VAE, A* agent, Tiled export).",
    no_args_is_help=True,
    add_completion=False,
)

FORMATS = ("txt", "tiled", "png")
LEVEL_KINDS = ("vae", "gpt")


def _echo(msg: str) -> None:
    typer.echo(msg, err=True)


def _threads() -> None:
    import torch

    torch.set_num_threads(1)


def _parse_counts(enemies: int | None, pipes: int | None, gaps: int | None, coins: int | None) -> dict | None:
    counts = {
        k: v
        for k, v in (("enemies", enemies), ("pipes", pipes), ("gaps", gaps), ("coins", coins))
        if v is not None
    }
    for name, value in counts.items():
        if value < 0:
            raise GenforgeError(f"--{name} {value}: expected a count of 0 or more")
    return counts or None


def _parse_blend(blend: str | None) -> dict | None:
    if not blend:
        return None
    game, sep, weight = blend.rpartition(":")
    try:
        value = float(weight)
    except ValueError:
        value = float("nan")
    if not sep or not game or not 0.0 <= value <= 1.0:
        raise GenforgeError(
            f"--blend {blend!r}: expected GAME:WEIGHT with a weight in [0, 1], e.g. kid_icarus:0.3"
        )
    return {game: value}


@app.command()
def train(
    data: list[Path] = typer.Option(
        ...,
        "--data",
        help="Folder of VGLC levels + JSON legend (repeat for "
        "a second game to blend: the first is the main game)",
    ),
    legend: Path = typer.Option(None, "--legend", help="Legend JSON (default: the one *.json in --data)"),
    out: Path = typer.Option(..., "--out", help="Model folder to write"),
    max_steps: int = typer.Option(3000, "--max-steps", help="Training steps"),
    counts: bool = typer.Option(True, "--counts/--no-counts", help="Condition on element counts"),
    kind: str = typer.Option(
        "vae",
        "--kind",
        help="vae (level VAE: counts, blending) or gpt (the core GPT over columns, as MarioGPT; "
        "no counts or blending)",
    ),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Train a level model on VGLC levels (the level VAE by default, or the level GPT).

    Examples:
      genforge games train --data vglc/smb --out models/smb
      genforge games train --data vglc/smb --data vglc/kid_icarus --no-counts --out models/blend
      genforge games train --data vglc/smb --kind gpt --max-steps 800 --out models/smb-gpt
    """
    from genforge.games.data import read_game
    from genforge.games.level_gpt import LevelGPT
    from genforge.games.models import LevelVAE

    if kind not in LEVEL_KINDS:
        raise GenforgeError(f"--kind {kind!r}: expected one of {', '.join(LEVEL_KINDS)}")
    _threads()
    levels = []
    for i, folder in enumerate(data):
        levels += read_game(folder, legend if i == 0 else None)
    if out.exists() and not out.is_dir():
        raise GenforgeError(f"--out {out}: is a file; expected a folder")
    if kind == "gpt":
        est = LevelGPT(max_steps=max_steps, seed=seed, progress=True).fit(levels)
    else:
        est = LevelVAE(max_steps=max_steps, condition_counts=counts, seed=seed, progress=True).fit(levels)
    est.save(out)
    typer.echo(
        f"trained a level {kind} on {est.n_windows_} windows of {', '.join(est.games_)}; model in {out}"
    )


@app.command()
def levels(
    model: Path = typer.Option(..., "--model", help="Model folder from `genforge games train`"),
    n: int = typer.Option(4, "--n", help="Number of levels"),
    width: int = typer.Option(150, "--width", help="Columns per level"),
    blend: str = typer.Option(
        None, "--blend", help="GAME:WEIGHT, e.g. kid_icarus:0.3 (a model trained on two games)"
    ),
    enemies: int = typer.Option(None, "--enemies", help="Enemies per 16-column window"),
    pipes: int = typer.Option(None, "--pipes", help="Pipes per window"),
    gaps: int = typer.Option(None, "--gaps", help="Gaps per window"),
    coins: int = typer.Option(None, "--coins", help="Coins per window"),
    fmt: str = typer.Option("txt", "--format", help="txt | tiled | png"),
    out: Path = typer.Option(..., "--out", help="Folder to write the levels into"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Generate levels with a level VAE (stitched windows, kept playable by latent search) or a level GPT
    (columns, failed chunks redrawn under the A* agent); counts and blending need the VAE.

    Examples:
      genforge games levels --model models/smb --n 4 --format png --out levels/
      genforge games levels --model models/smb --enemies 3 --gaps 0 --format tiled --out levels/
      genforge games levels --model models/blend --blend kid_icarus:0.5 --out blended/
    """
    from genforge.games.models import LevelVAE

    if fmt not in FORMATS:
        raise GenforgeError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if n < 1 or width < 16:
        raise GenforgeError(f"--n {n} --width {width}: expected n >= 1 and width >= 16")
    counts = _parse_counts(enemies, pipes, gaps, coins)
    mix = _parse_blend(blend)
    if not (model / "config.json").is_file():
        raise GenforgeError(
            f"--model {model}: no config.json; expected a folder written by `genforge games train`"
        )
    _threads()
    from genforge.checkpoints import load_extra

    if load_extra(model).get("estimator") == "LevelGPT":
        from genforge.games.level_gpt import LevelGPT

        if counts or mix:
            raise GenforgeError(
                f"--model {model}: a level GPT; element counts and --blend need a level VAE "
                "(`genforge games train --kind vae`)"
            )
        made = LevelGPT.load(model).generate(n, width=width, seed=seed)
    else:
        vae = LevelVAE.load(model)
        if counts and not vae.condition_counts:
            raise GenforgeError(
                f"--model {model}: trained without --counts; element counts cannot be requested"
            )
        made = vae.generate(n, width=width, counts=counts, blend=mix, seed=seed)
    for lv in made:
        _write_level(lv, out, fmt)
    typer.echo(f"wrote {len(made)} levels ({fmt}) into {out}")


def _write_level(level, out: Path, fmt: str, path: list | None = None) -> Path:
    from genforge.games.data import write_text, write_tiled
    from genforge.games.render import write_png

    if fmt == "txt":
        return write_text(level, out / f"{level.name}.txt")
    if fmt == "tiled":
        return write_tiled(level, out / f"{level.name}.tmj")
    return write_png(level.grid, level.legend, out / f"{level.name}.png", path=path)


@app.command()
def play(
    level: Path = typer.Argument(..., help="Level: VGLC .txt (with --legend) or Tiled .tmj/.tmx"),
    legend: Path = typer.Option(
        None, "--legend", help="Legend JSON (default: the *.json beside the level, else the SMB legend)"
    ),
    png: Path = typer.Option(None, "--png", help="Write the level with the A* path drawn"),
    max_jump: int = typer.Option(4, "--max-jump", help="Rows the player can jump"),
) -> None:
    """Is the level playable? Runs the A* agent and the independent ballistic checker.

    Examples:
      genforge games play vglc/smb/mario-1-1.txt --png path.png
    """
    from genforge.games.data import SMB_LEGEND, read_legend, read_level, read_tiled
    from genforge.games.playability import Physics, astar, ballistic
    from genforge.games.render import write_png

    if legend is not None:
        legend_map = read_legend(legend)
    else:
        beside = sorted(level.parent.glob("*.json")) if level.parent.is_dir() else []
        beside = [p for p in beside if p.suffix == ".json" and not p.name.endswith(".tmj")]
        legend_map = read_legend(beside[0]) if len(beside) == 1 else dict(SMB_LEGEND)
    if level.suffix.lower() in (".tmj", ".tmx", ".json"):
        lv = read_tiled(level, legend_map)
    else:
        lv = read_level(level, legend_map)
    result = astar(lv.grid, lv.legend, Physics(max_jump=max_jump))
    independent = ballistic(lv.grid, lv.legend)
    if png is not None:
        write_png(lv.grid, lv.legend, png, path=result.path or None)
    verdict = "playable" if result.playable else f"NOT playable (reached column {result.furthest + 1})"
    typer.echo(
        f"{level}: {verdict} under A*; independent checker: {'playable' if independent else 'not playable'}"
    )
    if not result.playable:
        raise typer.Exit(1)


@app.command("train-sprites")
def train_sprites(
    out: Path = typer.Option(..., "--out", help="Model folder to write"),
    data: Path = typer.Option(
        None,
        "--data",
        help="Folder with one sub-folder of PNG sprites (with alpha) "
        "per class (default: the Kenney sprites bundled in arcade)",
    ),
    size: int = typer.Option(32, "--size", help="Sprite side in pixels"),
    kind: str = typer.Option("diffusion", "--kind", help="diffusion (classifier-free guidance) or vae"),
    max_steps: int = typer.Option(2200, "--max-steps"),
    guidance: float = typer.Option(
        2.0,
        "--guidance",
        help="Guidance scale of the diffusion model (chosen on validation samples in docs/results/games.md)",
    ),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Train a class-conditional sprite model (diffusion by default, or the sprite VAE).

    Examples:
      genforge games train-sprites --out models/sprites
      genforge games train-sprites --data my_sprites/ --size 16 --kind vae --out models/my-sprites
    """
    from genforge.games.sprites import SpriteDiffusion, SpriteVAE, kenney_sprites, read_sprite_folder

    if kind not in ("diffusion", "vae"):
        raise GenforgeError(f"--kind {kind}: expected diffusion or vae")
    images, labels, names = read_sprite_folder(data, size) if data else kenney_sprites(size)
    _threads()
    if kind == "vae":
        model = SpriteVAE(size=size, hidden=(16, 32, 64), max_steps=max_steps, seed=seed, progress=True)
    else:
        model = SpriteDiffusion(
            size=size,
            base_channels=16,
            channel_mults=(1, 2, 4),
            max_steps=max_steps,
            batch_size=16,
            guidance_scale=guidance,
            seed=seed,
            progress=True,
        )
    model.fit(images, labels, names).save(out)
    typer.echo(f"trained on {len(images)} sprites of classes {', '.join(names)}; model in {out}")


@app.command()
def sprites(
    model: Path = typer.Option(..., "--model", help="Model folder from `genforge games train-sprites`"),
    class_name: str = typer.Option(..., "--class", help="Class to draw, e.g. enemies"),
    n: int = typer.Option(16, "--n", help="Number of sprites"),
    out: Path = typer.Option(..., "--out", help="Sprite sheet PNG to write"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Draw a sprite sheet of one class (palette-quantised, hard alpha).

    Examples:
      genforge games sprites --model models/sprites --class enemies --n 16 --out enemies.png
    """
    from genforge.games.sprites import load_sprite_model, sprite_sheet
    from genforge.io import atomic_path

    if n < 1:
        raise GenforgeError(f"--n {n}: expected 1 or more")
    if out.suffix.lower() != ".png":
        raise GenforgeError(f"--out {out}: expected a .png file")
    if not (model / "config.json").is_file():
        raise GenforgeError(
            f"--model {model}: no config.json; expected a folder from `genforge games train-sprites`"
        )
    images = load_sprite_model(model).sample(n, class_name, seed=seed)
    with atomic_path(out) as tmp:
        sprite_sheet(images).save(tmp, format="PNG")
    typer.echo(f"wrote {n} {class_name} sprites to {out}")


@app.command("evaluate-sprites")
def evaluate_sprites(
    json_path: Path = typer.Option(None, "--json", help="Write the results as JSON"),
    steps: int = typer.Option(1000, "--steps", help="Training steps of the VAE and of the GAN baseline"),
    diffusion_steps: int = typer.Option(
        None,
        "--diffusion-steps",
        help="Training steps of the sprite diffusion model (default: SpriteDiffusion's own)",
    ),
    beta: float = typer.Option(4.0, "--beta", help="KL weight of the sprite VAE"),
    seed: int = typer.Option(0, "--seed"),
    model_dir: Path = typer.Option(None, "--save-model", help="Save the fitted diffusion model here"),
) -> None:
    """Sprite diffusion (guidance chosen on validation samples) vs the sprite VAE and a same-width
    conditional GAN on Kenney's sprites: FD (own features), class accuracy by a cross-fitted judge
    (beside its held-out accuracy on real sprites, by class), nearest-neighbour copies.

    Examples:
      genforge games evaluate-sprites --json sprites.json
    """
    import json

    from genforge.games.sprite_eval import evaluate_sprites as run
    from genforge.io import write_json_atomic

    _threads()
    result = run(
        steps=steps,
        diffusion_steps=diffusion_steps,
        seed=seed,
        beta=beta,
        model_dir=None if model_dir is None else str(model_dir),
        echo=_echo,
    )
    typer.echo(json.dumps(result, indent=2))
    if json_path is not None:
        write_json_atomic(json_path, result)


@app.command()
def evaluate(
    data: Path = typer.Option(
        None, "--data", help="VGLC folder with smb/ and kid_icarus/ (default: $GENFORGE_DATA/vglc)"
    ),
    json_path: Path = typer.Option(None, "--json", help="Write the results as JSON"),
    n: int = typer.Option(1000, "--n", help="Generated level segments per model"),
    width: int = typer.Option(150, "--width", help="Columns per segment"),
    n_independent: int = typer.Option(
        200, "--n-independent", help="Segments checked by the ballistic checker"
    ),
    vae_steps: int = typer.Option(3000, "--vae-steps"),
    gan_steps: int = typer.Option(1000, "--gan-steps"),
    seed: int = typer.Option(0, "--seed"),
    model: Path = typer.Option(
        None,
        "--model",
        help="Evaluate this saved level VAE (trained on SMB) instead of training one in the run",
    ),
    heldout_folds: int = typer.Option(
        0,
        "--heldout-folds",
        help="K >= 2: also TPKL against held-out levels (K level-wise folds, a VAE trained per fold; slow)",
    ),
    heldout_n: int = typer.Option(200, "--heldout-n", help="Segments per model and fold for --heldout-folds"),
    gpt_steps: int = typer.Option(
        800, "--gpt-steps", help="Training steps of the compared level GPT (0: leave it out)"
    ),
    gpt_model: Path = typer.Option(
        None, "--gpt-model", help="Evaluate this saved level GPT (trained on SMB) instead of training one"
    ),
) -> None:
    """The protocol of issue 15: playability, novelty, TPKL, count control, blending, beside baselines.

    Examples:
      genforge games evaluate --data ../shared/data/vglc --json games.json
      genforge games evaluate --n 200 --vae-steps 1500 --json quick.json
      genforge games evaluate --model vae_dir --heldout-folds 5 --json games.json
      genforge games evaluate --model vae_dir --gpt-model gpt_dir --json games.json
    """
    from genforge.games.evaluate import evaluate as run
    from genforge.games.evaluate import format_table
    from genforge.io import write_json_atomic

    result = run(
        data,
        n=n,
        width=width,
        n_independent=n_independent,
        vae_steps=vae_steps,
        gan_steps=gan_steps,
        seed=seed,
        model=model,
        heldout_folds=heldout_folds,
        heldout_n=heldout_n,
        echo=_echo,
        gpt_steps=gpt_steps,
        gpt_model=gpt_model,
    )
    typer.echo(format_table(result))
    if json_path is not None:
        write_json_atomic(json_path, result)


@app.command()
def demo(
    out: Path = typer.Option(Path("games-demo"), "--out", help="Folder for the demo's results"),
    quick: bool = typer.Option(False, "--quick", help="Smaller, faster run"),
) -> None:
    """Train on rule-generated levels (embedded: no level files needed), generate, check and export.

    Examples:
      genforge games demo --out games-demo --quick
    """
    result = run_demo(out, quick=quick)
    typer.echo(", ".join(f"{k}={v}" for k, v in result.items() if not isinstance(v, dict)))


def run_demo(out_dir: Path, quick: bool = False) -> dict[str, Any]:
    """Rule-generated SMB-style levels (the suite's own generator) -> level VAE -> new levels, checked by
    the A* agent and written as text, Tiled JSON and PNG (with the path)."""
    from genforge.games.data import write_text, write_tiled
    from genforge.games.metrics import tpkl
    from genforge.games.models import LevelVAE
    from genforge.games.playability import astar
    from genforge.games.render import write_png
    from genforge.games.rules import rule_levels
    from genforge.io import write_json_atomic

    _threads()
    started = time.perf_counter()
    out_dir = Path(out_dir)
    train = rule_levels(8 if quick else 40, width=64 if quick else 150, seed=0)
    vae = LevelVAE(
        max_steps=100 if quick else 2000,
        hidden=(16, 32) if quick else (32, 64),
        latent_dim=8 if quick else 32,
        candidates=8,
        seed=0,
        # the quick model trains 100 steps: its softmax is still too wide to sample tiles from
        temperature=0.0 if quick else 1.0,
    ).fit(train)
    vae.save(out_dir / "model")
    made = vae.generate(3 if quick else 8, width=64 if quick else 150, seed=1)
    playable = []
    for lv in made:
        res = astar(lv.grid, lv.legend)
        playable.append(res.playable)
        write_text(lv, out_dir / "levels" / f"{lv.name}.txt")
        write_tiled(lv, out_dir / "levels" / f"{lv.name}.tmj")
        write_png(lv.grid, lv.legend, out_dir / "levels" / f"{lv.name}.png", path=res.path or None)
    real = [vae.vocab_.encode(lv.grid) for lv in train]
    fake = [vae.vocab_.encode(lv.grid) for lv in made]
    # sprites: the class-conditional sprite VAE on Kenney's sprites bundled in arcade
    from genforge.games.sprites import SpriteVAE, kenney_sprites, sprite_sheet

    images, labels, names = kenney_sprites(16 if quick else 32)
    sprite_vae = SpriteVAE(
        size=images.shape[-1],
        hidden=(8, 16) if quick else (16, 32, 64),
        max_steps=60 if quick else 1500,
        palette_size=16,
    ).fit(images, labels, names)
    sheet = out_dir / "sprites" / "enemies.png"
    sheet.parent.mkdir(parents=True, exist_ok=True)
    sprite_sheet(sprite_vae.sample(16, "enemies", seed=0)).save(sheet, format="PNG")
    result = {
        "data": "rule-generated SMB-style levels (genforge.games.rules), not VGLC levels",
        "training_levels": len(train),
        "generated_levels": len(made),
        "playable": round(float(sum(playable)) / len(made), 3),
        "tpkl_2x2": round(tpkl(real, fake, 2), 4),
        "sprites_trained_on": len(images),
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_json_atomic(out_dir / "metrics.json", result)
    print(
        f"games demo: {result['playable']:.0%} of {len(made)} generated levels playable; "
        f"levels in {out_dir / 'levels'}",
        file=sys.stderr,
    )
    return result
