"""genforge.metrics: known values on hand-made inputs."""

from __future__ import annotations

import numpy as np
import pytest

from genforge import metrics


def _sine_windows(
    n: int, length: int = 24, channels: int = 2, seed: int = 0, noise: float = 0.05
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(length)[None, :, None]
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1, channels))
    freq = rng.uniform(0.2, 0.4, size=(n, 1, channels))
    x = 0.5 + 0.4 * np.sin(freq * t + phase) + noise * rng.standard_normal((n, length, channels))
    return np.clip(x, 0, 1).astype(np.float32)


def test_frechet_identical_gaussians_is_zero_and_grows_with_shift():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2000, 3))
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    # Same covariance, mean shifted by 2 in every coordinate: distance = 3 * 2^2 = 12.
    assert metrics.frechet_distance(a, a + 2.0) == pytest.approx(12.0, rel=1e-6)
    # Independent draws of one Gaussian: small compared with the shift.
    b = rng.standard_normal((2000, 3))
    assert metrics.frechet_distance(a, b) < 0.05


def test_frechet_closed_form_variance_difference():
    # 1-D: d = (mu1-mu2)^2 + (s1 - s2)^2 for Gaussians; here exact sample moments are used.
    x = np.array([-1.0, 1.0] * 50)
    y = 3.0 * x
    sx, sy = x.std(ddof=1), y.std(ddof=1)
    assert metrics.frechet_distance(x, y) == pytest.approx((sx - sy) ** 2, rel=1e-9)


def test_mmd_same_vs_different_distribution():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((300, 2)), rng.standard_normal((300, 2))
    c = rng.standard_normal((300, 2)) + 1.5
    same, diff = metrics.mmd(a, b), metrics.mmd(a, c)
    assert abs(same) < 0.02
    assert diff > 0.2


def test_nn_ratio_copier_is_zero_and_fresh_sample_is_about_one():
    rng = np.random.default_rng(2)
    train = rng.standard_normal((400, 24, 1))
    holdout = rng.standard_normal((200, 24, 1))
    fresh = rng.standard_normal((200, 24, 1))
    assert metrics.nn_distance_ratio(train, train[:200], holdout) == pytest.approx(0.0, abs=1e-9)
    assert 0.85 < metrics.nn_distance_ratio(train, fresh, holdout) < 1.15


def test_nearest_neighbour_distances_by_hand():
    ref = np.array([[0.0, 0.0], [10.0, 0.0]])
    q = np.array([[3.0, 4.0], [10.0, 1.0]])
    np.testing.assert_allclose(metrics.nearest_neighbour_distances(q, ref), [5.0, 1.0])


def test_discriminative_score_identical_is_near_zero_and_obvious_fake_is_near_half():
    real = _sine_windows(400, seed=0)
    same_dist = _sine_windows(400, seed=1)
    fake = 0.3 * real  # damped copies: the level alone gives them away
    assert metrics.discriminative_score(real, same_dist, steps=400) < 0.1
    assert metrics.discriminative_score(real, fake, steps=400) > 0.4


def test_discriminative_score_is_deterministic_for_a_fixed_judge():
    real = _sine_windows(200, seed=0)
    fake = _sine_windows(200, seed=5, noise=0.2)
    a = metrics.discriminative_score(real, fake, steps=50, seed=3)
    b = metrics.discriminative_score(real, fake, steps=50, seed=3)
    assert a == b


def _lagged_pairs(n: int, seed: int, length: int = 24) -> np.ndarray:
    """Two channels where channel 1 at step t+1 equals channel 0 at step t: predictable one step ahead."""
    rng = np.random.default_rng(seed)
    t = np.arange(length + 1)[None, :]
    x = 0.5 + 0.4 * np.sin(rng.uniform(0.3, 0.6, (n, 1)) * t + rng.uniform(0, 2 * np.pi, (n, 1)))
    return np.stack([x[:, 1:], x[:, :-1]], axis=2).astype(np.float32)


def test_predictive_score_real_beats_noise():
    real = _lagged_pairs(300, seed=0)
    noise = np.random.default_rng(4).uniform(0, 1, size=real.shape).astype(np.float32)
    good = metrics.predictive_score(real, _lagged_pairs(300, seed=1), hidden=4, steps=300)
    bad = metrics.predictive_score(real, noise, hidden=4, steps=300)
    assert good < 0.7 * bad


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.discriminative_score(np.zeros((10, 24, 2)), np.zeros((10, 12, 2)), steps=1)
    with pytest.raises(ValueError, match="NaN"):
        metrics.frechet_distance(np.array([[np.nan], [1.0]]), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="feature dimensions"):
        metrics.mmd(np.zeros((5, 2)), np.zeros((5, 3)))


def test_roughness_ratio_measures_step_to_step_jitter() -> None:
    t = np.linspace(0, 1, 24)
    real = np.stack([np.stack([t, 2 * t], axis=1)] * 10)  # [10, 24, 2], steps of 1/23 and 2/23
    jitter = real.copy()
    jitter[:, 1::2, 0] += 2 / 23  # feature 0 zig-zags: 12 steps of +3/23, 11 of -1/23
    ratio = metrics.roughness_ratio(real, jitter)
    assert ratio[0] == pytest.approx((12 * 3 + 11 * 1) / 23)
    assert ratio[1] == pytest.approx(1.0)
    np.testing.assert_allclose(metrics.roughness_ratio(real, real), 1.0)
    with pytest.raises(ValueError, match="constant"):
        metrics.roughness_ratio(np.zeros((3, 5, 1)), real[:, :5, :1])
