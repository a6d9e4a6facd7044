"""PNG previews of levels: each tile drawn with a Kenney CC0 tile bundled in ``arcade`` where one fits the
tile's legend tags (ground, bricks, question blocks, coins, enemies, ...), else a plain colour per tile
class; an optional path (the A* agent's) drawn over it.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

# tag -> Kenney image (relative to arcade's resources/assets/images), first matching tag wins
KENNEY_BY_TAG = (
    ("pipe", "tiles/boxCrate.png"),
    ("cannon", "tiles/brickGrey.png"),
    ("question block", "tiles/boxCrate_double.png"),
    ("breakable", "tiles/brickBrown.png"),
    ("door", "tiles/doorClosed_mid.png"),
    ("enemy", "enemies/slimeBlue.png"),
    ("coin", "items/coinGold.png"),
    ("platform", "tiles/bridgeA.png"),
    ("hazard", "tiles/lava.png"),
    ("ground", "tiles/grassMid.png"),
)
# tag -> RGB, first matching tag wins (used without Kenney images or where none fits)
COLOUR_BY_TAG = (
    ("empty", (146, 200, 255)),
    ("pipe", (40, 170, 60)),
    ("cannon", (50, 50, 50)),
    ("question block", (240, 190, 40)),
    ("breakable", (170, 90, 40)),
    ("enemy", (220, 40, 40)),
    ("coin", (255, 230, 0)),
    ("door", (120, 60, 160)),
    ("platform", (200, 160, 110)),
    ("hazard", (255, 100, 0)),
    ("solid", (120, 70, 30)),
)
UNKNOWN = (255, 0, 255)
PATH_COLOUR = (255, 255, 255)


def kenney_root() -> Path | None:
    """arcade's bundled Kenney image folder (None when arcade is not installed)."""
    import importlib.util

    spec = importlib.util.find_spec("arcade")
    if spec is None or not spec.origin:
        return None
    root = Path(spec.origin).parent / "resources" / "assets" / "images"
    return root if root.is_dir() else None


def tile_colour(tags: list[str]) -> tuple[int, int, int]:
    for tag, colour in COLOUR_BY_TAG:
        if tag in tags:
            return colour
    return UNKNOWN


@functools.lru_cache(maxsize=64)
def _tile_image(tags: tuple[str, ...], px: int, kenney: bool) -> Image.Image:
    colour = tile_colour(list(tags))
    tile = Image.new("RGBA", (px, px), (*colour, 255))
    root = kenney_root() if kenney else None
    if root is not None and "empty" not in tags:
        for tag, rel in KENNEY_BY_TAG:
            if tag in tags and (root / rel).is_file():
                sprite = Image.open(root / rel).convert("RGBA").resize((px, px), Image.NEAREST)
                sky = Image.new("RGBA", (px, px), (*COLOUR_BY_TAG[0][1], 255))
                tile = Image.alpha_composite(sky, sprite)
                break
    return tile


def tileset_strip(chars: list[str], legend: dict[str, list[str]], px: int = 16,
                  kenney: bool = True) -> Image.Image:
    """One row of tiles, in the order of ``chars`` (the Tiled tileset image)."""
    strip = Image.new("RGBA", (px * len(chars), px))
    for i, c in enumerate(chars):
        strip.paste(_tile_image(tuple(legend.get(c, [])), px, kenney), (i * px, 0))
    return strip


def render(grid: np.ndarray, legend: dict[str, list[str]], px: int = 16, kenney: bool = True,
           path: list[tuple[int, int]] | None = None) -> Image.Image:
    """The level as an RGB image; ``path`` is a list of (row, col) cells drawn as a line."""
    rows, cols = grid.shape
    img = Image.new("RGBA", (cols * px, rows * px))
    for r in range(rows):
        for c in range(cols):
            img.paste(_tile_image(tuple(legend.get(grid[r, c], [])), px, kenney), (c * px, r * px))
    if path:
        draw = ImageDraw.Draw(img)
        points = [(c * px + px // 2, r * px + px // 2) for r, c in path]
        if len(points) > 1:
            draw.line(points, fill=PATH_COLOUR, width=max(1, px // 6))
        for x, y in points[:1] + points[-1:]:
            draw.ellipse([x - px // 4, y - px // 4, x + px // 4, y + px // 4], fill=PATH_COLOUR)
    return img.convert("RGB")


def write_png(grid: np.ndarray, legend: dict[str, list[str]], out: str | os.PathLike[str], px: int = 16,
              kenney: bool = True, path: list[tuple[int, int]] | None = None) -> Path:
    """Render and write a PNG atomically."""
    from genforge.io import atomic_path

    out = Path(out)
    with atomic_path(out) as tmp:
        render(grid, legend, px, kenney, path).save(tmp, format="PNG")
    return out
