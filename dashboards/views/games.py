"""Game levels: generate levels with a level VAE, see the A* agent's path, steer the latent space and the
element counts, blend two games, check an uploaded level, download text / Tiled / PNG; sprite grids of
Kenney's sprites and of a sprite model (``$GENFORGE_GAMES_SPRITES``, default ``models/sprites``).

UI only: reading, generation, playability and drawing come from ``genforge.games``. Model folder:
``$GENFORGE_GAMES_MODEL`` (default ``models/games``) or typed in; without one, a small model can be trained
here on rule-generated levels (the suite's own generator; not Nintendo's levels).
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np
import streamlit as st

TITLE = "Game levels"
ICON = ":material/sports_esports:"


@st.cache_resource(show_spinner="loading the model ...")
def _model(model_dir: str, stamp: float):
    from genforge.games import LevelVAE

    return LevelVAE.load(model_dir)


@st.cache_resource(show_spinner="training a small level VAE on rule-generated levels (about a minute) ...")
def _demo_model():
    from genforge.games import LevelVAE, rule_levels

    return LevelVAE(max_steps=300, hidden=(16, 32), latent_dim=8, candidates=8).fit(rule_levels(12, 96))


@st.cache_resource(show_spinner="loading the sprite model ...")
def _sprite_model(model_dir: str, stamp: float):
    from genforge.games import load_sprite_model

    return load_sprite_model(model_dir)


@st.cache_data(show_spinner="reading Kenney's sprites ...")
def _kenney(size: int):
    from genforge.games import kenney_sprites

    return kenney_sprites(size)


def _sheet_png(images: np.ndarray, columns: int = 8) -> bytes:
    from genforge.games import sprite_sheet

    buf = io.BytesIO()
    sprite_sheet(images, columns=columns, scale=3).save(buf, format="PNG")
    return buf.getvalue()


@st.cache_data(show_spinner=False)
def _rule_level(seed: int, width: int) -> tuple[list[str], dict]:
    from genforge.games import rule_level

    level = rule_level(width, seed)
    return ["".join(r) for r in level.grid], level.legend


def _png(grid: np.ndarray, legend: dict, path=None) -> bytes:
    from genforge.games import render_level

    buf = io.BytesIO()
    render_level(grid, legend, px=16, path=path).save(buf, format="PNG")
    return buf.getvalue()


def _show_level(level, key: str) -> None:
    """Draw a level with the A* path and offer the downloads."""
    from genforge.games import astar, ballistic, write_tiled

    result = astar(level.grid, level.legend)
    independent = ballistic(level.grid, level.legend)
    png = _png(level.grid, level.legend, result.path or None)
    st.image(png)
    verdict = "playable" if result.playable else f"not playable (A* reached column {result.furthest + 1})"
    st.caption(
        f"{level.name}: {verdict}; independent ballistic checker: "
        f"{'playable' if independent else 'not playable'}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        write_tiled(level, Path(tmp) / f"{level.name}.tmj")
        tiled = (Path(tmp) / f"{level.name}.tmj").read_bytes()
    c1, c2, c3 = st.columns(3)
    c1.download_button("level text", level.text(), f"{level.name}.txt", key=f"{key}-txt")
    c2.download_button("Tiled JSON", tiled, f"{level.name}.tmj", key=f"{key}-tmj")
    c3.download_button("PNG", png, f"{level.name}.png", key=f"{key}-png")


st.title(TITLE)
st.write(
    "Levels from a level VAE (the core VAE, categorical over tiles), stitched window by window and kept "
    "playable by the A* agent; the white line is the agent's path."
)

default_dir = os.environ.get("GENFORGE_GAMES_MODEL", "models/games")
model_dir = st.text_input("model folder (from `genforge games train`)", default_dir)
model = None
if (Path(model_dir) / "config.json").is_file():
    try:
        model = _model(model_dir, (Path(model_dir) / "config.json").stat().st_mtime)
    except Exception as exc:  # a bad folder is a message, not a crash
        st.error(f"{model_dir}: {exc}")
elif st.button("train a small model on rule-generated levels"):
    st.session_state["games_demo_model"] = True
if model is None and st.session_state.get("games_demo_model"):
    model = _demo_model()

TABS = ["generate", "latent space", "check a level", "sprites"]
tab_gen, tab_latent, tab_check, tab_sprites = st.tabs(TABS)

with tab_gen:
    if model is None:
        st.info("No model yet: here is a level from the suite's rule-based generator instead.")
        rows, legend = _rule_level(0, 96)
        from genforge.games import parse_level

        _show_level(parse_level("\n".join(rows), legend=legend), "rules")
    else:
        c1, c2, c3 = st.columns(3)
        width = c1.slider("width (columns)", 32, 300, 150, step=16)
        seed = c2.number_input("seed", 0, 10_000, 0)
        blend = None
        if len(model.games_) > 1:
            other = c3.selectbox("blend with", model.games_[1:])
            weight = c3.slider("blend weight", 0.0, 1.0, 0.0, 0.05)
            blend = {other: weight} if weight > 0 else None
        counts = None
        if model.condition_counts:
            st.write("constraints per 16-column window (blank = as in training)")
            cols = st.columns(4)
            counts = {}
            for col, name in zip(cols, ("enemies", "pipes", "gaps", "coins"), strict=True):
                if col.checkbox(name, key=f"use-{name}"):
                    counts[name] = col.number_input(f"{name} per window", 0, 20, 1, key=f"n-{name}")
            counts = counts or None
        level = model.generate(1, width=int(width), counts=counts, blend=blend, seed=int(seed))[0]
        _show_level(level, "gen")

with tab_latent:
    if model is None:
        st.info("Load or train a model to explore its latent space.")
    else:
        st.write("Move along the first latent dimensions of one window (others stay at 0).")
        dims = min(4, model.latent_dim)
        cols = st.columns(dims)
        z = np.zeros((1, model.latent_dim), dtype=np.float32)
        for i, col in enumerate(cols):
            z[0, i] = col.slider(f"z{i}", -3.0, 3.0, 0.0, 0.1, key=f"z{i}")
        window = model.decode(z)[0]
        lvl = model.to_level(window, "latent-window")
        st.image(_png(lvl.grid, lvl.legend), width=320)

with tab_check:
    st.write("Upload a VGLC text level (Super Mario Bros legend) to check it with the A* agent.")
    upload = st.file_uploader("level (.txt)", type=["txt"])
    if upload is not None:
        from genforge.games import SMB_LEGEND, parse_level

        try:
            text = upload.getvalue().decode("utf-8")
            level = parse_level(text, name=upload.name, legend=SMB_LEGEND)
        except UnicodeDecodeError:
            st.error(f"{upload.name}: not UTF-8 text; expected a VGLC text level")
        except ValueError as exc:  # DataError: one line naming row and column
            st.error(str(exc))
        else:
            _show_level(level, "upload")

with tab_sprites:
    sprite_dir = st.text_input(
        "sprite model folder (from `genforge games train-sprites`)",
        os.environ.get("GENFORGE_GAMES_SPRITES", "models/sprites"),
    )
    images, labels, names = _kenney(32)
    choice = st.selectbox("class", names)
    index = names.index(choice)
    st.write(f"Kenney CC0 sprites bundled in arcade: {int((labels == index).sum())} {choice}")
    st.image(_sheet_png(images[labels == index][:24]))
    if (Path(sprite_dir) / "config.json").is_file():
        try:
            sprite_model = _sprite_model(sprite_dir, (Path(sprite_dir) / "config.json").stat().st_mtime)
            seed = st.number_input("sprite seed", 0, 10_000, 0)
            wanted = choice if choice in sprite_model.classes_ else 0
            made = sprite_model.sample(24, wanted, seed=int(seed))
            # diffusion models guide each class with its own scale (chosen on validation)
            guide = (
                f", guidance scale {sprite_model.guidance_for(wanted):g}"
                if hasattr(sprite_model, "guidance_for")
                else ""
            )
        except Exception as exc:  # a bad or mismatched model folder is a message, not a crash
            st.error(f"{sprite_dir}: {exc}")
        else:
            sheet = _sheet_png(made)
            st.write(f"generated (palette-quantised, hard alpha{guide})")
            st.image(sheet)
            st.download_button("sprite sheet PNG", sheet, f"{choice}-sheet.png")
    else:
        st.info("No sprite model yet: `genforge games train-sprites --out models/sprites` trains one.")
