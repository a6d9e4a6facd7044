"""LevelGPT: column serialisation round trip, well-formed columns, learning, save/load, held-out scoring."""

from __future__ import annotations

import numpy as np
import pytest

from genforge.errors import DataError
from genforge.games.level_gpt import LevelGPT, column_windows, deserialise, level_codes, serialise

TINY = {
    "context": 8,
    "chunk": 4,
    "n_layer": 1,
    "n_head": 2,
    "n_embd": 32,
    "batch_size": 16,
    "warmup_steps": 5,
}


@pytest.fixture(scope="module")
def trained(rule_train):
    return LevelGPT(max_steps=80, **TINY).fit(rule_train)


def test_serialise_reads_columns_bottom_to_top_and_round_trips():
    codes = np.arange(12).reshape(3, 4)  # row 0 at the top
    tokens = serialise(codes)
    assert tokens[:3].tolist() == [8, 4, 0]  # first column, bottom tile first
    assert tokens[3:6].tolist() == [9, 5, 1]
    np.testing.assert_array_equal(deserialise(tokens, 3), codes)
    rng = np.random.default_rng(0)
    grid = rng.integers(0, 13, size=(14, 37))
    np.testing.assert_array_equal(deserialise(serialise(grid), 14), grid)
    with pytest.raises(DataError, match="whole columns"):
        deserialise(tokens[:-1], 3)


def test_real_smb_levels_round_trip_through_windows(smb_levels):
    from genforge.games.data import Vocabulary

    vocab = Vocabulary.build([smb_levels[0].legend])
    codes = level_codes(smb_levels, vocab, 14, 32)
    assert len(codes) == len(smb_levels)
    for level, g in zip(smb_levels, codes, strict=True):
        np.testing.assert_array_equal(vocab.decode(deserialise(serialise(g), 14)), level.grid)
    windows = column_windows(codes[:1], 32)
    assert windows.shape == (codes[0].shape[1] - 31, 32 * 14)
    np.testing.assert_array_equal(deserialise(windows[5], 14), codes[0][:, 5:37])


def test_generated_columns_have_the_right_height_and_tiles(trained):
    levels = trained.generate(3, width=29, seed=1, playable=False)
    assert len(levels) == 3
    for lv in levels:
        assert lv.grid.shape == (14, 29)
        assert set(np.unique(lv.grid)) <= set(trained.vocab_.chars)
        trained.vocab_.encode(lv.grid)  # every tile is in the model's vocabulary
    # the segment begins with a training level's first columns (the start prompt)
    starts = {trained.vocab_.decode(s).tobytes() for s in trained.start_columns_}
    assert all(lv.grid[:, : trained.start_columns].tobytes() in starts for lv in levels)


def test_learning_happens(rule_train, trained):
    untrained = LevelGPT(max_steps=1, **TINY).fit(rule_train)
    before, after = untrained.nll(rule_train), trained.nll(rule_train)
    assert after < 0.6 * before, (before, after)


def test_save_load_gives_the_same_samples(trained, tmp_path):
    trained.save(tmp_path / "gpt")
    loaded = LevelGPT.load(tmp_path / "gpt")
    a = trained.generate(2, width=20, seed=5, playable=False)
    b = loaded.generate(2, width=20, seed=5, playable=False)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.grid, y.grid)
    c = trained.generate(2, width=20, seed=6, playable=False)
    assert any((x.grid != y.grid).any() for x, y in zip(a, c, strict=True))


def test_playable_option_redraws_failed_chunks(trained):
    from genforge.games import astar

    raw = trained.generate(6, width=40, seed=3, playable=False)
    checked = trained.generate(6, width=40, seed=3, playable=True)
    ok_raw = np.mean([astar(lv.grid, lv.legend).playable for lv in raw])
    ok_checked = np.mean([astar(lv.grid, lv.legend).playable for lv in checked])
    assert ok_checked >= ok_raw
    assert all(lv.grid.shape == (14, 40) for lv in checked)


def test_bad_settings_are_refused(rule_train):
    with pytest.raises(DataError, match="chunk"):
        LevelGPT(**{**TINY, "chunk": 8}).fit(rule_train)
    with pytest.raises(DataError, match="expected a non-empty list"):
        LevelGPT(**TINY).fit([])


def test_fold_tpkl_scores_a_gpt_without_a_vae(rule_train, trained):
    from genforge.games import MarkovColumns
    from genforge.games.evaluate import fold_tpkl

    codes = [trained.vocab_.encode(lv.grid) for lv in rule_train]
    row = fold_tpkl(None, MarkovColumns().fit(rule_train), codes, codes, 2, 32, 0, {"gpt": trained})
    assert "vae_heldout_2x2" not in row and row["copier_heldout_2x2"] < 1e-9
    assert row["gpt_heldout_2x2"] == pytest.approx(row["gpt_train_2x2"]) and row["gpt_heldout_3x3"] > 0


def test_choose_gpt_decoding_follows_its_rule(rule_train, trained):
    from genforge.games.evaluate import choose_gpt_decoding

    codes = [trained.vocab_.encode(lv.grid) for lv in rule_train]
    setting, table = choose_gpt_decoding(
        trained, codes, temperatures=(0.5, 1.5), top_ps=(None,), n=3, width=32
    )
    assert len(table) == 2 and (trained.temperature, trained.top_p) == (setting["temperature"], None)
    rows = list(table.values())
    both = [r for r in rows if r["novel_windows"] >= 0.9 and r["playable"] >= 0.95]
    if both:
        assert setting["temperature"] == min(both, key=lambda r: r["tpkl_2x2"])["temperature"]


def test_cli_trains_a_gpt_and_levels_reads_it(tmp_path, rule_train):
    import json

    from genforge.cli import main
    from genforge.games import write_text
    from genforge.games.data import SMB_LEGEND

    data = tmp_path / "rules"
    for lv in rule_train[:2]:
        write_text(lv, data / f"{lv.name}.txt")
    (data / "smb.json").write_text('{"tiles": ' + json.dumps(SMB_LEGEND) + "}")
    model, out = tmp_path / "gpt", tmp_path / "out"
    args = ["games", "train", "--data", str(data), "--out", str(model), "--max-steps", "2", "--kind", "gpt"]
    assert main(args) == 0
    assert (
        main(["games", "levels", "--model", str(model), "--n", "1", "--width", "20", "--out", str(out)]) == 0
    )
    assert [p.read_text().count("\n") for p in out.glob("*.txt")] == [14]
    # count requests need the VAE: one-line error, nothing written
    bad = tmp_path / "bad"
    assert main(["games", "levels", "--model", str(model), "--enemies", "2", "--out", str(bad)]) == 2
    assert not bad.exists()
    assert main(["games", "train", "--data", str(data), "--out", str(model), "--kind", "gan"]) == 2
