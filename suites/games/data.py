"""Level formats: VGLC text grids with their JSON legend, Tiled maps (in and out), PNG previews.

A level is a :class:`Level`: a 2-D array of one-character tiles (``grid[row, col]``, row 0 at the top),
the legend that says what each character is (``{"X": ["solid", "ground"], ...}``, VGLC's format) and
the game's name. Reading validates everything a model would otherwise trip over later, with one-line
errors naming the file, row and column: empty files, ragged rows, characters the legend does not list.

Rules for levels of unequal size (stated once, used everywhere):

- **height**: windows are cut at a fixed height. A level taller than the window height is cut into
  vertical slices (Kid Icarus climbs upwards); a shorter one is padded at the *top* with the legend's
  empty tile, so its floor stays at the bottom.
- **width**: a level narrower than the window width is padded on the right with empty columns.

Across games, characters whose legend tags are identical are the same tile (Kid Icarus ``#`` and Super
Mario ``X`` are both ``["solid", "ground"]``), which puts two games into one tile vocabulary.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from genforge.errors import DataError

EMPTY_TAGS = ("passable", "empty")

# The Super Mario Bros legend of the VGLC format (TheVGLC smb.json), which the suite's own rule-based
# level generator writes, so its levels read like VGLC levels without shipping any VGLC file.
SMB_LEGEND: dict[str, list[str]] = {
    "X": ["solid", "ground"],
    "S": ["solid", "breakable"],
    "-": ["passable", "empty"],
    "?": ["solid", "question block", "full question block"],
    "Q": ["solid", "question block", "empty question block"],
    "E": ["enemy", "damaging", "hazard", "moving"],
    "<": ["solid", "top-left pipe", "pipe"],
    ">": ["solid", "top-right pipe", "pipe"],
    "[": ["solid", "left pipe", "pipe"],
    "]": ["solid", "right pipe", "pipe"],
    "o": ["coin", "collectable", "passable"],
    "B": ["Cannon top", "cannon", "solid", "hazard"],
    "b": ["Cannon bottom", "cannon", "solid"],
}


@dataclass
class Level:
    """One level: ``grid`` [rows, cols] of single characters, its legend and where it came from."""

    grid: np.ndarray
    legend: dict[str, list[str]]
    name: str = "level"
    game: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.grid.shape)  # type: ignore[return-value]

    def text(self) -> str:
        return "\n".join("".join(row) for row in self.grid) + "\n"

    def tags(self, char: str) -> list[str]:
        return list(self.legend.get(char, []))


# ------------------------------------------------------------------------------------------ legend
def read_legend(path: str | os.PathLike[str]) -> dict[str, list[str]]:
    """A VGLC legend file (``{"tiles": {char: [tags...]}}``) as ``{char: [tags]}``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such legend file; expected a VGLC JSON legend")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc}); expected a VGLC legend") from None
    tiles = doc.get("tiles") if isinstance(doc, dict) else None
    if not isinstance(tiles, dict) or not tiles:
        raise DataError(f"{path}: field 'tiles' missing or empty; expected {{\"tiles\": {{char: [tags]}}}}")
    legend: dict[str, list[str]] = {}
    for char, tags in tiles.items():
        if len(char) != 1:
            raise DataError(f"{path}: tile key {char!r} is not one character; expected single characters")
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise DataError(f"{path}: tiles[{char!r}] is not a list of strings; expected tag names")
        legend[char] = tags
    return legend


def empty_char(legend: dict[str, list[str]]) -> str:
    """The legend's empty tile (tags passable + empty), '-' when the legend does not say."""
    for char, tags in legend.items():
        if "empty" in tags:
            return char
    return "-"


