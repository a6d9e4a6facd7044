"""The volatility evaluation protocol (``genforge finance evaluate-vol``) and its baselines.

Protocol (issue 4, section 2): rolling one-day-ahead forecasts of the close-to-close variance of
daily log returns (percent). The first ``initial`` returns are the first training window; the
window expands; every model is refitted every ``refit_every`` trading days on all returns before
the block and, inside the block, filtered with those fixed parameters. On the bundled S&P 500 this
gives 4,030 out-of-sample days, 2002-12-27 to 2018-12-31, and 202 refits.

No look-ahead by construction: a block's forecasts for days ``t0 .. t1-1`` are computed from a
frame that physically ends at day ``t1-2`` (the day before the last target), and parameters come
from days ``< t0``. :func:`rolling_forecasts` on a truncated frame reproduces the forecasts of the
full run, which the tests check.

Baselines from ``arch`` with the same schedule: GARCH(1,1)-t, GJR-GARCH(1,1,1)-t, EGARCH(1,1,1)-t
(constant mean), EWMA (RiskMetrics, lambda 0.94, zero mean) and a HAR regression of squared
returns on their 1-, 5- and 22-day averages (OLS with ``arch``'s HARX). Each variance forecast is of
the second moment ``E[r^2]`` (``mu^2 + h`` with a mean model), the target of the squared-return proxy.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from tqdm.auto import tqdm

from genforge.finance.data import return_frame
from genforge.finance.volatility.stats_tests import (
    diebold_mariano,
    model_confidence_set,
    mse_loss,
    qlike_loss,
    var_backtest,
)
from genforge.finance.volatility.var_feedback import (
    DEFAULT_RATE,
    adaptive_var,
    distribution_var,
    has_distribution,
    level_column,
)

VAR_LEVELS: tuple[float, ...] = (0.01, 0.05)
INITIAL = 1000
REFIT_EVERY = 20


def var_column(alpha: float) -> str:
    """Column name of the VaR forecast at level ``alpha`` (``var_1`` for 1%)."""
    return f"var_{round(alpha * 100):d}"


class RollingModel:
    """Interface of a model in the rolling protocol.

    ``fit_forecast(frame, t0)``: fit on ``frame.iloc[:t0]`` (returns in ``frame["return"]``, ranges
    in ``parkinson`` / ``garman_klass``) and return one row per target day ``t0 .. len(frame)``
    (the last one is the day after the frame) with columns ``variance`` and ``var_1`` / ``var_5``
    (VaR as positive numbers). Row ``k`` may only use ``frame.iloc[:t0 + k]``. A model may keep
    state between calls (warm starts) as long as it only comes from earlier, shorter windows.
    """

    name = "model"

    def fit_forecast(self, frame: pd.DataFrame, t0: int) -> pd.DataFrame:  # pragma: no cover
        raise NotImplementedError


class ArchBaseline(RollingModel):
    """A univariate ``arch`` model refitted on the window and filtered with fixed parameters."""

    def __init__(
        self,
        name: str,
        vol: str = "GARCH",
        p: int = 1,
        o: int = 0,
        q: int = 1,
        dist: str = "t",
        mean: str = "Constant",
    ) -> None:
        self.name, self.vol, self.p, self.o, self.q, self.dist, self.mean = name, vol, p, o, q, dist, mean
        self._start: np.ndarray | None = None

    def _model(self, y: np.ndarray) -> Any:
        from arch import arch_model

        if self.vol == "EWMA":
            from arch.univariate import EWMAVariance, Normal, ZeroMean

            return ZeroMean(y, volatility=EWMAVariance(0.94), distribution=Normal())
        return arch_model(
            y, mean=self.mean, vol=self.vol, p=self.p, o=self.o, q=self.q, dist=self.dist, rescale=False
        )

    def fit_forecast(self, frame: pd.DataFrame, t0: int) -> pd.DataFrame:
        y = frame["return"].to_numpy(dtype=float)
        model = self._model(y)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = model.fit(last_obs=t0, disp="off", starting_values=self._start, show_warning=False)
            if res.convergence_flag != 0 and self._start is not None:  # a bad warm start: fit afresh
                res = model.fit(last_obs=t0, disp="off", show_warning=False)
        self._start = np.asarray(res.params)
        fc = res.forecast(horizon=1, start=t0 - 1, reindex=False)
        mean = fc.mean.to_numpy()[:, 0]
        h = fc.variance.to_numpy()[:, 0]
        out = pd.DataFrame({"variance": h + mean**2})
        dist_params = (
            np.asarray(res.params)[-model.distribution.num_params :]
            if model.distribution.num_params
            else None
        )
        for alpha in VAR_LEVELS:
            q = float(model.distribution.ppf(alpha, dist_params))
            out[var_column(alpha)] = -(mean + np.sqrt(h) * q)
        if self.vol == "EWMA" or self.dist == "normal":
            shape = (math.inf, 0.0)
        elif self.dist in ("t", "skewt"):  # arch's parameters: nu (t), nu and lambda (skewt)
            shape = (float(dist_params[0]), float(dist_params[1]) if self.dist == "skewt" else 0.0)
        else:  # a distribution exception feedback cannot read (e.g. GED)
            return out
        return _with_distribution(out, np.sqrt(h), mean / np.sqrt(h), *shape)


class HARBaseline(RollingModel):
    """HAR of squared returns: ``r^2_{t+1} = b0 + b1 r^2_t + b5 avg5 + b22 avg22`` by OLS (arch HARX).

    Forecasts are floored at 1% of the window's mean squared return (OLS can go negative); VaR
    uses a normal distribution with the forecast variance.
    """

    name = "har"

    def fit_forecast(self, frame: pd.DataFrame, t0: int) -> pd.DataFrame:
        from arch.univariate import HARX

        r2 = frame["return"].to_numpy(dtype=float) ** 2
        model = HARX(r2, lags=[1, 5, 22], rescale=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = model.fit(last_obs=t0, disp="off")
        h = res.forecast(horizon=1, start=t0 - 1, reindex=False).mean.to_numpy()[:, 0]
        h = np.maximum(h, 0.01 * r2[:t0].mean())
        out = pd.DataFrame({"variance": h})
        for alpha in VAR_LEVELS:
            out[var_column(alpha)] = -np.sqrt(h) * stats.norm.ppf(alpha)
        return _with_distribution(out, np.sqrt(h), 0.0, math.inf, 0.0)


def _with_distribution(out: pd.DataFrame, sd: Any, loc: Any, nu: float, lam: float) -> pd.DataFrame:
    """Add the next-day return distribution (skewed t; Student t for ``lam`` 0, normal for ``nu`` inf)
    in the columns exception feedback reads (:mod:`genforge.finance.volatility.var_feedback`)."""
    out["volatility"] = sd
    out["eta_loc"] = loc
    out["eta_scale"] = 1.0
    out["eta_nu"] = nu
    out["eta_lambda"] = lam
    return out


def baseline_models() -> list[RollingModel]:
    """The five baselines of the protocol, freshly constructed."""
    return [
        ArchBaseline("garch_t", "GARCH", 1, 0, 1),
        ArchBaseline("gjr_t", "GARCH", 1, 1, 1),
        ArchBaseline("egarch_t", "EGARCH", 1, 1, 1),
        ArchBaseline("ewma", "EWMA"),
        HARBaseline(),
    ]


def _run_blocks(
    model: RollingModel, frame: pd.DataFrame, starts: Sequence[int], refit_every: int, progress: bool = False
) -> list[pd.DataFrame]:
    """Fit-and-filter blocks starting at ``starts`` (in order), each from the frame cut at its end."""
    n = len(frame)
    blocks = []
    for t0 in tqdm(starts, desc=model.name, disable=not progress, leave=False):
        t1 = min(t0 + refit_every, n + 1)
        block = model.fit_forecast(frame.iloc[: t1 - 1], t0)
        if len(block) != t1 - t0:
            raise RuntimeError(f"{model.name}: {len(block)} forecasts for a block of {t1 - t0} days")
        block = block.reset_index(drop=True)
        block["refit"] = np.arange(len(block)) == 0
        blocks.append(block)
    return blocks


def _worker(
    model: RollingModel, frame: pd.DataFrame, starts: list[int], refit_every: int
) -> list[pd.DataFrame]:
    import torch

    torch.set_num_threads(1)
    return _run_blocks(model, frame, starts, refit_every)


def rolling_forecasts(
    model: RollingModel,
    frame: pd.DataFrame,
    initial: int = INITIAL,
    refit_every: int = REFIT_EVERY,
    progress: bool = False,
    jobs: int = 1,
) -> pd.DataFrame:
    """Run ``model`` through the rolling protocol on ``frame`` (from :func:`~.data.return_frame`).

    Returns one row per target day ``initial .. len(frame)`` (positions; the last row is the
    forecast for the day after the data) with the model's columns plus ``refit`` (True on refit
    days). The index holds the target dates (``NaT`` for the day after the data).
    ``jobs > 1`` splits the refits over processes, only for a model whose refits are independent
    (``model.stateful`` False, e.g. the VAE without warm starts); the result is the same.
    """
    n = len(frame)
    if n < initial + 1:
        raise ValueError(f"{n} returns; the protocol needs more than the initial window of {initial}")
    starts = list(range(initial, n + 1, refit_every))
    if jobs > 1 and not getattr(model, "stateful", True) and len(starts) > 1:
        from concurrent.futures import ProcessPoolExecutor, as_completed

        # Small chunks (about ten per process) so the progress bar moves; the refits are independent,
        # so the result does not depend on how they are split.
        pieces = min(len(starts), 10 * jobs)
        chunks = [[int(t) for t in c] for c in np.array_split(np.asarray(starts), pieces) if len(c)]
        with ProcessPoolExecutor(max_workers=min(jobs, len(chunks))) as pool:
            futures = [pool.submit(_worker, model, frame, c, refit_every) for c in chunks]
            bar = {"total": len(futures), "desc": f"{model.name} refits", "disable": not progress}
            done = tqdm(as_completed(futures), **bar)
            for _ in done:
                pass
            parts = [f.result() for f in futures]
        blocks = [b for part in parts for b in part]
    else:
        blocks = _run_blocks(model, frame, starts, refit_every, progress)
    out = pd.concat(blocks, ignore_index=True)
    rate = float(getattr(model, "feedback_rate", 0.0))
    if rate > 0:  # the feedback state runs through every block, from the first forecast day on
        outcomes = np.append(frame["return"].to_numpy(dtype=float)[initial:], np.nan)
        for a in VAR_LEVELS:
            out[var_column(a)], out[level_column(a)] = adaptive_var(out, outcomes, a, rate)
    dates = list(frame.index[initial:]) + [pd.NaT]
    out.index = pd.DatetimeIndex(dates, name="Date")
    return out


def score_forecasts(
    forecasts: dict[str, pd.DataFrame],
    realized: pd.DataFrame,
    reference: str | None = "vae",
    mcs_size: float = 0.10,
    mcs_reps: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Losses, Diebold-Mariano tests against ``reference``, the MCS and VaR backtests.

    ``forecasts``: model name -> rolling forecasts (rows aligned with ``realized``'s out-of-sample
    days). ``realized``: ``return``, ``parkinson``, ``garman_klass`` on those days.
    """
    r = realized["return"].to_numpy(dtype=float)
    proxies = {
        "r2": r**2,
        "parkinson": realized["parkinson"].to_numpy(float),
        "garman_klass": realized["garman_klass"].to_numpy(float),
    }
    result: dict[str, Any] = {
        "n_days": int(len(r)),
        "start": str(realized.index[0].date()),
        "end": str(realized.index[-1].date()),
    }
    qlike_losses = {}
    for proxy_name, proxy in proxies.items():
        suffix = "" if proxy_name == "r2" else f"_{proxy_name}"
        result[f"qlike{suffix}"] = {}
        result[f"mse{suffix}"] = {}
        for name, fc in forecasts.items():
            h = fc["variance"].to_numpy(dtype=float)
            ql = qlike_loss(h, proxy)
            result[f"qlike{suffix}"][name] = float(np.nanmean(ql))
            result[f"mse{suffix}"][name] = float(mse_loss(h, proxy).mean())
            if proxy_name == "r2":
                qlike_losses[name] = ql
    if reference in forecasts:
        result["dm"] = {}
        for name in forecasts:
            if name == reference:
                continue
            h_ref = forecasts[reference]["variance"].to_numpy(float)
            h_other = forecasts[name]["variance"].to_numpy(float)
            ql_ref, ql_other = qlike_loss(h_ref, proxies["r2"]), qlike_loss(h_other, proxies["r2"])
            ok = np.isfinite(ql_ref) & np.isfinite(ql_other)
            result["dm"][name] = {
                "qlike": diebold_mariano(ql_ref[ok], ql_other[ok]),
                "mse": diebold_mariano(mse_loss(h_ref, proxies["r2"]), mse_loss(h_other, proxies["r2"])),
            }
    losses = pd.DataFrame(qlike_losses).dropna()
    mcs = model_confidence_set(losses, size=mcs_size, reps=mcs_reps, seed=seed)
    result["mcs"] = mcs["members"]
    result["mcs_pvalues"] = mcs["pvalues"]
    result["mcs_size"] = mcs_size
    result["var_tests"] = {
        name: {var_column(a): var_backtest(r, fc[var_column(a)].to_numpy(float), a) for a in VAR_LEVELS}
        for name, fc in forecasts.items()
    }
    result["var_feedback"] = feedback_comparison(forecasts, r)
    return result


