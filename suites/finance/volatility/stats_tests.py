"""Forecast losses and tests used by the volatility evaluation: QLIKE and MSE losses,
Diebold-Mariano tests, Kupiec and Christoffersen VaR backtests, and the model confidence set.

All functions take plain arrays (or pandas objects) and know nothing of models, so they can be
checked on hand-made inputs. Conventions:

* ``qlike_loss(h, proxy) = proxy/h - log(proxy/h) - 1`` (Patton 2011's QLIKE, 0 for a perfect
  forecast). It is undefined where the proxy is 0 (a day with an unchanged close): those days get
  NaN and the scoring drops them for every model alike (3 of the 4,030 S&P 500 days). Differences
  between models equal those of ``log(h) + proxy/h`` day by day, so tests and rankings are the same.
* A VaR violation on day t is ``r_t < -VaR_t`` with VaR reported as a positive number.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats


def _array(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=float).reshape(-1)


def qlike_loss(forecast: Any, proxy: Any) -> np.ndarray:
    """Per-day QLIKE loss ``proxy/h - log(proxy/h) - 1`` (NaN where the proxy is 0)."""
    h, y = _array(forecast), _array(proxy)
    if h.shape != y.shape:
        raise ValueError(f"forecast and proxy lengths differ ({h.size} vs {y.size})")
    if (h <= 0).any() or not np.isfinite(h).all():
        raise ValueError("QLIKE needs positive, finite variance forecasts")
    ratio = np.divide(y, h)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = ratio - np.log(ratio) - 1.0
    out[y <= 0] = np.nan
    return out


def mse_loss(forecast: Any, proxy: Any) -> np.ndarray:
    """Per-day squared error ``(proxy - h)^2``."""
    h, y = _array(forecast), _array(proxy)
    if h.shape != y.shape:
        raise ValueError(f"forecast and proxy lengths differ ({h.size} vs {y.size})")
    return (y - h) ** 2


def newey_west_variance(x: Any, lags: int | None = None) -> float:
    """HAC (Bartlett kernel) long-run variance of the mean of ``x``'s series (not divided by T)."""
    d = _array(x)
    t = d.size
    if lags is None:
        lags = int(math.floor(4 * (t / 100.0) ** (2.0 / 9.0)))
    u = d - d.mean()
    var = float(u @ u) / t
    for k in range(1, min(lags, t - 1) + 1):
        weight = 1.0 - k / (lags + 1.0)
        var += 2.0 * weight * float(u[k:] @ u[:-k]) / t
    return var


def diebold_mariano(loss_a: Any, loss_b: Any, lags: int | None = None) -> dict[str, float]:
    """Diebold-Mariano test of equal expected loss, with a Newey-West variance.

    ``d = loss_a - loss_b``; a negative statistic means model a has the smaller loss. Two-sided
    p-value from the normal distribution. Identical losses give statistic 0 and p-value 1.
    """
    a, b = _array(loss_a), _array(loss_b)
    if a.shape != b.shape:
        raise ValueError(f"loss series lengths differ ({a.size} vs {b.size})")
    d = a - b
    mean = float(d.mean())
    var = newey_west_variance(d, lags)
    if var <= 0 or not np.isfinite(var):
        return {"stat": 0.0, "pvalue": 1.0, "mean_diff": mean}
    stat = mean / math.sqrt(var / d.size)
    return {"stat": stat, "pvalue": float(2.0 * stats.norm.sf(abs(stat))), "mean_diff": mean}


def _xlogy(x: float, y: float) -> float:
    return 0.0 if x == 0 else x * math.log(y)


def kupiec(violations: Any, alpha: float) -> dict[str, float]:
    """Kupiec (1995) proportion-of-failures test: LR statistic (chi2 with 1 df) and p-value.

    ``violations`` is a 0/1 series; ``alpha`` the VaR level (0.01 for a 1% VaR).
    """
    v = _array(violations)
    n, x = v.size, float(v.sum())
    pi = x / n
    log_null = _xlogy(n - x, 1 - alpha) + _xlogy(x, alpha)
    log_alt = _xlogy(n - x, 1 - pi) + _xlogy(x, pi)
    lr = max(0.0, -2.0 * (log_null - log_alt))
    return {"lr": lr, "pvalue": float(stats.chi2.sf(lr, 1)), "violations": int(x), "expected": alpha * n}


def christoffersen(violations: Any, alpha: float) -> dict[str, float]:
    """Christoffersen (1998) tests: independence (first-order Markov, chi2 1 df) and conditional
    coverage (Kupiec + independence, chi2 2 df)."""
    v = _array(violations).astype(int)
    prev, cur = v[:-1], v[1:]
    n00 = int(((prev == 0) & (cur == 0)).sum())
    n01 = int(((prev == 0) & (cur == 1)).sum())
    n10 = int(((prev == 1) & (cur == 0)).sum())
    n11 = int(((prev == 1) & (cur == 1)).sum())
    pi0 = n01 / max(n00 + n01, 1)
    pi1 = n11 / max(n10 + n11, 1)
    pi = (n01 + n11) / max(n00 + n01 + n10 + n11, 1)
    log_null = _xlogy(n00 + n10, 1 - pi) + _xlogy(n01 + n11, pi)
    log_alt = _xlogy(n00, 1 - pi0) + _xlogy(n01, pi0) + _xlogy(n10, 1 - pi1) + _xlogy(n11, pi1)
    lr_ind = max(0.0, -2.0 * (log_null - log_alt))
    lr_cc = kupiec(v, alpha)["lr"] + lr_ind
    return {
        "lr_ind": lr_ind,
        "pvalue_ind": float(stats.chi2.sf(lr_ind, 1)),
        "lr_cc": lr_cc,
        "pvalue_cc": float(stats.chi2.sf(lr_cc, 2)),
        "n11": n11,
    }


def var_backtest(returns: Any, var: Any, alpha: float, level: float = 0.05) -> dict[str, Any]:
    """Kupiec and Christoffersen backtests of a VaR series (positive numbers) against returns.

    ``passed`` is true when neither the Kupiec, the independence nor the conditional-coverage test
    rejects at ``level``.
    """
    r, q = _array(returns), _array(var)
    hits = (r < -q).astype(int)
    uc, cc = kupiec(hits, alpha), christoffersen(hits, alpha)
    passed = min(uc["pvalue"], cc["pvalue_ind"], cc["pvalue_cc"]) >= level
    return {
        "violations": uc["violations"],
        "expected": uc["expected"],
        "kupiec_lr": uc["lr"],
        "kupiec_p": uc["pvalue"],
        "christoffersen_ind_p": cc["pvalue_ind"],
        "christoffersen_cc_p": cc["pvalue_cc"],
        "passed": bool(passed),
    }


def model_confidence_set(
    losses: pd.DataFrame, size: float = 0.10, reps: int = 1000, block_size: int | None = None, seed: int = 0
) -> dict[str, Any]:
    """Hansen-Lunde-Nason model confidence set with ``arch.bootstrap.MCS`` (range statistic,
    stationary bootstrap). Returns the member names and each model's MCS p-value."""
    from arch.bootstrap import MCS

    mcs = MCS(losses, size=size, reps=reps, block_size=block_size, method="R", seed=seed)
    mcs.compute()
    pvalues = mcs.pvalues.iloc[:, 0]
    return {
        "size": size,
        "members": [str(m) for m in mcs.included],
        "pvalues": {str(k): float(v) for k, v in pvalues.items()},
    }
