"""Exception feedback (adaptive conformal inference on the VaR level): known values, the coverage
guarantee under a misspecified tail, no look-ahead, and its use by the forecaster and the protocol."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from test_volatility import simulated_prices  # tests/finance is on sys.path (pytest prepend mode)

from genforge.errors import GenforgeError
from genforge.finance.data import return_frame
from genforge.finance.volatility.evaluate import (
    ArchBaseline,
    HARBaseline,
    feedback_comparison,
    rolling_forecasts,
)
from genforge.finance.volatility.models import VolatilityForecaster
from genforge.finance.volatility.var_feedback import (
    DISTRIBUTION_COLUMNS,
    adaptive_var,
    distribution_var,
    has_distribution,
    standardised_quantile,
)


def normal_rows(n: int, sd: float = 1.0, nu: float = np.inf) -> pd.DataFrame:
    return pd.DataFrame(
        {"volatility": sd, "eta_loc": 0.0, "eta_scale": 1.0, "eta_nu": nu, "eta_lambda": 0.0},
        index=range(n),
    )


def test_one_exception_moves_the_level_by_the_rate():
    rows = normal_rows(3)
    outcomes = np.array([-10.0, 0.0, np.nan])  # an exception, a quiet day, an unknown day
    var, levels = adaptive_var(rows, outcomes, alpha=0.1, rate=0.05)
    gamma = 0.05 * 0.1
    expected = [0.1, 0.1 + gamma * (0.1 - 1), 0.1 + gamma * (0.1 - 1) + gamma * 0.1]
    np.testing.assert_allclose(levels, expected)
    np.testing.assert_allclose(var, -stats.norm.ppf(expected))
    # rate 0 is the fixed level, the same as the static VaR of the distribution columns
    fixed, fixed_levels = adaptive_var(rows, outcomes, alpha=0.1, rate=0.0)
    np.testing.assert_allclose(fixed, distribution_var(rows, 0.1))
    assert (fixed_levels == 0.1).all()


def test_standardised_skewed_t_and_t_quantiles():
    nu = 6.0
    t_std = stats.t.ppf(0.01, nu) / np.sqrt(nu / (nu - 2))
    assert standardised_quantile(0.01, nu, 0.0) == pytest.approx(t_std, rel=1e-6)
    assert standardised_quantile(0.01, nu, -0.3) < t_std  # heavier left tail when lambda < 0
    rows = normal_rows(2, sd=2.0).assign(eta_loc=0.1, eta_scale=1.5)
    np.testing.assert_allclose(distribution_var(rows, 0.05), -2.0 * (0.1 + 1.5 * stats.norm.ppf(0.05)))


def test_feedback_restores_coverage_when_the_tail_is_heavier_than_modelled():
    """A normal VaR model on Student-t(3) returns: fixed level, far too many exceptions; with
    feedback the exception share is within the guarantee and close to alpha."""
    rng = np.random.default_rng(0)
    n, alpha, rate = 20000, 0.01, 0.05
    r = rng.standard_t(3, n) / np.sqrt(3.0)  # unit variance, heavy tails
    rows = normal_rows(n)
    fixed = (r < -distribution_var(rows, alpha)).mean()
    var, levels = adaptive_var(rows, r, alpha, rate)
    adapted = (r < -var).mean()
    gamma = rate * alpha
    bound = (1 - alpha + gamma) / (gamma * n)
    assert fixed > 1.4 * alpha, fixed
    assert abs(adapted - alpha) <= bound and abs(adapted - alpha) < 0.15 * alpha, (adapted, bound)
    assert levels.min() >= 0.1 * alpha and levels[-1] < alpha  # it learned a lower level


def test_no_look_ahead_and_the_clip():
    rng = np.random.default_rng(1)
    rows = normal_rows(300)
    r = rng.standard_normal(300) * 3  # many exceptions: the level sinks to its floor
    var, levels = adaptive_var(rows, r, 0.05, rate=0.5)
    assert levels.min() == pytest.approx(0.005) and levels.max() <= 0.5
    changed = r.copy()
    changed[150:] = 0.0
    var2, _ = adaptive_var(rows, changed, 0.05, rate=0.5)
    np.testing.assert_array_equal(var[:151], var2[:151])  # row 150's VaR knows days < 150 only
    assert not np.array_equal(var[151:], var2[151:])


def test_bad_inputs_are_clear_errors():
    rows = normal_rows(3)
    with pytest.raises(ValueError, match="eta_nu"):
        adaptive_var(rows.drop(columns="eta_nu"), np.zeros(3), 0.01)
    with pytest.raises(ValueError, match="3 forecast rows"):
        adaptive_var(rows, np.zeros(2), 0.01)
    with pytest.raises(ValueError, match="alpha"):
        adaptive_var(rows, np.zeros(3), 0.7)
    assert has_distribution(rows) and not has_distribution(rows.assign(volatility=np.nan))


def test_forecaster_feedback_option_and_its_errors(tmp_path):
    prices, _ = simulated_prices(n=500, seed=4)
    assert VolatilityForecaster().feedback_rate == 0.05  # the default, with the default skewt VaR
    assert VolatilityForecaster(var_method="fhs").feedback_rate == 0.0  # no quantile at any level
    model = VolatilityForecaster(steps=30, n_samples=16, base="ewma").fit(prices)
    pred = model.predict(prices)
    assert set(DISTRIBUTION_COLUMNS) <= set(pred.columns) and "var_level_1" in pred.columns
    # the forecaster's VaR is the feedback recursion over its own rows and the next day's returns
    outcomes = np.append(return_frame(prices)["return"].to_numpy()[22:], np.nan)
    var, levels = adaptive_var(pred, outcomes, 0.01, 0.05)
    np.testing.assert_allclose(pred["var_1"], var)
    np.testing.assert_allclose(pred["var_level_1"], levels)
    assert pred["var_level_5"].nunique() > 1  # 5% exceptions happened and moved the level
    model.save(tmp_path / "m")
    pd.testing.assert_frame_equal(VolatilityForecaster.load(tmp_path / "m").predict(prices), pred)
    static = VolatilityForecaster(steps=30, n_samples=16, base="ewma", var_feedback=0).fit(prices)
    assert "var_level_1" not in static.predict(prices).columns
    with pytest.raises(GenforgeError, match="var_feedback"):
        VolatilityForecaster(steps=5, var_method="fhs", var_feedback=0.05).fit(prices)


def test_rolling_feedback_runs_across_blocks_and_the_comparison_counts_it():
    prices, _ = simulated_prices(n=420, seed=5)
    frame = return_frame(prices)
    model = VolatilityForecaster(steps=30, n_samples=16, base="ewma", var_feedback=0.05)
    out = rolling_forecasts(model, frame, initial=300, refit_every=40).iloc[:-1]
    r = frame["return"].to_numpy()[300:]
    var, _ = adaptive_var(out, r, 0.05, 0.05)  # one recursion over all three blocks
    np.testing.assert_allclose(out["var_5"], var)
    comparison = feedback_comparison({"vae": out}, r)
    assert comparison["feedback"]["vae"]["var_5"]["violations"] == int((r < -var).sum())
    assert comparison["static"]["vae"]["var_5"]["violations"] == int((r < -distribution_var(out, 0.05)).sum())


@pytest.mark.parametrize(
    "model",
    [
        ArchBaseline("gjr_t", "GARCH", 1, 1, 1),
        ArchBaseline("garch_skewt", "GARCH", 1, 0, 1, dist="skewt"),
        ArchBaseline("ewma", "EWMA"),
        HARBaseline(),
    ],
    ids=lambda m: m.name,
)
def test_baselines_describe_the_distribution_their_var_comes_from(model):
    """The distribution columns a baseline writes give back its own VaR at the fixed levels."""
    prices, _ = simulated_prices(n=420, seed=8)
    out = model.fit_forecast(return_frame(prices), 400)
    assert has_distribution(out)
    for a, column in ((0.01, "var_1"), (0.05, "var_5")):
        np.testing.assert_allclose(distribution_var(out, a), out[column], rtol=1e-6)
    ged = ArchBaseline("garch_ged", "GARCH", 1, 0, 1, dist="ged").fit_forecast(return_frame(prices), 400)
    assert not has_distribution(ged)  # no columns where feedback could not read the distribution
