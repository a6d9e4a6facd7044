"""ScenarioGAN (market scenarios) and the evaluate-gen protocol helpers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from sklearn.exceptions import NotFittedError

from genforge.errors import DataError, GenforgeError
from genforge.finance.scenarios import evaluate as eg
from genforge.finance.scenarios.data import (
    fit_lambertw_delta,
    lambertw_forward,
    lambertw_inverse,
    load_stock_windows,
    make_windows,
    split_windows,
)
from genforge.finance.scenarios.models import ScenarioGAN, increment_scale
from genforge.models.gan import SequenceDiscriminator


def test_lambertw_round_trip_and_gaussianizes_heavy_tails():
    rng = np.random.default_rng(0)
    u = stats.t.rvs(df=3, size=20_000, random_state=1)
    u = (u - u.mean()) / u.std()
    delta = fit_lambertw_delta(u)
    assert delta > 0.05
    z = lambertw_inverse(u, delta)
    assert abs(stats.kurtosis(z, fisher=False) - 3.0) < 0.05
    np.testing.assert_allclose(lambertw_forward(z, delta), u, rtol=1e-8, atol=1e-10)
    assert fit_lambertw_delta(rng.standard_normal(20_000)) < 0.02


def test_make_windows_by_hand():
    w = make_windows(np.arange(5.0), 3)
    np.testing.assert_array_equal(w[:, :, 0], [[0, 1, 2], [1, 2, 3], [2, 3, 4]])
    assert make_windows(np.zeros((10, 2)), 4, stride=3).shape == (3, 4, 2)
    with pytest.raises(DataError, match="shorter than the window"):
        make_windows(np.zeros(3), 5)


def _small(**kw) -> ScenarioGAN:
    params = dict(
        window=16,
        hidden=16,
        latent_dim=4,
        steps=60,
        batch_size=32,
        lr=1e-3,
        n_critic=2,
        preprocessing="none",
        progress=False,
        seed=0,
    )
    params.update(kw)
    return ScenarioGAN(**params)


def test_gan_learns_the_level_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    series = 3.0 + 0.3 * rng.standard_normal(400)
    before = _small(steps=1).fit(series).sample(256, seed=0)
    model = _small().fit(series)
    after = model.sample(256, seed=0)
    assert after.shape == (256, 16, 1)
    # the mean of the samples moves toward the data's level of 3
    assert abs(after.mean() - 3.0) < 0.5 * abs(before.mean() - 3.0)
    assert len(model.history_) > 0
    # any length from the TCN; save/load gives the same samples for the same seed
    assert model.sample(3, length=50, seed=1).shape == (3, 50, 1)
    model.save(tmp_path / "m")
    again = ScenarioGAN.load(tmp_path / "m")
    np.testing.assert_allclose(again.sample(8, seed=5), model.sample(8, seed=5), rtol=1e-5, atol=1e-6)
    frame = again.simulate(2, 5, seed=0)
    assert list(frame.columns) == ["path", "t", "x0"] and len(frame) == 10


def test_samples_come_from_the_weight_average(tmp_path):
    """The sampled weights are the EMA of the weights training went through: after one step with
    decay 0.5, exactly the mean of the initial weights and the live weights after that step (the live
    run, ema_decay=None, follows the same path with the same seed); save/load keeps them."""
    from genforge.finance.scenarios.models import ScenarioNet

    series = np.random.default_rng(2).normal(size=200)
    last = _small(steps=1, ema_decay=None).fit(series)
    ema = _small(steps=1, ema_decay=0.5).fit(series)
    torch.manual_seed(last.seed)
    initial = ScenarioNet(last.model_.config).generator.state_dict()
    w_last = last.model_.generator.state_dict()
    w_ema = ema.model_.generator.state_dict()
    moved = [k for k in w_last if w_last[k].is_floating_point() and not torch.equal(w_last[k], initial[k])]
    assert moved  # the step changed the generator
    for key in moved:
        torch.testing.assert_close(w_ema[key], 0.5 * initial[key] + 0.5 * w_last[key], rtol=1e-5, atol=1e-6)
    ema.save(tmp_path / "m")
    again = ScenarioGAN.load(tmp_path / "m")
    assert again.ema_decay == 0.5
    np.testing.assert_allclose(again.sample(4, seed=3), ema.sample(4, seed=3), rtol=1e-5, atol=1e-6)
    with pytest.raises(GenforgeError, match="ema_decay"):
        _small(ema_decay=1.0).fit(series)


def test_whitening_round_trips_and_keeps_identical_channels_identical(tmp_path):
    """Two identical columns (like Close and Adj_Close of the TimeGAN stocks) and a noisy third one."""
    rng = np.random.default_rng(4)
    level = np.cumsum(rng.normal(size=300))
    series = np.stack([level, level, 0.1 * level + rng.normal(size=300)], 1)
    model = _small(steps=3, preprocessing="whiten").fit(series)
    t = model.transform_
    z = t.forward(series)
    np.testing.assert_allclose(t.inverse(z), series, atol=1e-9)
    std = z.std(0)
    assert std[0] < 1e-6 and np.allclose(std[1:], 1.0, atol=1e-6)  # a zero-variance component, 2 unit ones
    # an untrained generator is far from the data, yet its two copies of the level agree closely
    s = model.sample(64, seed=0)
    assert np.abs(s[..., 0] - s[..., 1]).max() < 1e-3 * series[:, 0].std()
    baseline = _small(steps=3, preprocessing="standard").fit(series).sample(64, seed=0)
    assert np.abs(baseline[..., 0] - baseline[..., 1]).max() > 0.1 * series[:, 0].std()
    model.save(tmp_path / "w")
    np.testing.assert_allclose(
        ScenarioGAN.load(tmp_path / "w").sample(4, seed=1), model.sample(4, seed=1), atol=1e-6
    )


def test_clip_keeps_samples_in_training_range():
    x = np.random.default_rng(1).uniform(0, 1, size=(64, 8, 2))
    model = _small(window=8, steps=2, clip=True, preprocessing="standard").fit(x)
    s = model.sample(32)
    assert s.min() >= x.min() - 1e-12 and s.max() <= x.max() + 1e-12


def test_bad_inputs_error_clearly():
    with pytest.raises(DataError, match="NaN"):
        _small().fit(np.array([1.0, np.nan] * 50))
    with pytest.raises(DataError, match="not numeric"):
        _small().fit(pd.DataFrame({"a": ["x"] * 40}))
    with pytest.raises(DataError, match="expected more than window"):
        _small().fit(np.zeros(10))
    with pytest.raises(GenforgeError, match="preprocessing"):
        _small(preprocessing="boxcox").fit(np.zeros(100))
    with pytest.raises(NotFittedError, match="not fitted"):
        _small().sample(3)


def test_load_rejects_a_folder_of_another_model(tmp_path):
    from genforge.checkpoints import save
    from genforge.models.gan import GAN, GANConfig

    save(GAN(GANConfig(kind="sequence", hidden=(8,), length=8)), tmp_path / "other", extra={"format": "x"})
    with pytest.raises(GenforgeError, match="expected a ScenarioGAN checkpoint"):
        ScenarioGAN.load(tmp_path / "other")


# --------------------------------------------------------------------------------------------- evaluate-gen


def test_stylized_facts_of_the_series_itself_are_zero_and_noise_is_not():
    r = eg.garch_paths(np.random.default_rng(0).standard_normal(3000) * 0.01, 1, 3000, seed=2)[0]
    same = eg.stylized_facts(r, r[None, :], lags=50)
    assert set(same) == {"emd_lag1", "emd_lag5", "emd_lag20", "emd_lag100", "acf", "acf_abs", "leverage"}
    assert all(v == pytest.approx(0.0, abs=1e-12) for v in same.values())
    shuffled = np.random.default_rng(1).permutation(r)
    other = eg.stylized_facts(r, 2 * shuffled[None, :], lags=50)
    assert other["emd_lag1"] > 0 and other["acf_abs"] >= 0


def test_rolling_sum_and_acf_by_hand():
    np.testing.assert_allclose(eg.rolling_sum(np.array([1.0, 2, 3, 4]), 2), [3, 5, 7])
    # Corr(r_{t+tau}, r_t) of the lagged pairs: exactly -1 and +1 for an alternating series
    # (the whole-series-variance estimator would give -0.99 and 0.98 here)
    x = np.array([1.0, -1.0] * 50)
    np.testing.assert_allclose(eg.acf(x, 2), [-1.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(eg.acf(np.arange(30.0), 3), [1.0, 1.0, 1.0], atol=1e-12)
    # leverage Corr(r_t, r_{t+tau}^2): the series 1, 2, 1, 2, ... (pairs (1, 4), (2, 1)) gives -1, +1
    np.testing.assert_allclose(eg._leverage(np.array([1.0, 2.0] * 20), 2), [-1.0, 1.0], atol=1e-12)


def test_acf_scores_known_value():
    """Quant GAN's ACF score || C(f(r)) - mean_m C(f(r_m)) ||_2 over lags 1..S, worked by hand (S = 2).

    History 1, -2, 1, -2, ..., 1 (121 steps): C(r) = C(|r|) = (-1, 1). Paths: a ramp 1..121, with
    C = (1, 1) for r and |r|, and 0, 1, 0, -1, ... repeated, ending in 0, whose lag-1 pairs are
    uncorrelated (both halves have mean 0) and which flips sign over two steps: C = (0, -1); its
    absolute value 0, 1, 0, 1, ... alternates: C = (-1, 1). Means over the two paths: (1/2, 0) for r,
    (0, 1) for |r|; scores ||(-3/2, 1)|| = sqrt(13) / 2 and ||(-1, 0)|| = 1. (Averaging the per-path
    norms instead would give (2 + sqrt(5)) / 2 for r.)
    """
    real = np.array([1.0, -2.0] * 60 + [1.0])
    paths = np.stack([np.arange(1.0, 122.0), np.array([0.0, 1.0, 0.0, -1.0] * 30 + [0.0])])
    scores = eg.stylized_facts(real, paths, lags=2)
    assert scores["acf"] == pytest.approx(np.sqrt(13.0) / 2.0, abs=1e-12)
    assert scores["acf_abs"] == pytest.approx(1.0, abs=1e-12)
    # S is capped by the path length: paths of 5 steps give at most 3 lags
    assert np.isfinite(eg.stylized_facts(real, paths[:1, :5], lags=250)["acf"])


def test_garch_paths_shape_and_scale():
    r = np.random.default_rng(3).standard_normal(1500) * 0.01
    paths = eg.garch_paths(r, 4, 300, seed=0)
    assert paths.shape == (4, 300)
    assert 0.005 < paths.std() < 0.02


def test_timegan_stock_windows(shared_data):
    w = load_stock_windows(shared_data / "timegan" / "stock_data.csv")
    assert w.shape == (3685 - 24 + 1, 24, 6)
    assert w.min() >= 0.0 and w.max() <= 1.0
    train, hold = split_windows(w, 0.2)
    assert len(hold) == round(0.2 * len(w)) and len(train) + len(hold) == len(w)


def test_stock_windows_missing_file_and_columns(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_stock_windows(tmp_path / "nope.csv")
    (tmp_path / "s.csv").write_text("Open,Close\n1,2\n")
    with pytest.raises(DataError, match="missing column"):
        load_stock_windows(tmp_path / "s.csv")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_noise_layout_option():
    series = np.random.default_rng(0).normal(size=100)
    iid = _small(steps=1, global_noise=False).fit(series).model_.noise(4, 20)
    assert iid.shape == (4, 20, 4) and bool((iid.std(1) > 0.2).all())
    shared = _small(steps=1).fit(series).model_.noise(4, 20)
    assert bool((shared[:, :, :2].std(1) == 0).all())  # the core's path-level half


def test_increment_scale_by_hand():
    # channel 0 alternates 0, 1 (steps as large as the values: factor clipped to 1); channel 1 is a
    # slow ramp (steps of 0.01 against values spread over ~0.05: factor ~ sd / 0.01, steps all equal
    # so their sd is ~0 and the factor hits the cap)
    t = np.arange(16.0)
    windows = np.stack([np.stack([t % 2, 0.01 * (t + k)], 1) for k in range(8)])
    scale = increment_scale(windows, largest=50.0)
    assert scale[0] == 1.0 and scale[1] == 50.0
    rng = np.random.default_rng(0)
    walk = np.cumsum(rng.normal(size=(64, 24, 1)), axis=1)
    level, step = walk.std(), np.diff(walk, axis=1).std()
    assert increment_scale(walk)[0] == pytest.approx(level / step)


def test_critic_reading_increments_trains_and_round_trips(tmp_path):
    """The critic gets the scaled increments as extra channels; the penalty, the fit, save/load work."""
    series = np.cumsum(np.random.default_rng(3).normal(size=(300, 2)), axis=0)
    model = _small(steps=3, critic_increments=True).fit(series)
    scale = model.model_.config.increment_scale
    assert len(scale) == 2 and min(scale) > 1.0  # random walks: steps far smaller than levels
    net = model.model_
    assert net.discriminator.net.inp.in_channels == 4  # the path and its scaled increments
    x = torch.randn(4, 16, 2)
    steps = torch.cat([torch.zeros(4, 1, 2), x[:, 1:] - x[:, :-1]], 1) * torch.tensor(scale)
    with torch.no_grad():
        np.testing.assert_allclose(
            net.critic(x, None),
            SequenceDiscriminator.forward(net.discriminator, torch.cat([x, steps], 2)),
            rtol=1e-5,
        )
    model.save(tmp_path / "m")
    again = ScenarioGAN.load(tmp_path / "m")
    assert again.critic_increments and tuple(again.model_.config.increment_scale) == pytest.approx(scale)
    np.testing.assert_allclose(again.sample(4, seed=1), model.sample(4, seed=1), rtol=1e-5, atol=1e-6)
    plain = _small(steps=1).fit(series)
    assert plain.model_.config.increment_scale == ()


def test_stocks_protocol_defaults():
    """The Stocks GAN of evaluate-gen: 2,000 steps, EMA 0.95 and the increments-reading critic; the
    diffusion model has no critic, and an explicit setting wins over the default."""
    gan = eg._stocks_model(eg.GenEvalConfig(), seed=0)
    assert (gan.steps, gan.ema_decay, gan.critic_increments) == (2000, 0.95, True)
    assert not eg.GenEvalConfig(model="diffusion").critic_increments
    assert eg._stocks_model(eg.GenEvalConfig(critic_increments=False), seed=0).critic_increments is False
