"""VaR quantiles of standardised returns: the three methods the forecaster offers and the check that
chose its default.

``VaR_alpha = -sqrt(forecast) * q_alpha`` with ``q_alpha`` the ``alpha`` quantile of the training
window's standardised returns ``eta``; only this quantile differs between the methods:

- ``"skewt"`` (default): Hansen's (1994) skewed Student t with location and scale, fitted by maximum
  likelihood (:func:`fit_skewt`); every residual enters the fit, not just the few in the tail.
- ``"fhs"`` (filtered historical simulation): the empirical quantile of ``eta``.
- ``"evt"``: the conditional EVT of McNeil & Frey (2000), a GPD over the losses above their 90th
  percentile (:func:`gpd_tail_quantile`).

:func:`var_method_scores` is the blocked cross-validation of the pinball loss by which the default
was chosen (results in ``docs/results/finance.md``).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from genforge.errors import DataError, GenforgeError

VAR_METHODS: tuple[str, ...] = ("skewt", "fhs", "evt")
DEFAULT_VAR_METHOD = "skewt"
EVT_THRESHOLD = 0.10  # fraction of the window's standardised losses in the GPD tail


def eta_quantiles(
    eta: Any, levels: tuple[float, ...], method: str
) -> tuple[dict[float, float], dict[str, float] | None]:
    """Lower quantiles of standardised returns ``eta`` at ``levels`` by a VaR method.

    ``method``: ``"skewt"`` (:func:`fit_skewt`, fitted once for all levels), ``"fhs"`` (empirical)
    or ``"evt"`` (:func:`gpd_tail_quantile` on the losses ``-eta``). Returns the quantiles (negative
    numbers for small levels) and the skewed t parameters (None for the other methods).
    """
    x = np.asarray(eta, dtype=float)
    x = x[np.isfinite(x)]
    if method == "skewt":
        params = fit_skewt(x)
        return {a: skewt_quantile(a, params) for a in levels}, params
    if method == "evt":
        return {a: -gpd_tail_quantile(-x, a, EVT_THRESHOLD) for a in levels}, None
    if method == "fhs":
        return {a: float(np.quantile(x, a)) for a in levels}, None
    raise GenforgeError(f"VaR method: expected one of {VAR_METHODS}, got {method!r}")


def var_method_scores(
    eta: Any, levels: tuple[float, ...] = (0.01, 0.05), folds: int = 5, methods: tuple[str, ...] = VAR_METHODS
) -> dict[float, dict[str, float]]:
    """Blocked cross-validation of the VaR methods on one window's standardised returns.

    ``eta`` is cut into ``folds`` contiguous blocks; each block is scored with the quantiles each
    method estimates from the other blocks, by the pinball (tick) loss
    ``mean((alpha - 1[eta < q]) * (eta - q))``, a proper scoring rule for the ``alpha`` quantile.
    Contiguous blocks keep the time variation of the tail inside the check. Returns
    ``{level: {method: mean loss}}`` (lower is better). This is how the default ``var_method`` was
    chosen: only data a forecaster has at its refit enter the check.
    """
    x = np.asarray(eta, dtype=float)
    x = x[np.isfinite(x)]
    blocks = np.array_split(np.arange(len(x)), folds)
    totals = {a: dict.fromkeys(methods, 0.0) for a in levels}
    for block in blocks:
        train = np.delete(x, block)
        held = x[block]
        for method in methods:
            quantiles, _ = eta_quantiles(train, levels, method)
            for a, q in quantiles.items():
                totals[a][method] += float(np.sum((a - (held < q)) * (held - q)))
    return {a: {m: v / len(x) for m, v in scores.items()} for a, scores in totals.items()}


def fit_skewt(x: Any) -> dict[str, float]:
    """Maximum-likelihood fit of Hansen's (1994) skewed Student t with a location and a scale.

    ``x = loc + scale * e`` with ``e`` the standardised (mean 0, variance 1) skewed t of ``arch``'s
    ``SkewStudent`` (degrees of freedom ``nu > 2``, asymmetry ``lam`` in (-1, 1); ``lam < 0`` puts
    the heavier tail on the left). Fitted by Nelder-Mead on unconstrained transforms
    (``nu = 2.1 + exp(a)``, at most 272; ``lam = 0.999 tanh(b)``; ``scale = exp(c)``) from
    ``nu = 8``, ``lam = 0`` and the sample mean and standard deviation. Returns
    ``{"nu", "lam", "loc", "scale"}`` (the start if the optimiser does not improve on it).
    """
    from arch.univariate import SkewStudent
    from scipy import optimize

    v = np.asarray(x, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) < 20:
        raise DataError(f"skewed t fit: {len(v)} finite values; at least 20 are needed")
    dist = SkewStudent()

    def unpack(p: np.ndarray) -> tuple[float, float, float, float]:
        nu = 2.1 + math.exp(min(max(p[0], -10.0), 5.6))  # inside arch's bounds (2.05, 300)
        return nu, 0.999 * math.tanh(p[1]), float(p[2]), math.exp(p[3])

    def nll(p: np.ndarray) -> float:
        nu, lam, loc, scale = unpack(p)
        ll = dist.loglikelihood(np.array([nu, lam]), v - loc, np.full(len(v), scale**2), individual=False)
        return float(-ll) if np.isfinite(ll) else 1e300

    start = np.array([math.log(8.0 - 2.1), 0.0, float(v.mean()), math.log(float(v.std()) + 1e-12)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = optimize.minimize(
            nll, start, method="Nelder-Mead", options={"maxiter": 4000, "xatol": 1e-6, "fatol": 1e-9}
        )
    best = res.x if np.isfinite(res.fun) and res.fun <= nll(start) else start
    nu, lam, loc, scale = unpack(best)
    return {"nu": nu, "lam": lam, "loc": loc, "scale": scale}


def skewt_quantile(alpha: float, params: dict[str, float]) -> float:
    """The ``alpha`` quantile of a skewed t from :func:`fit_skewt`."""
    from arch.univariate import SkewStudent

    e = float(SkewStudent().ppf(alpha, np.array([params["nu"], params["lam"]])))
    return float(params["loc"] + params["scale"] * e)


def gpd_tail_quantile(losses: Any, alpha: float, tail_fraction: float = EVT_THRESHOLD) -> float:
    """Loss quantile exceeded with probability ``alpha``, from a GPD fitted to the upper tail (POT).

    McNeil & Frey (2000): take the threshold ``u`` at the ``1 - tail_fraction`` quantile of
    ``losses``, fit a generalized Pareto distribution (shape ``xi``, scale ``beta``; maximum
    likelihood, falling back to probability-weighted moments when the fit fails or is implausible)
    to the ``N_u`` exceedances ``losses - u > 0`` and return
    ``u + beta / xi * ((n * alpha / N_u) ** -xi - 1)`` (``u - beta * log(n * alpha / N_u)`` when
    ``xi`` is 0). A level not inside the tail (``alpha >= N_u / n``) gets the empirical quantile.
    """
    from scipy import stats

    x = np.asarray(losses, dtype=float)
    x = x[np.isfinite(x)]
    n = len(x)
    u = float(np.quantile(x, 1.0 - tail_fraction))
    y = np.sort(x[x > u] - u)
    n_u = len(y)
    if n_u < 10 or alpha >= n_u / n:
        return float(np.quantile(x, 1.0 - alpha))
    xi = beta = float("nan")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            xi, _, beta = stats.genpareto.fit(y, floc=0.0)
    except (RuntimeError, ValueError, FloatingPointError):
        pass
    if not (np.isfinite(xi) and np.isfinite(beta) and beta > 0 and -0.5 < xi < 1.0):
        # Probability-weighted moments (Hosking & Wallis 1987): b0 = mean, b1 = E[y (1 - F(y))].
        b0 = float(y.mean())
        b1 = float(np.mean(y * (n_u - 1 - np.arange(n_u)) / max(n_u - 1, 1)))
        xi = 2.0 - b0 / (b0 - 2.0 * b1)  # = -k in Hosking's notation
        beta = 2.0 * b0 * b1 / (b0 - 2.0 * b1)
    ratio = n * alpha / n_u
    if abs(xi) < 1e-8:
        return float(u - beta * math.log(ratio))
    return float(u + beta / xi * (ratio ** (-xi) - 1.0))
