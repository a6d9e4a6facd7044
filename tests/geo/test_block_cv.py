"""Block cross-validation of the hold-out intervals: every point is held out once, each fold is checked
against the half-width of the *other* folds' scores, the product's calibration shares the code."""

from __future__ import annotations

import numpy as np
import pytest

from genforge.errors import DataError
from genforge.geo import SpaceGAN
from genforge.geo.data import prepare
from genforge.geo.evaluate import Protocol, _holdout_cv, _holdout_quarter, evaluate
from genforge.geo.models import (
    block_cross_scores,
    block_folds,
    block_ids,
    conformal_half_width,
    leave_fold_out_half_widths,
)

TINY = {"k": 4, "hidden": (16,), "max_steps": 20, "check_every": 10, "n_draws": 2, "progress": False}


def _data(field):
    return prepare(field, "y", ("east", "north"), ["z"], crs="projected", k=4)


def test_leave_fold_out_half_width_never_uses_the_folds_own_scores():
    folds = np.repeat(np.arange(4), 50)
    scores = np.tile(np.linspace(0.01, 1.0, 50), 4)[:, None]
    scores[folds == 0] = 10.0  # fold 0 is far harder than the others
    half = leave_fold_out_half_widths(scores, folds, 0.9)
    assert half.shape == (4, 1)
    # fold 0 is judged by the other folds' scores only: its points all fall outside -> coverage 0
    assert half[0, 0] == conformal_half_width(scores[folds != 0], 0.9)[0] < 1.0
    assert np.mean(scores[folds == 0] <= half[0]) == 0.0
    # had fold 0's own scores been pooled in, its half-width would reach them
    assert conformal_half_width(scores, 0.9)[0] == 10.0
    for f in (1, 2, 3):  # the others' half-width includes fold 0's large scores
        assert half[f, 0] == 10.0


def test_block_cross_scores_hold_every_point_out_once(field):
    data = _data(field)
    cal = block_cross_scores(data, SpaceGAN(**TINY), blocks=4, folds=4, seed=0, n=10)
    assert cal.folds.shape == (len(field),) and sorted(np.unique(cal.folds)) == [0, 1, 2, 3]
    for f, model in enumerate(cal.models):  # model f never saw fold f
        train = {tuple(p) for p in model.hood_.xy}
        assert len(model.hood_.y) == int((cal.folds != f).sum())
        assert not any(tuple(p) in train for p in data.xy[cal.folds == f])
    assert set(cal.scores) == {"abs", "local", "oof"}
    assert np.all(cal.errors >= 0) and np.allclose(cal.scores["abs"], cal.errors)
    assert np.all(np.isfinite(cal.scores["local"])) and np.all(np.isfinite(cal.scores["oof"]))


def test_holdout_cv_checks_each_fold_with_the_other_folds_half_width(field):
    data = _data(field)
    p = Protocol(k=4, max_steps=20, check_every=10, n_draws=2, holdout_draws=20, baselines=["linear"])
    cal, others, points = _holdout_cv(data, p, seed=0, progress=False)
    assert points == len(field) and sum(cal["fold_points"]) == len(field)
    folds = np.asarray(cal["fold_points"])
    assert cal["coverage"] == pytest.approx(np.dot(cal["coverage_folds"], folds) / folds.sum())
    assert cal["coverage"] == others["ours_local"]
    assert {"ours_uncalibrated", "ours_abs", "ours_local", "ours_oof", "linear"} == set(others)
    assert len(cal["half_width"]["local"]) == 4  # one half-width per fold
    assert 0.0 <= cal["coverage_by_score"] <= 1.0
    # by score (no Monte Carlo) and by draws agree closely
    assert abs(cal["coverage_by_score"] - cal["coverage"]) < 0.1
    # the same cross-fitting again (deterministic): fold f's half-width is the quantile of the other
    # folds' scores, not of all scores (which a fold's own scores would have entered)
    again = block_cross_scores(
        data, SpaceGAN(k=4, max_steps=20, check_every=10, n_draws=2), 4, 4, 0, 20, 3000
    )
    lfo = leave_fold_out_half_widths(again.scores["local"], again.folds, 0.9)
    np.testing.assert_allclose(cal["half_width"]["local"], lfo)
    pooled = conformal_half_width(again.scores["local"], 0.9)
    assert not np.allclose(lfo, pooled[None])


def test_holdout_quarter_still_runs(field):
    data = _data(field)
    p = Protocol(k=4, max_steps=20, check_every=10, n_draws=2, holdout_draws=20, baselines=[])
    cal, others, points = _holdout_quarter(data, p, seed=0, progress=False)
    assert 0 < points < len(field) and set(cal["inner_folds"]) == {"abs", "local", "oof"}
    assert all(len(v) == 4 for v in cal["inner_folds"].values())


def test_calibrate_blocks_is_the_pooled_out_of_fold_quantile(field):
    model = SpaceGAN(**TINY).fit(field, target="y", coords=("east", "north"), covariates=["z"])
    cal = model.calibrate_blocks(level=0.9, score="local", n=10, seed=3)
    assert model.interval_["score"] == "local"
    assert model.interval_["half"] == pytest.approx(conformal_half_width(cal.scores["local"], 0.9).tolist())
    np.testing.assert_allclose(model.reference_errors_, cal.errors)
    with pytest.raises(DataError, match="calibrate_blocks"):
        model.calibrate_blocks(score="wide")


