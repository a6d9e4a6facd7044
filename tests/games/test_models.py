"""The level VAE learns (TPKL falls), stitches playable levels, honours counts, blends monotonically."""

from __future__ import annotations

import numpy as np
import pytest

from genforge.errors import DataError
from genforge.games import LevelVAE, MarkovColumns, astar, tpkl


@pytest.fixture(scope="module")
def fitted(rule_train):
    return LevelVAE(max_steps=200, hidden=(16, 32), latent_dim=8, batch_size=32, candidates=8).fit(rule_train)


def test_learning_lowers_tile_pattern_kl(rule_train, fitted):
    # decoded tile by tile (the default): column decoding would hide an untrained decoder behind the
    # training columns and their bigrams
    untrained = LevelVAE(max_steps=1, hidden=(16, 32), latent_dim=8, batch_size=32).fit(rule_train)
    real = [fitted.vocab_.encode(lv.grid) for lv in rule_train]
    before = tpkl(real, list(untrained.sample_windows(64, seed=1)), 2)
    after = tpkl(real, list(fitted.sample_windows(64, seed=1)), 2)
    assert after < 0.5 * before, (before, after)


def test_column_decoding_uses_training_columns_and_limits_chasms(rule_train, fitted):
    from genforge.games.models import gap_columns

    train_cols = {tuple(c) for c in fitted.columns_}
    fitted.decoding = "columns"
    try:
        windows = fitted.sample_windows(16, seed=4)
        level = fitted.generate(1, width=80, seed=3, playable=False)[0]
        # Viterbi (temperature 0) is deterministic; the chain starts from the given left column
        z = np.random.default_rng(1).standard_normal((4, fitted.latent_dim)).astype(np.float32)
        logits = fitted._logits(z, fitted.train_counts_[:4])
        fitted.temperature = 0.0
        a = fitted._tiles(logits, z, prev=fitted.columns_[0], start=2)
        b = fitted._tiles(logits, z, prev=fitted.columns_[0], start=2)
        # a level that already ends in the longest chasm allowed may not widen it
        fitted.temperature = 5.0
        c = fitted._tiles(logits, z, prev=fitted.columns_[0], start=2, run=fitted.max_gap_)
    finally:
        fitted.decoding, fitted.temperature = "tiles", 1.0
    assert all(tuple(col) in train_cols for w in windows for col in w.T)
    codes = fitted.vocab_.encode(level.grid)
    assert all(tuple(col) in train_cols for col in codes.T)
    chasm = gap_columns(codes.T, fitted.vocab_)
    runs = np.diff(np.flatnonzero(np.diff(np.r_[0, chasm.astype(int), 0])))[::2] if chasm.any() else [0]
    assert max(runs) <= fitted.max_gap_
    assert np.array_equal(a, b) and all(tuple(col) in train_cols for w in a for col in w[:, 2:].T)
    assert not gap_columns(c[:, :, 2], fitted.vocab_).any()
    with pytest.raises(DataError, match="decoding='pixels': expected one of columns, tiles"):
        LevelVAE(decoding="pixels", max_steps=1).fit(rule_train)


def test_generated_levels_are_stitched_and_playable(fitted):
    # a 200-step model's softmax is still wide, so sampled tiles are noise: test the stitching with argmax
    fitted.temperature = 0.0
    try:
        levels = fitted.generate(3, width=64, seed=2)
    finally:
        fitted.temperature = 1.0
    assert all(lv.shape == (14, 64) for lv in levels)
    assert sum(astar(lv.grid, lv.legend).playable for lv in levels) >= 2


def test_count_request_moves_the_counts(fitted):
    from genforge.games.metrics import count_matrix

    none = count_matrix(fitted.sample_windows(40, counts={"enemies": 0}, seed=3), fitted.vocab_)[:, 0]
    many = count_matrix(fitted.sample_windows(40, counts={"enemies": 3}, seed=3), fitted.vocab_)[:, 0]
    assert many.mean() > none.mean()
    with pytest.raises(DataError, match="unknown element"):
        fitted.sample_windows(2, counts={"bosses": 1})


def test_interpolation_ends_near_its_endpoints(fitted, rule_train):
    windows = fitted.windows_of(rule_train[:1])
    path = fitted.interpolate(windows[0], windows[30], steps=5)
    assert path.shape == (5, 14, 16)
    rec = fitted.decode(fitted.encode(windows[[0, 30]]), None)
    assert (path[0] == rec[0]).mean() > 0.8


def test_blending_moves_tile_statistics_monotonically(rule_train):
    from genforge.games import SMB_LEGEND, parse_level
    from genforge.games.evaluate import blend_score

    # a second "game": the same levels with the ground replaced by question blocks
    other = [
        parse_level(
            "\n".join("".join(r) for r in np.where(lv.grid == "X", "?", lv.grid)),
            legend=SMB_LEGEND,
            game="other",
        )
        for lv in rule_train
    ]
    vae = LevelVAE(
        max_steps=200, hidden=(16, 32), latent_dim=8, batch_size=32, condition_counts=False, decoding="tiles"
    ).fit(rule_train + other)
    score = blend_score(vae, "other", n=64)
    assert score["blend_score"] > 0.8, score


def test_markov_baseline_generates_levels(rule_train):
    levels = MarkovColumns(order=2).fit(rule_train).generate(2, width=50, seed=0)
    assert all(lv.shape == (14, 50) for lv in levels)


