"""Bad inputs to `genforge games`: exit code 2, one `error:` line naming file/field and what was expected,
no traceback, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import refused, snapshot

from genforge.games.data import SMB_LEGEND

GOOD = ["-" * 20] * 12 + ["X" * 20] * 2


def game_folder(root: Path, level_text: str, legend: dict | None = None) -> Path:
    folder = root / "game"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "legend.json").write_text(json.dumps({"tiles": legend or SMB_LEGEND}))
    (folder / "level-1.txt").write_text(level_text)
    return folder


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("", ("level-1.txt", "empty file")),
        ("\n".join(GOOD[:5] + ["-" * 19] + GOOD[6:]) + "\n", ("level-1.txt", "row 6", "expected 20")),
        ("\n".join(GOOD[:3] + ["-" * 7 + "Z" + "-" * 12] + GOOD[4:]) + "\n",
         ("level-1.txt", "row 4, column 8", "'Z'", "not in the legend")),
    ],
    ids=["empty", "ragged", "unknown-tile"],
)
def test_train_bad_level(cli, tmp_path, text, needles):
    data = game_folder(tmp_path, text)
    before = snapshot(tmp_path)
    refused(cli("games", "train", "--data", data, "--out", tmp_path / "model", "--max-steps", "2"), *needles)
    assert snapshot(tmp_path) == before and not (tmp_path / "model").exists()


def test_train_legend_not_covering_level(cli, tmp_path):
    legend = {k: v for k, v in SMB_LEGEND.items() if k != "X"}
    data = game_folder(tmp_path, "\n".join(GOOD) + "\n", legend)
    refused(cli("games", "train", "--data", data, "--out", tmp_path / "model"),
            "level-1.txt", "row 13, column 1", "'X'", "not in the legend")
    assert not (tmp_path / "model").exists()


def test_train_bad_legend_json(cli, tmp_path):
    data = game_folder(tmp_path, "\n".join(GOOD) + "\n")
    (data / "legend.json").write_text("{not json")
    refused(cli("games", "train", "--data", data, "--out", tmp_path / "model"),
            "legend.json", "not valid JSON")
    assert not (tmp_path / "model").exists()


def test_train_missing_folder(cli, tmp_path):
    refused(cli("games", "train", "--data", tmp_path / "nope", "--out", tmp_path / "model"),
            "nope", "no such folder")
    assert not (tmp_path / "model").exists()


def test_play_ragged_level(cli, tmp_path):
    path = tmp_path / "level.txt"
    path.write_text("---\n--\n")
    png = tmp_path / "path.png"
    refused(cli("games", "play", path, "--png", png), "level.txt", "row 2", "ragged")
    assert not png.exists()


def test_levels_missing_model(cli, tmp_path):
    refused(cli("games", "levels", "--model", tmp_path / "none", "--out", tmp_path / "out"),
            "--model", "config.json")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("--format", "gif"), ("--format", "txt, tiled, png")),
        (("--blend", "kid_icarus"), ("--blend", "GAME:WEIGHT")),
        (("--blend", "kid_icarus:1.5"), ("--blend", "[0, 1]")),
        (("--enemies", "-1"), ("--enemies", "0 or more")),
    ],
    ids=["format", "blend-no-weight", "blend-range", "negative-count"],
)
def test_levels_bad_options(cli, tmp_path, args, needles):
    refused(cli("games", "levels", "--model", tmp_path / "m", "--out", tmp_path / "out", *args), *needles)
    assert not (tmp_path / "out").exists()


def test_sprites_bad_out_and_missing_model(cli, tmp_path):
    base = ("games", "sprites", "--model", tmp_path / "m", "--class", "enemies", "--out")
    refused(cli(*base, tmp_path / "a.gif"), "--out", ".png")
    refused(cli(*base, tmp_path / "a.png"), "--model", "config.json")
    assert not (tmp_path / "a.png").exists() and not (tmp_path / "a.gif").exists()


def test_train_sprites_without_alpha(cli, tmp_path):
    from PIL import Image

    (tmp_path / "data" / "heroes").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "data" / "heroes" / "hero.png")
    refused(cli("games", "train-sprites", "--data", tmp_path / "data", "--out", tmp_path / "model"),
            "hero.png", "no alpha channel")
    assert not (tmp_path / "model").exists()


def test_train_sprites_unknown_kind(cli, tmp_path):
    before = snapshot(tmp_path)
    refused(cli("games", "train-sprites", "--kind", "pixels", "--out", tmp_path / "model"),
            "--kind pixels", "expected diffusion or vae")
    assert snapshot(tmp_path) == before and not (tmp_path / "model").exists()
