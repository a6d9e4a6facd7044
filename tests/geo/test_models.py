"""SpaceGAN: selection picks the argmin, learning happens, the spatial pattern survives, save/load."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from genforge.errors import DataError
from genforge.geo import SpaceGAN, augment, global_moran_torch
from genforge.geo.evaluate import block_folds, block_holdout, coverage
from genforge.geo.models import conformal_half_width


def test_selection_picks_the_argmin(fitted):
    history = pd.DataFrame(fitted.selection_)
    assert list(history["step"]) == list(range(50, 401, 50))
    for name in ("mie", "rmse"):
        best = history.loc[history[name].idxmin()]
        assert fitted.best_step_[name] == best["step"]
        assert fitted.best_scores_[name][name] == pytest.approx(best[name])
    # the model holds the best-MIE weights: re-scoring it gives that checkpoint's MIE
    assert fitted._score(fitted.model_)["mie"] == pytest.approx(fitted.best_scores_["mie"]["mie"], rel=1e-6)


def test_learning_happens_mie_falls(fitted):
    history = pd.DataFrame(fitted.selection_)
    first, best = history["mie"].iloc[0], history["mie"].min()
    assert best < 0.5 * first, history
    # and the mean of draws beats the trivial generator (the global mean: RMSE = std of the target)
    assert fitted.best_scores_["mie"]["rmse"] < 0.5 * fitted.hood_.y.std()


def test_spatial_pattern_survives_augmentation(fitted, field):
    draws = fitted.sample_array(10, seed=3)[:, :, 0]
    real = global_moran_torch(torch.as_tensor(field["y"].to_numpy()), fitted.W_).item()
    each = global_moran_torch(torch.as_tensor(draws), fitted.W_).numpy()
    assert real > 0.5
    assert np.abs(each - real).max() < 0.1, (real, each)
    shuffled = global_moran_torch(torch.as_tensor(np.random.default_rng(0).permutation(draws[0])), fitted.W_)
    assert abs(shuffled.item()) < 0.2  # the statistic does see a destroyed pattern


def test_sample_long_frame_and_new_points(fitted, field):
    out = fitted.sample(n_per_point=3, seed=1)
    assert len(out) == 3 * len(field) and list(out["draw"].unique()) == [0, 1, 2]
    assert list(out.columns) == [*field.columns, "draw"]
    pd.testing.assert_series_equal(out["z"].iloc[: len(field)], field["z"], check_names=False)
    again = fitted.sample(n_per_point=3, seed=1)
    pd.testing.assert_frame_equal(out, again)
    new = field.iloc[:5].assign(east=field["east"].iloc[:5] + 5.0).drop(columns="y")
    generated = fitted.sample(n_per_point=4, frame=new, seed=0)
    assert len(generated) == 20 and generated["y"].notna().all()


def test_save_load_round_trip(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    loaded = SpaceGAN.load(tmp_path / "m")
    pd.testing.assert_frame_equal(fitted.sample(2, seed=5), loaded.sample(2, seed=5))
    assert loaded.best_step_ == fitted.best_step_


def test_calibrate_interval_hits_its_level(fitted, field):
    held = field.iloc[::7].assign(east=lambda f: f["east"] + 3.0)
    rng = np.random.default_rng(0)
    try:
        with pytest.raises(DataError, match="set_reference_errors"):
            fitted.set_interval(1.0, 0.9, "oof")
        with pytest.raises(DataError, match="finite errors"):
            fitted.set_reference_errors(-np.ones(len(field)))
        fitted.set_reference_errors(np.abs(rng.standard_normal(len(field))) * 0.3)
        for score in ("abs", "local", "oof"):
            half = fitted.calibrate_interval(held, level=0.9, n=60, seed=0, score=score)
            draws = fitted.sample_array(100, frame=held, seed=1)
            assert half.shape == (1,) and half[0] > 0
            assert abs(coverage(draws, held[["y"]].to_numpy()) - 0.9) < 0.1, score
            # the draws' 90% interval is exactly mean +- half x scale, even where the draws are skewed
            pts = fitted._points(held, require_target=False)
            width = half[0] * fitted.interval_scale(pts.xy, score)[:, 0]
            lo, hi = np.quantile(draws[:, :, 0], [0.05, 0.95], axis=0)
            centre = fitted.sample_array(100, frame=held, seed=1)[:, :, 0].mean(0)
            np.testing.assert_allclose(hi - lo, 2 * width, rtol=1e-6)
            assert np.all(lo < centre) and np.all(hi > centre)
            # a single draw is stretched too (its width comes from a reference batch)
            one = fitted.sample_array(1, frame=held, seed=1)
            assert np.allclose(one[0], draws[0])
        # the training points keep the fitted spread
        assert np.allclose(fitted.sample_array(3, seed=2), fitted.set_interval(None).sample_array(3, seed=2))
    finally:
        fitted.set_interval(None)


def test_conformal_half_width_is_the_finite_sample_quantile():
    scores = np.arange(1, 20, dtype=float)[:, None]  # 19 scores: rank ceil(20 * 0.9) = 18
    assert conformal_half_width(scores, 0.9)[0] == 18.0
    assert conformal_half_width(scores[:5], 0.9)[0] == 5.0  # too few points: the largest
    with pytest.raises(DataError, match="no calibration"):
        conformal_half_width(np.empty((0, 1)))


def test_interval_survives_save_load(fitted, field, tmp_path):
    held = field.iloc[::9].drop(columns="y")
    try:
        fitted.set_reference_errors(np.linspace(0.1, 1.0, len(field)))
        fitted.set_interval(0.5, 0.9, "oof")
        fitted.save(tmp_path / "m")
        loaded = SpaceGAN.load(tmp_path / "m")
        assert loaded.interval_ == fitted.interval_
        np.testing.assert_allclose(loaded.reference_errors_, fitted.reference_errors_)
        again = fitted.sample_array(4, frame=held, seed=0)
        assert np.allclose(loaded.sample_array(4, frame=held, seed=0), again)
    finally:
        fitted.set_interval(None)


def test_augment_fits_and_samples(field):
    out = augment(
        field,
        2,
        target="y",
        coords=("east", "north"),
        covariates=["z"],
        max_steps=20,
        check_every=10,
        n_draws=2,
        progress=False,
        device="cpu",
    )
    assert len(out) == 2 * len(field) and "draw" in out


def test_block_holdout_takes_whole_blocks(field):
    xy = field[["east", "north"]].to_numpy(float)
    held = block_holdout(xy, 4, seed=0)
    assert 0.1 < held.mean() < 0.4
    cell = np.minimum((xy / 140.0 * 4).astype(int), 3)  # the 4 x 4 cells over the 0..140 grid
    ids = cell[:, 0] * 4 + cell[:, 1]
    assert len(np.unique(ids[held])) == 4  # a quarter of the 16 cells ...
    assert held[np.isin(ids, ids[held])].all()  # ... each held out whole


def test_block_folds_partition_whole_cells(field):
    xy = field[["east", "north"]].to_numpy(float)
    folds = block_folds(xy, 4, 4, seed=0, layout="grid")
    cell = np.minimum((xy / 140.0 * 4).astype(int), 3)
    ids = cell[:, 0] * 4 + cell[:, 1]
    assert sorted(np.unique(folds)) == [0, 1, 2, 3]
    for c in np.unique(ids):  # every cell lies in exactly one fold, each fold holds 4 of the 16 cells
        assert len(np.unique(folds[ids == c])) == 1
    assert [len(np.unique(ids[folds == f])) for f in range(4)] == [4, 4, 4, 4]


def test_bad_parameters(field):
    with pytest.raises(DataError, match="select"):
        SpaceGAN(select="loss", progress=False).fit(field, target="y", coords=("east", "north"))
    with pytest.raises(DataError, match="k=500"):
        SpaceGAN(k=500, progress=False).fit(field, target="y", coords=("east", "north"))


def test_fit_resumes_from_its_folder(field, tmp_path):
    kwargs = {"k": 4, "hidden": (16,), "check_every": 10, "n_draws": 3, "progress": False, "device": "cpu"}
    args = {"target": "y", "coords": ("east", "north"), "covariates": ["z"], "out_dir": tmp_path / "run"}
    first = SpaceGAN(max_steps=20, **kwargs).fit(field, **args)
    resumed = SpaceGAN(max_steps=40, **kwargs).fit(field, **args)
    straight = SpaceGAN(max_steps=40, **kwargs).fit(field, **{**args, "out_dir": tmp_path / "straight"})
    assert [h["step"] for h in resumed.selection_] == [10, 20, 30, 40]
    assert resumed.selection_[:2] == first.selection_
    for a, b in zip(resumed.selection_, straight.selection_, strict=True):  # same as one uninterrupted run
        assert a["mie"] == pytest.approx(b["mie"], rel=1e-5)
    with pytest.raises(DataError, match="beyond max_steps"):
        SpaceGAN(max_steps=10, **kwargs).fit(field, **args)


def test_original_baseline_is_the_papers_sgd_code_and_learns(field):
    from genforge.geo.data import prepare
    from genforge.geo.evaluate import OriginalSpaceGAN, Protocol
    from genforge.geo.models import Neighbourhood
    from genforge.geo.spatial import sparse_weights, weights

    data = prepare(field, "y", ("east", "north"), ["z"], crs="projected", k=8)
    hood = Neighbourhood(data.xy, data.x, data.y, 8, True, True)
    p = Protocol(k=8, max_steps=2500, check_every=500, n_draws=5)  # SGD at 0.01 is slow to start
    base = OriginalSpaceGAN().fit(hood, sparse_weights(weights(data.xy, "knn:8")), p, seed=0)
    steps = [h["step"] for h in base.history]
    assert steps == list(range(0, 2501, 500))  # checks from iteration 0, as the paper's code
    assert base.best_scores_["rmse"]["rmse"] < 0.7 * base.history[0]["rmse"]


def test_matched_noise_gives_draws_the_residual_spread(fitted):
    draws = fitted.sample_array(200, seed=4)[:, :, 0]
    residual = ((fitted.hood_.y[:, 0] - draws.mean(0)) ** 2).mean()
    assert fitted.noise == "match" and fitted.spread_ != 1.0
    assert draws.var(0).mean() == pytest.approx(residual, rel=0.25)  # a Monte Carlo estimate from 50 draws
    with pytest.raises(DataError, match="noise"):
        SpaceGAN(noise="loud", progress=False).fit(fitted.frame_, target="y", coords=("east", "north"))
