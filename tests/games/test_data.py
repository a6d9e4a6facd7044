"""Formats: VGLC text + legend, the joint vocabulary, Tiled JSON round trip through pytiled-parser, PNG."""

from __future__ import annotations

import json

import numpy as np
import pytest

from genforge.errors import DataError
from genforge.games import SMB_LEGEND, parse_level, read_game, read_level, read_tiled, write_tiled
from genforge.games.data import Vocabulary, level_slices, read_legend


def test_reads_every_smb_level(smb_levels):
    assert len(smb_levels) == 15
    assert all(lv.shape[0] == 14 and lv.shape[1] >= 149 for lv in smb_levels)
    assert {"X", "-", "E"} <= set(np.unique(np.concatenate([lv.grid.ravel() for lv in smb_levels])))


def test_kid_icarus_shares_a_vocabulary_with_smb(vglc, smb_levels):
    ki = read_game(vglc / "kid_icarus", game="kid_icarus")
    vocab = Vocabulary.build([smb_levels[0].legend, ki[0].legend])
    assert vocab.aliases["#"] == "X" and vocab.chars[0] == "-"  # identical tags -> one tile
    codes = vocab.encode(ki[0].grid)
    assert codes.shape == ki[0].shape and codes.max() < len(vocab.chars)
    slices = level_slices(ki[0], 14)  # vertical level cut bottom-up into 14-row slices
    assert all(s.shape == (14, 16) for s in slices) and np.array_equal(slices[0], ki[0].grid[-14:])


def test_short_levels_are_padded_at_the_top():
    level = parse_level("X-\nXX\n", legend=SMB_LEGEND)
    (grid,) = level_slices(level, 4)
    assert grid.shape == (4, 2) and "".join(grid[:, 0]) == "--XX"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "empty file"),
        ("--X\n-X\n", "row 2 has 2 columns; expected 3"),
        ("---\n-Z-\n", "row 2, column 2: tile 'Z' is not in the legend"),
    ],
)
def test_bad_levels_name_row_and_column(tmp_path, text, needle):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(DataError, match=needle) as err:
        read_level(path, SMB_LEGEND)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_bad_legend(tmp_path):
    path = tmp_path / "legend.json"
    path.write_text(json.dumps({"tiles": {"XY": ["solid"]}}))
    with pytest.raises(DataError, match="not one character"):
        read_legend(path)


def test_tiled_round_trip(tmp_path, rule_train):
    import pytiled_parser

    level = rule_train[0]
    out = write_tiled(level, tmp_path / "level.tmj")
    tmap = pytiled_parser.parse_map(out)  # the parser Tiled users rely on reads it
    assert tmap.map_size.width == level.shape[1] and tmap.map_size.height == level.shape[0]
    back = read_tiled(out, SMB_LEGEND)
    assert np.array_equal(back.grid, level.grid)
    assert (tmp_path / "level.tiles.png").is_file()


def test_png_preview(tmp_path, rule_train):
    from PIL import Image

    from genforge.games import write_png

    path = write_png(rule_train[0].grid, SMB_LEGEND, tmp_path / "level.png", px=8, path=[(11, 0), (11, 5)])
    img = Image.open(path)
    assert img.size == (rule_train[0].shape[1] * 8, 14 * 8)
