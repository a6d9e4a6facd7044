"""VolatilityForecaster and the rolling protocol: learning happens, no look-ahead, save/load."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from genforge.finance.data import return_frame
from genforge.finance.volatility.evaluate import ArchBaseline, rolling_forecasts, score_forecasts
from genforge.finance.volatility.models import VolatilityForecaster
from genforge.finance.volatility.stats_tests import qlike_loss
from genforge.finance.volatility.var_methods import (
    fit_skewt,
    gpd_tail_quantile,
    skewt_quantile,
    var_method_scores,
)


def simulated_prices(n: int = 1400, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """OHLC prices from a GJR-GARCH-t with ranges that scale with the day's volatility."""
    rng = np.random.default_rng(seed)
    omega, alpha, gamma, beta, nu = 0.02, 0.03, 0.12, 0.88, 7.0
    var = np.empty(n)
    r = np.empty(n)
    h = omega / (1 - alpha - gamma / 2 - beta)
    for t in range(n):
        var[t] = h
        eps = rng.standard_t(nu) / np.sqrt(nu / (nu - 2))
        r[t] = np.sqrt(h) * eps
        h = omega + (alpha + gamma * (r[t] < 0)) * r[t] ** 2 + beta * h
    close = 100 * np.exp(np.cumsum(r) / 100)
    open_ = np.r_[100.0, close[:-1]]
    spread = np.sqrt(var) / 100 * np.abs(rng.normal(0.8, 0.3, n))
    high = np.maximum(open_, close) * np.exp(spread)
    low = np.minimum(open_, close) * np.exp(-spread)
    dates = pd.bdate_range("2000-01-03", periods=n, name="Date")
    prices = pd.DataFrame({"Open": open_, "High": high, "Low": low, "Close": close}, index=dates)
    return prices, var


def test_learning_beats_a_constant_variance_on_held_out_days():
    prices, true_var = simulated_prices()
    split = 1000
    model = VolatilityForecaster(steps=300, n_samples=64, base="ewma").fit(prices.iloc[:split])
    losses = [row["loss"] for row in model.train_history_]
    assert np.mean(losses[-5:]) < np.mean(losses[:5])  # the ELBO improved
    pred = model.predict(prices)
    # row i forecasts the day after pred.date[i]; held-out targets are returns after the split
    r = return_frame(prices)["return"]
    target = r.shift(-1).reindex(pred["date"]).to_numpy()
    held = (pred["date"] >= prices.index[split]).to_numpy() & np.isfinite(target)
    constant = np.full(held.sum(), np.mean(r.iloc[: split - 1] ** 2))
    ql_model = np.nanmean(qlike_loss(pred["variance"].to_numpy()[held], target[held] ** 2))
    ql_const = np.nanmean(qlike_loss(constant, target[held] ** 2))
    oracle = pd.Series(true_var, index=prices.index).shift(-1).reindex(pred["date"]).to_numpy()[held]
    ql_oracle = np.nanmean(qlike_loss(oracle, target[held] ** 2))
    # at least half of the way from a constant variance to the true (simulated) variance
    assert ql_model < ql_const - 0.5 * (ql_const - ql_oracle), (ql_model, ql_const, ql_oracle)
    # quantiles are ordered and VaR is positive
    assert (pred["variance_q05"] <= pred["variance_q95"]).all()
    assert (pred["sq_return_q05"] <= pred["sq_return_q95"]).all()
    assert (pred["var_1"] > pred["var_5"]).all() and (pred["var_5"] > 0).all()