def feedback_comparison(
    forecasts: dict[str, pd.DataFrame], returns: Any, rate: float = DEFAULT_RATE
) -> dict[str, Any]:
    """VaR backtests of every model that describes its return distribution, at the fixed level
    (``static``) and with exception feedback at ``rate`` (``feedback``), the same days for all.

    Shows what the feedback does to each model, baselines included, so that a VaR that passes is
    not mistaken for a better variance or tail model.
    """
    r = np.asarray(returns, dtype=float)
    out: dict[str, Any] = {"rate": rate, "static": {}, "feedback": {}}
    for name, fc in forecasts.items():
        if not has_distribution(fc):
            continue
        out["static"][name], out["feedback"][name] = {}, {}
        for a in VAR_LEVELS:
            static = distribution_var(fc, a)
            adapted, _ = adaptive_var(fc, r, a, rate)
            out["static"][name][var_column(a)] = var_backtest(r, static, a)
            out["feedback"][name][var_column(a)] = var_backtest(r, adapted, a)
    return out


def evaluate_volatility(
    prices: pd.DataFrame,
    models: Sequence[RollingModel] | None = None,
    initial: int = INITIAL,
    refit_every: int = REFIT_EVERY,
    reference: str | None = "vae",
    progress: bool = True,
    mcs_reps: int = 1000,
    log: Callable[[str], None] | None = None,
    jobs: int = 1,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """The whole protocol on a price table: forecasts of every model, then :func:`score_forecasts`.

    Returns the JSON-ready result (with ``seconds`` per model) and a table of the out-of-sample
    forecasts (date, return, proxies, one variance and VaR column set per model).
    """
    frame = return_frame(prices)
    models = list(models) if models is not None else baseline_models()
    forecasts: dict[str, pd.DataFrame] = {}
    seconds: dict[str, float] = {}
    for model in models:
        start = time.perf_counter()
        forecasts[model.name] = rolling_forecasts(model, frame, initial, refit_every, progress, jobs).iloc[
            :-1
        ]
        seconds[model.name] = round(time.perf_counter() - start, 1)
        if log is not None:
            log(f"{model.name}: {seconds[model.name]} s")
    realized = frame.iloc[initial:]
    result = score_forecasts(forecasts, realized, reference=reference, mcs_reps=mcs_reps)
    result["protocol"] = {
        "initial": initial,
        "refit_every": refit_every,
        "refits": math.ceil((len(frame) - initial) / refit_every),
        "proxy": "squared daily log return (percent^2)",
    }
    result["seconds"] = seconds
    table = realized.copy()
    for name, fc in forecasts.items():
        table[f"{name}_variance"] = fc["variance"].to_numpy()
        for a in VAR_LEVELS:
            table[f"{name}_{var_column(a)}"] = fc[var_column(a)].to_numpy()
            level = level_column(a)
            if level in fc.columns:
                table[f"{name}_{level}"] = fc[level].to_numpy()
    return result, table.reset_index()


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def format_table(result: dict[str, Any]) -> str:
    """A plain-text table of the headline results (one line per model)."""
    names = list(result["qlike"])
    members = set(result["mcs"])
    lines = [
        f"{'model':<10} {'QLIKE':>8} {'MSE':>9} {'QLIKE-PK':>9} {'QLIKE-GK':>9} {'MCS':>4} "
        f"{'DM-QLIKE p':>10} {'VaR1% hits':>10} {'VaR1% ok':>8} {'VaR5% hits':>10} {'VaR5% ok':>8}"
    ]
    for name in sorted(names, key=lambda n: result["qlike"][n]):
        dm = result.get("dm", {}).get(name, {}).get("qlike")
        dm_text = f"{dm['pvalue']:.4f}" if dm else "-"
        v1, v5 = result["var_tests"][name]["var_1"], result["var_tests"][name]["var_5"]
        lines.append(
            f"{name:<10} {result['qlike'][name]:8.4f} {result['mse'][name]:9.3f} "
            f"{result['qlike_parkinson'][name]:9.4f} {result['qlike_garman_klass'][name]:9.4f} "
            f"{'in' if name in members else 'out':>4} {dm_text:>10} {v1['violations']:>10d} "
            f"{_yes(v1['passed']):>8} {v5['violations']:>10d} {_yes(v5['passed']):>8}"
        )
    feedback = result.get("var_feedback")
    if feedback and feedback["static"]:
        lines += ["", format_feedback_table(feedback, result["n_days"])]
    return "\n".join(lines)


def _hits(test: dict[str, Any]) -> str:
    return f"{test['violations']} {'ok' if test['passed'] else 'FAIL'}"


def format_feedback_table(feedback: dict[str, Any], n_days: int) -> str:
    """VaR exceptions of each model at the fixed level and with exception feedback."""
    lines = [
        f"VaR exceptions at a fixed level and with exception feedback (rate {feedback['rate']}; "
        f"expected {0.01 * n_days:.1f} at 1%, {0.05 * n_days:.1f} at 5%; ok = Kupiec and "
        "Christoffersen pass at 5%)",
        f"{'model':<10} {'1% fixed':>10} {'1% feedback':>12} {'5% fixed':>10} {'5% feedback':>12}",
    ]
    for name in feedback["static"]:
        fixed, adapted = feedback["static"][name], feedback["feedback"][name]
        lines.append(
            f"{name:<10} {_hits(fixed['var_1']):>10} {_hits(adapted['var_1']):>12} "
            f"{_hits(fixed['var_5']):>10} {_hits(adapted['var_5']):>12}"
        )
    return "\n".join(lines)


def holdout_comparison(
    prices: pd.DataFrame,
    test_days: int,
    vae_params: dict[str, Any] | None = None,
    baselines: Sequence[str] = ("garch_t", "gjr_t", "egarch_t"),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One split, fixed parameters: fit every model on all returns before the last ``test_days``
    and forecast those days (the dashboard and the demo; the full protocol refits every 20 days).

    Returns a daily table (``date``, ``return``, ``abs_return``, the VAE's forecast columns and
    ``<baseline>_variance``) and a loss table (one row per model: QLIKE, MSE, 1%/5% VaR hits).
    """
    from genforge.finance.volatility.models import VolatilityForecaster

    frame = return_frame(prices)
    t0 = len(frame) - test_days
    if test_days < 1 or t0 < 250:
        raise ValueError(f"{len(frame)} returns: need >= 250 for fitting before {test_days} test days")
    vae = VolatilityForecaster(**(vae_params or {}))
    forecasts = {"vae": vae.fit_forecast(frame.iloc[:-1], t0)}
    known = {m.name: m for m in baseline_models()}
    for name in baselines:
        forecasts[name] = known[name].fit_forecast(frame.iloc[:-1], t0)
    realized = frame.iloc[t0:]
    r = realized["return"].to_numpy(dtype=float)
    table = forecasts["vae"].copy()
    table.insert(0, "date", realized.index)
    table.insert(1, "return", r)
    table.insert(2, "abs_return", np.abs(r))
    rows = []
    for name, fc in forecasts.items():
        if name != "vae":
            table[f"{name}_variance"] = fc["variance"].to_numpy()
        h = fc["variance"].to_numpy(dtype=float)
        row = {
            "model": name,
            "qlike": float(np.nanmean(qlike_loss(h, r**2))),
            "mse": float(mse_loss(h, r**2).mean()),
        }
        for a in VAR_LEVELS:
            row[f"{var_column(a)} hits"] = int((r < -fc[var_column(a)].to_numpy(dtype=float)).sum())
            row[f"{var_column(a)} expected"] = round(a * len(r), 1)
        rows.append(row)
    losses = pd.DataFrame(rows).sort_values("qlike").reset_index(drop=True)
    return table.reset_index(drop=True), losses