def test_save_load_keeps_generation(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    loaded = LevelVAE.load(tmp_path / "m")
    a = fitted.generate(1, width=40, seed=5)[0].grid
    b = loaded.generate(1, width=40, seed=5)[0].grid
    assert np.array_equal(a, b)
    assert np.array_equal(loaded.columns_, fitted.columns_) and loaded.max_gap_ == fitted.max_gap_
    # a model saved before column decoding existed (no column table) still loads, saves and generates
    loaded.columns_ = loaded.column_bigrams_ = None
    loaded.save(tmp_path / "old")
    old = LevelVAE.load(tmp_path / "old")
    assert old.columns_ is None and np.array_equal(old.generate(1, width=40, seed=5)[0].grid, a)


def test_temperature_samples_tiles_reproducibly(fitted):
    z = np.random.default_rng(0).standard_normal((8, fitted.latent_dim)).astype(np.float32)
    counts = fitted.train_counts_[:8]
    first, again = fitted.decode(z, counts), fitted.decode(z, counts)  # temperature 1 (the default)
    fitted.temperature = 0.0
    try:
        argmax = fitted.decode(z, counts)
    finally:
        fitted.temperature = 1.0
    assert np.array_equal(first, again) and not np.array_equal(first, argmax)


def test_min_prob_truncates_unlikely_tiles(fitted):
    z = np.random.default_rng(2).standard_normal((8, fitted.latent_dim)).astype(np.float32)
    counts = fitted.train_counts_[:8]
    logits = fitted._logits(z, counts)
    probs = np.moveaxis(torch_softmax(logits), 1, -1)  # [N, H, W, tiles]
    fitted.min_prob, limits, fitted.gap_limits_ = 0.5, fitted.gap_limits_, None  # no chasm repairs here
    try:
        half = fitted.decode(z, counts)
        fitted.min_prob = 1.0  # only the likeliest tile survives: the argmax
        top = fitted.decode(z, counts)
    finally:
        fitted.min_prob, fitted.gap_limits_ = 0.0, limits
    drawn = np.take_along_axis(probs, half[..., None], -1)[..., 0]
    assert (drawn >= 0.5 * probs.max(-1) - 1e-6).all()
    assert np.array_equal(top, probs.argmax(-1))


def torch_softmax(logits) -> np.ndarray:
    import torch

    return torch.softmax(logits.float().cpu(), 1).numpy()


def test_levels_begin_as_training_levels_begin(fitted, rule_train):
    starts = {w[:, : fitted.overlap].tobytes() for w in fitted.start_windows_}
    assert len(fitted.start_windows_) == len(rule_train)
    for seed in range(3):
        codes = fitted.vocab_.encode(fitted.generate(1, width=40, seed=seed, playable=False)[0].grid)
        assert codes[:, : fitted.overlap].tobytes() in starts
    fitted.start_prompt = False
    try:
        free = fitted.generate(1, width=40, seed=0, playable=False)[0]
    finally:
        fitted.start_prompt = True
    assert free.shape == (14, 40)


def test_aggregate_posterior_latents_keep_their_windows_counts(fitted):
    rng = np.random.default_rng(0)
    fitted.latent_noise = 0.0
    try:
        z, want = fitted._draw(64, {"enemies": 2}, None, rng)
        windows = fitted.sample_windows(4, seed=1)
        level = fitted.generate(1, width=40, seed=1, playable=False)[0]
    finally:
        fitted.latent_noise = None
    # with no noise every latent is a stored training latent, paired with that window's counts
    hit = [np.flatnonzero((fitted.latents_ == row).all(1)) for row in z]
    assert all(len(h) for h in hit)
    idx = np.array([h[0] for h in hit])
    assert (want[:, 0] == 2).all() and np.array_equal(want[:, 1:], fitted.train_counts_[idx, 1:])
    assert windows.shape == (4, 14, 16) and level.shape == (14, 40)


def test_tile_decoding_never_widens_a_chasm_beyond_training(fitted, rule_train):
    from genforge.games.models import chasm_limits

    limits = chasm_limits(fitted.windows_of(rule_train), fitted.vocab_)
    assert np.array_equal(limits, fitted.gap_limits_) and limits[-1] == fitted.max_gap_
    assert (np.diff(limits) <= 0).all()  # more rows looked at: a chasm can only be narrower
    fitted.temperature = 5.0  # near-uniform tiles: chasms everywhere unless the limit holds
    try:
        windows = fitted.sample_windows(32, seed=2)
    finally:
        fitted.temperature = 1.0
    assert np.array_equal(chasm_limits(windows, fitted.vocab_) <= limits, np.ones_like(limits, bool))


def test_choose_decoding_takes_the_most_playable_novel_setting(fitted, rule_train):
    from genforge.games.evaluate import choose_decoding

    real = [fitted.vocab_.encode(lv.grid) for lv in rule_train]
    try:
        setting, table = choose_decoding(
            fitted, real, temperatures=(0.5, 2.0), min_probs=(0.0,), latent_noises=(None, 0.5), n=3, width=32
        )
        chosen = (fitted.temperature, fitted.min_prob, fitted.latent_noise)
    finally:
        fitted.temperature, fitted.min_prob, fitted.latent_noise = 1.0, 0.0, None
    keys = ("temperature", "min_prob", "latent_noise")
    assert len(table) == 4 and chosen == tuple(setting[k] for k in keys)
    rows = list(table.values())
    ok = [r for r in rows if r["novel_windows"] >= 0.9]
    row = next(r for r in rows if (r["temperature"], r["min_prob"], r["latent_noise"]) == chosen)
    if ok:
        assert row["novel_windows"] >= 0.9 and row["playable"] == max(r["playable"] for r in ok)
    else:
        assert row["novel_windows"] == max(r["novel_windows"] for r in rows)
