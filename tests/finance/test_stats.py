"""Loss functions and tests of the volatility evaluation on hand-made inputs with known answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from genforge.finance.volatility.stats_tests import (
    christoffersen,
    diebold_mariano,
    kupiec,
    model_confidence_set,
    mse_loss,
    newey_west_variance,
    qlike_loss,
    var_backtest,
)


def test_qlike_and_mse_known_values():
    h = np.array([1.0, 2.0, 4.0])
    proxy = np.array([1.0, 1.0, 0.0])
    ql = qlike_loss(h, proxy)
    assert ql[0] == pytest.approx(0.0)  # perfect forecast
    assert ql[1] == pytest.approx(0.5 - math.log(0.5) - 1.0)
    assert math.isnan(ql[2])  # zero proxy: undefined, dropped by the scoring
    assert mse_loss(h, proxy).tolist() == pytest.approx([0.0, 1.0, 16.0])
    with pytest.raises(ValueError):
        qlike_loss([0.0], [1.0])


def test_qlike_is_minimised_by_the_expected_proxy():
    rng = np.random.default_rng(0)
    proxy = 2.0 * rng.standard_normal(200_000) ** 2  # E[proxy] = 2
    losses = {h: np.nanmean(qlike_loss(np.full(proxy.size, h), proxy)) for h in (1.5, 2.0, 2.5)}
    assert min(losses, key=losses.get) == 2.0


def test_diebold_mariano_identical_and_shifted_losses():
    rng = np.random.default_rng(1)
    loss = rng.exponential(size=500)
    same = diebold_mariano(loss, loss)
    assert same["stat"] == 0.0 and same["pvalue"] == 1.0
    worse = diebold_mariano(loss, loss + 0.5 + 0.01 * rng.standard_normal(500))
    assert worse["stat"] < -10 and worse["pvalue"] < 1e-6  # model a clearly better
    # iid differences with lags=0: the statistic is the plain t statistic of the mean
    d = rng.standard_normal(400) + 0.1
    expected = d.mean() / math.sqrt(d.var() / d.size)
    assert diebold_mariano(d, np.zeros_like(d), lags=0)["stat"] == pytest.approx(expected)


def test_newey_west_of_alternating_series_is_smaller_than_plain_variance():
    x = np.tile([1.0, -1.0], 100)
    assert newey_west_variance(x, lags=0) == pytest.approx(1.0)
    assert newey_west_variance(x, lags=1) == pytest.approx(1.0 - 2 * 0.5 * 199 / 200)


def test_kupiec_known_values():
    # 250 days, 1% VaR, 2.5 expected; 0 hits: LR = -2 * 250 * log(0.99)
    assert kupiec(np.zeros(250), 0.01)["lr"] == pytest.approx(-500 * math.log(0.99))
    hits = np.zeros(250)
    hits[:5] = 1
    pi = 5 / 250
    lr = -2 * (245 * math.log(0.99) + 5 * math.log(0.01) - 245 * math.log(1 - pi) - 5 * math.log(pi))
    out = kupiec(hits, 0.01)
    assert out["lr"] == pytest.approx(lr) and out["violations"] == 5
    # Basel traffic light style check: 255 days, 1% VaR: 6 hits pass at 5%, 10 do not
    six, ten = np.zeros(255), np.zeros(255)
    six[:6], ten[:10] = 1, 1
    assert kupiec(six, 0.01)["pvalue"] > 0.05 > kupiec(ten, 0.01)["pvalue"]
    # exactly the expected rate: LR 0
    exact = np.zeros(1000)
    exact[::20] = 1
    assert kupiec(exact, 0.05)["lr"] == pytest.approx(0.0, abs=1e-9)


def test_christoffersen_detects_clustered_violations():
    spread = (np.random.default_rng(0).random(1000) < 0.05).astype(float)  # iid hits
    clustered = np.zeros(1000)
    clustered[100:150] = 1  # 50 hits in one run
    assert christoffersen(clustered, 0.05)["pvalue_ind"] < 1e-6
    assert christoffersen(spread, 0.05)["pvalue_ind"] > 0.05
    # independence LR by hand for a tiny sequence: transitions 00:2, 01:2, 10:2, 11:1
    seq = np.array([0, 1, 1, 0, 0, 1, 0, 0])
    n00, n01, n10, n11 = 2, 2, 2, 1
    pi0, pi1, pi = n01 / (n00 + n01), n11 / (n10 + n11), 3 / 7
    lnull = (n00 + n10) * math.log(1 - pi) + (n01 + n11) * math.log(pi)
    lalt = n00 * math.log(1 - pi0) + n01 * math.log(pi0) + n10 * math.log(1 - pi1) + n11 * math.log(pi1)
    assert christoffersen(seq, 0.05)["lr_ind"] == pytest.approx(-2 * (lnull - lalt))


def test_var_backtest_counts_violations_below_minus_var():
    returns = np.array([-3.0, -1.0, 0.5, -2.5, 1.0])
    var = np.full(5, 2.0)
    out = var_backtest(returns, var, 0.05)
    assert out["violations"] == 2


def test_model_confidence_set_drops_a_clearly_worse_model():
    rng = np.random.default_rng(2)
    base = rng.exponential(size=1500)
    losses = pd.DataFrame(
        {"good": base, "also_good": base + 0.01 * rng.standard_normal(1500), "bad": base + 1.0}
    )
    out = model_confidence_set(losses, size=0.10, reps=200, seed=0)
    assert "bad" not in out["members"] and "good" in out["members"]


def test_backtests_reject_a_correct_var_about_as_often_as_their_level():
    """Exceptions drawn exactly at the VaR level, independently, 4,030 days at 1%: Kupiec rejects at 5%
    in 4.9% of samples, the independence test (few consecutive pairs) in 2.2%, conditional coverage
    3.7%, any of the three 7% (1,000 samples, seed 0)."""
    rng = np.random.default_rng(0)
    n, reps, alpha = 4030, 1000, 0.01
    rejected = {"kupiec_p": 0, "christoffersen_ind_p": 0, "christoffersen_cc_p": 0, "any": 0}
    for _ in range(reps):
        returns = np.where(rng.uniform(size=n) < alpha, -2.0, 0.0)
        test = var_backtest(returns, np.ones(n), alpha)
        for key in ("kupiec_p", "christoffersen_ind_p", "christoffersen_cc_p"):
            rejected[key] += test[key] < 0.05
        rejected["any"] += not test["passed"]
    rates = {k: v / reps for k, v in rejected.items()}
    assert 0.025 <= rates["kupiec_p"] <= 0.075, rates
    assert 0.01 <= rates["christoffersen_ind_p"] <= 0.075, rates
    assert 0.025 <= rates["christoffersen_cc_p"] <= 0.075, rates
    assert 0.03 <= rates["any"] <= 0.10, rates