# ------------------------------------------------------------------------------------------ text levels
def read_level(path: str | os.PathLike[str], legend: dict[str, list[str]] | None = None,
               game: str = "") -> Level:
    """A VGLC text level; every character must be in ``legend`` (when given), rows of equal length."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such level file; expected a VGLC text level")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start}); expected a VGLC text level") from None
    return parse_level(text, name=str(path), legend=legend, game=game)


def parse_level(text: str, name: str = "<text>", legend: dict[str, list[str]] | None = None,
                game: str = "") -> Level:
    """A level from VGLC text (``name`` is used in error messages)."""
    rows = [line.rstrip("\r") for line in text.split("\n")]
    while rows and rows[-1] == "":
        rows.pop()
    if not rows or all(not r.strip() for r in rows):
        raise DataError(f"{name}: empty file; expected rows of tile characters")
    width = len(rows[0])
    for i, row in enumerate(rows):
        if len(row) != width:
            raise DataError(
                f"{name}: row {i + 1} has {len(row)} columns; expected {width} like row 1 (ragged rows)"
            )
    grid = np.array([list(r) for r in rows], dtype="<U1")
    if legend is not None:
        check_legend(grid, legend, name)
    return Level(grid=grid, legend=dict(legend or {}), name=Path(name).stem if name != "<text>" else name,
                 game=game)


def check_legend(grid: np.ndarray, legend: dict[str, list[str]], name: str) -> None:
    """Raise naming the first row/column whose character the legend does not list."""
    known = np.isin(grid, np.array(list(legend), dtype="<U1"))
    if not known.all():
        r, c = np.argwhere(~known)[0]
        raise DataError(
            f"{name}: row {r + 1}, column {c + 1}: tile {str(grid[r, c])!r} is not in the legend; "
            f"expected one of {''.join(sorted(legend))}"
        )


def find_legend(folder: Path) -> Path:
    """The one ``*.json`` legend in a VGLC game folder."""
    found = sorted(folder.glob("*.json"))
    if len(found) != 1:
        raise DataError(
            f"{folder}: found {len(found)} JSON legend files; expected exactly one (or pass --legend)"
        )
    return found[0]


def read_game(folder: str | os.PathLike[str], legend: str | os.PathLike[str] | None = None,
              game: str | None = None) -> list[Level]:
    """Every level (``*.txt``, ``*.tmj``, ``*.tmx``) of one game folder, validated against its legend."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder; expected a folder of VGLC levels and a JSON legend")
    legend_map = read_legend(legend if legend is not None else find_legend(folder))
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".txt", ".tmj", ".tmx"))
    if not files:
        raise DataError(f"{folder}: no level files (*.txt, *.tmj, *.tmx); expected VGLC text levels")
    game = game or folder.name
    levels = []
    for path in files:
        if path.suffix.lower() == ".txt":
            levels.append(read_level(path, legend_map, game=game))
        else:
            levels.append(read_tiled(path, legend_map, game=game))
    return levels


# ------------------------------------------------------------------------------------------ vocabulary
@dataclass
class Vocabulary:
    """One tile alphabet over one or more games (tiles with identical legend tags merged)."""

    chars: str
    legend: dict[str, list[str]]
    aliases: dict[str, str] = field(default_factory=dict)  # game char -> vocabulary char

    @classmethod
    def build(cls, legends: Sequence[dict[str, list[str]]]) -> Vocabulary:
        merged: dict[str, list[str]] = {}
        by_tags: dict[tuple[str, ...], str] = {}
        aliases: dict[str, str] = {}
        for legend in legends:
            for char, tags in legend.items():
                key = tuple(tags)
                if key in by_tags:
                    aliases[char] = by_tags[key]
                    continue
                if char in merged:  # same character, different meaning in another game
                    raise DataError(
                        f"legend: tile {char!r} means {merged[char]} in one game and {tags} in another; "
                        "expected one meaning per character"
                    )
                merged[char] = list(tags)
                by_tags[key] = char
                aliases[char] = char
        empty = empty_char(merged)
        chars = empty + "".join(sorted(c for c in merged if c != empty))  # the empty tile is index 0
        return cls(chars=chars, legend=merged, aliases=aliases)

    @classmethod
    def of_levels(cls, levels: Sequence[Level]) -> Vocabulary:
        """The vocabulary of the distinct legends of ``levels``, in order of first appearance."""
        legends: list[dict[str, list[str]]] = []
        for level in levels:
            if level.legend not in legends:
                legends.append(level.legend)
        return cls.build(legends)

    def to_state(self) -> dict[str, Any]:
        """The JSON-ready fields a saved level model keeps (``from_state`` reads them back)."""
        return {"chars": self.chars, "legend": self.legend, "aliases": self.aliases}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Vocabulary:
        legend = {k: list(v) for k, v in state["legend"].items()}
        return cls(chars=state["chars"], legend=legend, aliases=dict(state["aliases"]))

    def encode(self, grid: np.ndarray, name: str = "level") -> np.ndarray:
        """Characters -> int indices (aliases applied); unknown characters raise naming row/column."""
        lookup = {a: self.chars.index(c) for a, c in self.aliases.items()}
        flat = [lookup.get(ch, -1) for ch in grid.ravel()]
        out = np.array(flat, dtype=np.int64).reshape(grid.shape)
        if (out < 0).any():
            r, c = np.argwhere(out < 0)[0]
            raise DataError(f"{name}: row {r + 1}, column {c + 1}: tile {str(grid[r, c])!r} is not in the "
                            f"model's tiles {self.chars!r}")
        return out

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return np.array(list(self.chars), dtype="<U1")[np.asarray(codes)]

    def index(self, *tags: str) -> list[int]:
        """Indices of tiles carrying every tag given."""
        return [i for i, c in enumerate(self.chars) if all(t in self.legend[c] for t in tags)]


