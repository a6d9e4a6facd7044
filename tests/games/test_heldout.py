"""Held-out TPKL: level-wise folds are disjoint and cover the levels; TPKL sees identity and shuffling."""

from __future__ import annotations

import numpy as np
import pytest

from genforge.errors import DataError
from genforge.games import tpkl
from genforge.games.evaluate import fold_tpkl, heldout_tpkl, level_folds


@pytest.mark.parametrize("n_levels,k", [(15, 5), (7, 3), (4, 4), (15, 2)])
def test_level_folds_are_disjoint_and_cover_the_levels(n_levels, k):
    folds = level_folds(n_levels, k, seed=3)
    assert len(folds) == k
    flat = [i for f in folds for i in f]
    assert sorted(flat) == list(range(n_levels))  # every level held out exactly once
    assert max(map(len, folds)) - min(map(len, folds)) <= 1
    assert folds == level_folds(n_levels, k, seed=3) and all(f == sorted(f) for f in folds)


def test_level_folds_reject_impossible_k():
    for k in (0, 1, 16):
        with pytest.raises(DataError, match="heldout folds"):
            level_folds(15, k)


def test_tpkl_is_zero_for_a_level_against_itself_and_grows_when_it_is_shuffled(rule_train):
    from genforge.games.data import Vocabulary

    vocab = Vocabulary.build([rule_train[0].legend])
    rng = np.random.default_rng(0)
    for level in rule_train[:3]:
        g = vocab.encode(level.grid)
        shuffled = g[:, rng.permutation(g.shape[1])]
        for k in (2, 3):
            same, moved = tpkl([g], [g], k), tpkl([g], [shuffled], k)
            assert abs(same) < 1e-9 and moved > 0.05, (k, same, moved)


def test_tpkl_of_real_smb_levels_against_themselves_and_shuffled(smb_levels):
    from genforge.games.data import Vocabulary

    vocab = Vocabulary.build([smb_levels[0].legend])
    codes = [vocab.encode(lv.grid) for lv in smb_levels]
    rng = np.random.default_rng(1)
    shuffled = [g[:, rng.permutation(g.shape[1])] for g in codes]
    assert tpkl(codes, codes, 2) < 1e-9
    assert tpkl(codes, shuffled, 2) > 0.05


def test_heldout_tpkl_trains_per_fold_and_scores_against_held_out_levels(rule_train):
    levels = rule_train[:4]
    seen = []
    out = heldout_tpkl(levels, k=2, n=2, width=32, vae_steps=3, seed=0, echo=seen.append)
    assert out["folds"] == 2 and len(out["per_fold"]) == 2 and len(seen) == 2
    held = [set(row["heldout"]) for row in out["per_fold"]]
    assert held[0].isdisjoint(held[1]) and held[0] | held[1] == {lv.name for lv in levels}
    for key in ("vae_heldout_2x2", "markov_heldout_3x3", "copier_heldout_2x2", "vae_train_3x3"):
        assert out[key] == pytest.approx(np.mean([row[key] for row in out["per_fold"]]))


def test_fold_tpkl_scores_a_perfect_copy_zero(rule_train):
    from genforge.games import LevelVAE, MarkovColumns

    vae = LevelVAE(max_steps=2, hidden=(8, 16), latent_dim=4, batch_size=16).fit(rule_train[:2])
    codes = [vae.vocab_.encode(lv.grid) for lv in rule_train[:2]]
    row = fold_tpkl(vae, MarkovColumns().fit(rule_train[:2]), codes, codes, n=2, width=32, seed=0)
    assert row["copier_heldout_2x2"] < 1e-9 and row["copier_heldout_3x3"] < 1e-9
    # held-out levels equal to the training ones: the two views of each model agree
    assert row["vae_heldout_2x2"] == pytest.approx(row["vae_train_2x2"])
    assert row["markov_heldout_3x3"] == pytest.approx(row["markov_train_3x3"])