def test_rolling_protocol_has_no_look_ahead():
    """Forecasts from truncated data equal those of the full run (VAE with warm starts, GJR)."""
    prices, _ = simulated_prices(n=380, seed=1)
    frame = return_frame(prices)
    initial, every = 300, 20

    def run(data: pd.DataFrame, name: str) -> pd.DataFrame:
        if name == "vae":
            model = VolatilityForecaster(
                steps=60, warm_steps=20, n_samples=32, warm_start=True, base="gjr", var_feedback=0.05
            )
        else:
            model = ArchBaseline("gjr_t", "GARCH", 1, 1, 1)
        return rolling_forecasts(model, data, initial=initial, refit_every=every)

    for name in ("gjr_t", "vae"):
        full = run(frame, name)
        assert len(full) == len(frame) - initial + 1 and full["refit"].sum() == 4
        for cut in (initial + 5, initial + 40):  # inside the first block; first day of the third block
            short = run(frame.iloc[:cut], name)
            # the truncated run's last row is its forecast for day `cut`, made without day `cut`'s data
            np.testing.assert_allclose(
                short["variance"].to_numpy(),
                full["variance"].to_numpy()[: cut - initial + 1],
                rtol=1e-6,
                err_msg=name,
            )
            # the VaR too (the VAE's: skewed t, with exception feedback running across blocks)
            cols = ("var_1", "var_5") + (("var_level_1", "var_level_5") if name == "vae" else ())
            for col in cols:
                np.testing.assert_allclose(
                    short[col].to_numpy(),
                    full[col].to_numpy()[: cut - initial + 1],
                    rtol=1e-6,
                    err_msg=f"{name} {col}",
                )


def test_save_load_roundtrip(tmp_path):
    prices, _ = simulated_prices(n=400, seed=2)
    model = VolatilityForecaster(steps=40, n_samples=32, base="ewma").fit(prices)
    model.save(tmp_path / "vol")
    again = VolatilityForecaster.load(tmp_path / "vol")
    pd.testing.assert_frame_equal(model.predict(prices), again.predict(prices))
    assert again.get_params() == model.get_params()


def test_score_forecasts_on_known_inputs():
    idx = pd.bdate_range("2020-01-01", periods=300)
    rng = np.random.default_rng(0)
    r = rng.standard_normal(300)
    realized = pd.DataFrame({"return": r, "parkinson": r**2, "garman_klass": r**2}, index=idx)
    good = pd.DataFrame({"variance": np.ones(300), "var_1": 2.326, "var_5": 1.645})
    bad = pd.DataFrame({"variance": np.full(300, 9.0), "var_1": 7.0, "var_5": 5.0})
    out = score_forecasts({"vae": good, "bad": bad}, realized, mcs_reps=100)
    assert out["qlike"]["vae"] < out["qlike"]["bad"]
    assert out["dm"]["bad"]["qlike"]["stat"] < 0  # the reference (vae) has the smaller loss
    assert out["mcs"] == ["vae"]
    assert out["var_tests"]["bad"]["var_1"]["violations"] == int((r < -7.0).sum())


def test_unfitted_and_short_inputs_raise_clear_errors():
    from genforge.errors import GenforgeError

    prices, _ = simulated_prices(n=200)
    with pytest.raises(NotFittedError, match="call fit"):
        VolatilityForecaster().predict(prices)
    with pytest.raises(GenforgeError, match="at least 250"):
        VolatilityForecaster(steps=5).fit(prices)


def test_parallel_refits_give_the_same_forecasts():
    prices, _ = simulated_prices(n=362, seed=5)
    frame = return_frame(prices)
    model = VolatilityForecaster(steps=30, n_samples=16, base="ewma")
    serial = rolling_forecasts(model, frame, initial=300, refit_every=20)
    parallel = rolling_forecasts(model, frame, initial=300, refit_every=20, jobs=2)
    pd.testing.assert_frame_equal(serial, parallel)


def test_gpd_tail_quantile_matches_student_t_quantiles():
    """The POT/GPD quantile of simulated Student-t losses is close to the true quantile."""
    from scipy import stats

    nu = 4.0
    errors = []
    for seed in range(5):
        losses = np.random.default_rng(seed).standard_t(nu, 4000)
        for alpha in (0.01, 0.005):
            true = stats.t.ppf(1 - alpha, nu)
            errors.append(abs(gpd_tail_quantile(losses, alpha) / true - 1))
    assert np.mean(errors) < 0.06 and max(errors) < 0.15, errors
    # a level outside the tail (alpha >= tail fraction) falls back to the empirical quantile
    losses = np.random.default_rng(0).standard_normal(1000)
    assert gpd_tail_quantile(losses, 0.2) == pytest.approx(np.quantile(losses, 0.8))


