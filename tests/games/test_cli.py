"""`genforge games` through the real entry point: play, train, levels."""

from __future__ import annotations

import numpy as np

from genforge.cli import main


def test_play_real_level_draws_the_path(vglc, tmp_path, capsys):
    png = tmp_path / "path.png"
    assert main(["games", "play", str(vglc / "smb" / "mario-1-1.txt"), "--png", str(png)]) == 0
    assert "playable under A*" in capsys.readouterr().out and png.is_file()


def test_play_unplayable_level_exits_1(tmp_path):
    path = tmp_path / "wall.txt"
    path.write_text("\n".join(["-" * 10 + "X" + "-" * 9] * 12 + ["X" * 20] * 2) + "\n")
    assert main(["games", "play", str(path)]) == 1


def test_train_and_levels_in_every_format(tmp_path, rule_train):
    from genforge.games import read_tiled, write_text
    from genforge.games.data import SMB_LEGEND

    data = tmp_path / "rules"
    for lv in rule_train[:3]:
        write_text(lv, data / f"{lv.name}.txt")
    (data / "smb.json").write_text('{"tiles": ' + __import__("json").dumps(SMB_LEGEND) + "}")
    model = tmp_path / "model"
    assert main(["games", "train", "--data", str(data), "--out", str(model), "--max-steps", "20"]) == 0
    for fmt, ext in (("txt", "txt"), ("tiled", "tmj"), ("png", "png")):
        out = tmp_path / fmt
        assert main(["games", "levels", "--model", str(model), "--n", "2", "--width", "40", "--enemies", "1",
                     "--format", fmt, "--out", str(out)]) == 0
        assert len(list(out.glob(f"*.{ext}"))) == 2
    level = read_tiled(next((tmp_path / "tiled").glob("*.tmj")), SMB_LEGEND)
    assert level.shape == (14, 40) and np.isin(level.grid, list(SMB_LEGEND)).all()