def level_slices(level: Level, height: int) -> list[np.ndarray]:
    """A level cut to ``height`` rows (the stated rule): shorter levels padded with empty rows at the top;
    taller ones (vertical games) cut into bottom-up slices of ``height`` rows, each read left to right."""
    grid = level.grid
    rows = grid.shape[0]
    if rows <= height:
        pad = np.full((height - rows, grid.shape[1]), empty_char(level.legend), dtype="<U1")
        return [np.vstack([pad, grid])]
    return [grid[start - height:start] for start in range(rows, height - 1, -height)]


# ------------------------------------------------------------------------------------------ Tiled
def write_tiled(level: Level, path: str | os.PathLike[str], tile_px: int = 16) -> Path:
    """Write a Tiled JSON map (``.tmj``) with an embedded tileset whose image (a PNG strip of the tiles)
    is written beside it; every tile keeps its VGLC character and tags as Tiled properties."""
    from genforge.games.render import tileset_strip
    from genforge.io import atomic_path, write_json_atomic

    path = Path(path)
    chars = sorted(set(level.grid.ravel()) | set(level.legend))
    strip = tileset_strip(chars, level.legend, tile_px)
    image_path = path.with_suffix(".tiles.png")
    with atomic_path(image_path) as tmp:
        strip.save(tmp, format="PNG")
    gid = {c: i + 1 for i, c in enumerate(chars)}
    rows, cols = level.shape
    doc = {
        "type": "map", "version": "1.10", "tiledversion": "1.10.2", "orientation": "orthogonal",
        "renderorder": "right-down", "width": cols, "height": rows, "tilewidth": tile_px,
        "tileheight": tile_px, "infinite": False, "nextlayerid": 2, "nextobjectid": 1,
        "properties": [{"name": "game", "type": "string", "value": level.game},
                       {"name": "name", "type": "string", "value": level.name}],
        "layers": [{
            "id": 1, "name": "tiles", "type": "tilelayer", "width": cols, "height": rows,
            "x": 0, "y": 0, "opacity": 1, "visible": True,
            "data": [gid[c] for c in level.grid.ravel()],
        }],
        "tilesets": [{
            "firstgid": 1, "name": level.game or "tiles", "tilewidth": tile_px, "tileheight": tile_px,
            "tilecount": len(chars), "columns": len(chars), "margin": 0, "spacing": 0,
            "image": image_path.name, "imagewidth": tile_px * len(chars), "imageheight": tile_px,
            "tiles": [{"id": i, "properties": [
                {"name": "char", "type": "string", "value": c},
                {"name": "tags", "type": "string", "value": ",".join(level.legend.get(c, []))},
            ]} for i, c in enumerate(chars)],
        }],
    }
    return write_json_atomic(path, doc)


def read_tiled(path: str | os.PathLike[str], legend: dict[str, list[str]] | None = None,
               game: str = "") -> Level:
    """A Tiled map (``.tmj`` / ``.tmx``) through ``pytiled-parser``: the first tile layer, each tile's
    character from its ``char`` property (as :func:`write_tiled` writes) or, failing that, from the
    legend's order; empty cells become the empty tile."""
    import pytiled_parser

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such Tiled map")
    try:
        tmap = pytiled_parser.parse_map(path)
    except Exception as exc:  # pytiled-parser raises KeyError/TypeError/JSON errors on malformed maps
        raise DataError(f"{path}: not a readable Tiled map ({type(exc).__name__}: {exc})") from None
    layers = [la for la in tmap.layers if isinstance(la, pytiled_parser.TileLayer) and la.data]
    if not layers:
        raise DataError(f"{path}: no tile layer with data; expected one tile layer")
    chars_by_gid: dict[int, str] = {}
    order = list(legend or {})
    for firstgid, tileset in tmap.tilesets.items():
        for local, tile in (tileset.tiles or {}).items():
            char = (tile.properties or {}).get("char")
            if isinstance(char, str) and len(char) == 1:
                chars_by_gid[firstgid + local] = char
        for local in range(tileset.tile_count or 0):
            gid = firstgid + local
            if gid not in chars_by_gid and local < len(order):
                chars_by_gid[gid] = order[local]
    empty = empty_char(legend or {})
    data = layers[0].data
    grid = np.full((len(data), len(data[0])), empty, dtype="<U1")
    for r, row in enumerate(data):
        for c, gid in enumerate(row):
            if gid == 0:
                continue
            if gid not in chars_by_gid:
                raise DataError(f"{path}: row {r + 1}, column {c + 1}: tile id {gid} has no 'char' property "
                                "and no legend entry; expected tiles written by genforge or a legend")
            grid[r, c] = chars_by_gid[gid]
    if legend:
        check_legend(grid, legend, str(path))
    return Level(grid=grid, legend=dict(legend or {}), name=path.stem, game=game)


def write_text(level: Level, path: str | os.PathLike[str]) -> Path:
    """The VGLC text format."""
    from genforge.io import write_text_atomic

    return write_text_atomic(path, level.text())