def test_bad_holdout_fails_before_training(field):
    with pytest.raises(DataError, match="holdout 'half'"):
        evaluate(_data(field), Protocol(holdout="half", seeds=[0]), progress=False)
    with pytest.raises(DataError, match="fewer than 20 folds"):
        evaluate(_data(field), Protocol(holdout_folds=20, seeds=[0]), progress=False)


def test_new_points_and_subsets_keep_the_training_projection(field, tmp_path):
    from genforge.geo.models import subset_points

    # the grid as lon/lat over 32-39 N: a subset's own mean latitude would move its x by tens of km
    lonlat = field.assign(lon=-120.0 + field["east"] / 140.0, lat=32.0 + field["north"] / 20.0)
    lonlat = lonlat.drop(columns=["east", "north"])
    data = prepare(lonlat, "y", ("lon", "lat"), ["z"], crs="lonlat", k=4)
    assert data.lat0 == pytest.approx(lonlat["lat"].mean())
    south = (lonlat["lat"] < 34.0).to_numpy()
    part = subset_points(data, south, 4)
    assert part.lat0 == data.lat0
    np.testing.assert_allclose(part.xy, data.xy[south])
    model = SpaceGAN(**TINY).fit(part)
    north = lonlat[~south].reset_index(drop=True)
    np.testing.assert_allclose(model._points(north, require_target=False).xy, data.xy[~south])
    model.save(tmp_path / "m")
    loaded = SpaceGAN.load(tmp_path / "m")
    assert loaded.lat0_ == data.lat0
    np.testing.assert_allclose(loaded._points(north, require_target=False).xy, data.xy[~south])
    # without the shared reference latitude the same points land elsewhere (what the fix prevents)
    alone = prepare(north, "y", ("lon", "lat"), ["z"], crs="lonlat", k=4)
    assert np.abs(alone.xy[:, 0] - data.xy[~south][:, 0]).max() > 0.5


# ------------------------------------------------------------------ block layouts (grid / kmeans)
def _skewed(seed: int = 0) -> np.ndarray:
    """A clustered layer: 60% of 1,000 points in a small corner of the map (as southern California)."""
    rng = np.random.default_rng(seed)
    dense = rng.uniform(0.0, 0.2, size=(600, 2))
    sparse = rng.uniform(0.0, 1.0, size=(400, 2))
    return np.concatenate([dense, sparse])


def _old_grid_folds(xy: np.ndarray, blocks: int, folds: int, seed: int) -> np.ndarray:
    """The fourth session's block_folds, copied verbatim (the grid layout must give the same folds)."""
    lo, hi = xy.min(0), xy.max(0)
    cell = np.minimum(((xy - lo) / np.where(hi > lo, hi - lo, 1.0) * blocks).astype(int), blocks - 1)
    ids = cell[:, 0] * blocks + cell[:, 1]
    occupied = np.random.default_rng(seed).permutation(np.unique(ids))
    fold_of = {c: i % folds for i, c in enumerate(occupied)}
    return np.array([fold_of[c] for c in ids])


def test_grid_layout_gives_the_old_folds(field):
    for xy in (field[["east", "north"]].to_numpy(float), _skewed()):
        for seed in range(4):
            np.testing.assert_array_equal(
                block_folds(xy, 4, 4, seed, "grid"), _old_grid_folds(xy, 4, 4, seed)
            )


def test_kmeans_layout_whole_blocks_balanced_folds_deterministic():
    xy = _skewed()
    ids = block_ids(xy, 4, "kmeans", seed=1)
    assert len(np.unique(ids)) == 16
    for seed in range(3):
        folds = block_folds(xy, 4, 4, seed, "kmeans")
        blocks = block_ids(xy, 4, "kmeans", seed)
        for b in np.unique(blocks):  # every cluster lies in exactly one fold
            assert len(np.unique(folds[blocks == b])) == 1
        kmeans_counts = np.bincount(folds, minlength=4)
        grid_counts = np.bincount(block_folds(xy, 4, 4, seed, "grid"), minlength=4)
        assert kmeans_counts.min() > 0 and kmeans_counts.max() / kmeans_counts.min() < 1.3
        assert grid_counts.max() / max(grid_counts.min(), 1) > 3  # the grid's fold with the dense cell
        np.testing.assert_array_equal(folds, block_folds(xy, 4, 4, seed, "kmeans"))  # same seed, same folds
    assert not np.array_equal(block_folds(xy, 4, 4, 0, "kmeans"), block_folds(xy, 4, 4, 1, "kmeans"))
    with pytest.raises(DataError, match="block layout 'hex'"):
        block_folds(xy, 4, 4, 0, "hex")


def test_layout_reaches_calibration_and_protocol(field):
    data = _data(field)
    assert Protocol().block_layout == "kmeans"
    with pytest.raises(DataError, match="--block-layout 'hex'"):
        evaluate(data, Protocol(block_layout="hex", seeds=[0]), progress=False)
    model = SpaceGAN(**{**TINY, "max_steps": 10}).fit(data)
    for layout in ("grid", "kmeans"):
        cal = model.calibrate_blocks(n=5, seed=2, layout=layout)
        np.testing.assert_array_equal(cal.folds, block_folds(data.xy, 4, 4, 2, layout))