@pytest.mark.parametrize("method", ["evt", "skewt"])
def test_var_methods_change_only_var_and_round_trip(tmp_path, method):
    from genforge.errors import GenforgeError

    prices, _ = simulated_prices(n=600, seed=3)
    fhs = VolatilityForecaster(steps=40, n_samples=32, base="ewma", var_method="fhs").fit(prices)
    other = VolatilityForecaster(
        steps=40, n_samples=32, base="ewma", var_method=method, var_feedback=0
    ).fit(prices)
    p_fhs, p_other = fhs.predict(prices), other.predict(prices)
    np.testing.assert_allclose(p_other["variance"], p_fhs["variance"], rtol=1e-12)
    assert not np.allclose(p_other["var_1"], p_fhs["var_1"])
    assert (p_other["var_1"] > p_other["var_5"]).all() and (p_other["var_5"] > 0).all()
    # VaR is the forecast volatility times one quantile of the training window's residuals
    ratio = p_other["var_1"] / p_other["volatility"]
    np.testing.assert_allclose(ratio, -other.eta_quantiles_["0.01"], rtol=1e-12)
    other.save(tmp_path / method)
    again = VolatilityForecaster.load(tmp_path / method)
    assert again.var_method == method
    assert again.skewt_params_ == other.skewt_params_ and (other.skewt_params_ is not None) == (
        method == "skewt"
    )
    pd.testing.assert_frame_equal(p_other, again.predict(prices))
    with pytest.raises(GenforgeError, match="var_method"):
        VolatilityForecaster(steps=5, var_method="gauss").fit(prices)


def test_default_var_method_is_the_skewed_t():
    assert VolatilityForecaster().var_method == "skewt"


def test_fit_skewt_recovers_skewed_t_quantiles():
    """ML fit of Hansen's skewed t (with location and scale) on simulated draws: left-tail quantiles
    within a few percent of the true ones, the asymmetry's sign found, and a normal sample gets a
    large nu and a small asymmetry."""
    from arch.univariate import SkewStudent
    from scipy import stats

    dist, true = SkewStudent(), np.array([5.0, -0.3])
    errors = []
    for seed in range(3):
        rng = np.random.default_rng(seed)
        x = 0.05 + 1.3 * np.asarray(dist.ppf(rng.uniform(size=3000), true))
        params = fit_skewt(x)
        assert params["lam"] < -0.1 and 3.0 < params["nu"] < 9.0, params
        for alpha in (0.01, 0.05):
            expected = 0.05 + 1.3 * float(dist.ppf(alpha, true))
            errors.append(abs(skewt_quantile(alpha, params) / expected - 1))
    assert np.mean(errors) < 0.04 and max(errors) < 0.08, errors
    normal = fit_skewt(np.random.default_rng(0).standard_normal(3000))
    assert normal["nu"] > 20 and abs(normal["lam"]) < 0.1, normal
    assert skewt_quantile(0.01, normal) == pytest.approx(stats.norm.ppf(0.01), rel=0.05)


def test_var_method_scores_blocked_cross_validation():
    """Pinball losses per level and method; on skewed t draws the skewed t fit scores best at 1%
    (summed over seeds: its lower variance shows, the single-seed differences are small)."""
    from arch.univariate import SkewStudent

    dist = SkewStudent()
    totals = {"skewt": 0.0, "fhs": 0.0, "evt": 0.0}
    for seed in range(3):
        x = np.asarray(dist.ppf(np.random.default_rng(seed).uniform(size=2000), np.array([5.0, -0.3])))
        scores = var_method_scores(x)
        assert set(scores) == {0.01, 0.05} and all(set(m) == set(totals) for m in scores.values())
        assert all(v > 0 for m in scores.values() for v in m.values())
        for method, value in scores[0.01].items():
            totals[method] += value
    assert totals["skewt"] < totals["fhs"], totals
    # one block, one method, by hand: the held-out block is scored with the others' quantile
    x = np.arange(10.0)
    manual = 0.0
    for block in np.array_split(np.arange(10), 2):
        q = np.quantile(np.delete(x, block), 0.1)
        manual += np.sum((0.1 - (x[block] < q)) * (x[block] - q))
    got = var_method_scores(x, levels=(0.1,), folds=2, methods=("fhs",))
    assert got[0.1]["fhs"] == pytest.approx(manual / 10)
