"""VolatilityForecaster: next-day variance with its predictive distribution, from a conditional VAE.

Design (a hybrid, stated openly):

1. **Base variance** ``b_s``: a GJR-GARCH(1,1,1)-t (``arch``) fitted on the training window only and
   filtered with those fixed parameters, giving at each close ``s`` a forecast of ``E[r_{s+1}^2]``.
   (``base="ewma"`` uses RiskMetrics 0.94 instead, which has no parameters.)
2. **Conditional VAE** (core ``genforge.models.vae.VAE``, ``kind="mlp"``, ``in_features=1``) over the
   log ratio ``y_s = log(r_{s+1}^2 / b_s + delta)`` given features known at the close ``s``:
   the log base level, HAR-style 1/5/22-day averages of ``r^2`` and of the Parkinson range variance
   (relative to ``b_s``) and a leverage term (the negative part of ``r_s / sqrt(b_s)``). The
   Garman-Klass variance is left out on purpose: it uses the Open, which in the bundled S&P 500
   equals the previous Close on most days before 2006, so its meaning changes inside the sample;
   the signed return is left out because GJR already carries the sign asymmetry. The VAE learns
   the whole predictive distribution of the next day's squared return relative to the GARCH
   forecast; the latent variable lets that distribution be non-Gaussian and state-dependent in
   log space (in practice the KL term keeps the latent nearly unused: the spread of ``variance_q*``
   is small and most of the predictive spread is the decoder noise).
3. **Forecast**: the predictive mean ``E[r_{s+1}^2] = b_s E[exp(y) - delta]``, computed exactly over
   the decoder's Gaussian noise and by Monte Carlo over the latent (``n_samples`` draws), then
   multiplied by one scale ``k`` fitted on the training window (the QLIKE-optimal constant
   ``mean(r^2 / forecast)``), which corrects the small bias that a Gaussian decoder leaves in
   ``E[exp(y)]``. Quantiles: of the conditional variance over the latent (``variance_q*``) and of the
   next day's squared return with the decoder noise included (``sq_return_q*``).
4. **VaR**: the predictive return distribution is ``sqrt(forecast) * eta`` with ``eta`` the
   standardised returns of the training window (``r_{s+1} / sqrt(forecast_s)``), so
   ``VaR_alpha = -sqrt(forecast) * q_alpha`` with ``q_alpha`` the ``alpha`` quantile of ``eta``.
   Only the quantile differs between methods; the variance forecasts are the same.

   ``var_method`` picks how that quantile is estimated (:mod:`genforge.finance.volatility.var_methods`:
   ``skewt``, the default, ``fhs`` or ``evt``); ``var_feedback`` (default 0.05 with ``skewt``, 0 = a
   fixed level) learns the level online from the forecaster's own exceptions (adaptive conformal
   inference, :mod:`genforge.finance.volatility.var_feedback`), and ``predict`` then adds
   ``var_level_1`` / ``var_level_5``, the levels used. How these defaults were chosen, and the
   backtests they reach, are in ``docs/results/finance.md``.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from genforge.errors import DataError, GenforgeError
from genforge.estimator import Example, SuiteEstimator, to_numpy
from genforge.finance.data import return_frame
from genforge.finance.volatility.data import FEATURES, HAR_WINDOW, MIN_TRAIN, check_prices, har_features
from genforge.finance.volatility.var_feedback import DEFAULT_RATE, adaptive_var, level_column
from genforge.finance.volatility.var_methods import DEFAULT_VAR_METHOD, VAR_METHODS, eta_quantiles

# Fitted numbers kept in the checkpoint's JSON state (arrays as lists).
_STATE = (
    "scale_",
    "base_params_",
    "cond_mean_",
    "cond_std_",
    "y_mean_",
    "y_std_",
    "calibration_",
    "eta_quantiles_",
    "skewt_params_",
    "n_fit_",
)


class VolatilityForecaster(SuiteEstimator):
    """Next-day variance forecasts (percent^2) with predictive quantiles and VaR, scikit-learn style.

    ``fit(prices)`` / ``predict(prices)`` take validated OHLC tables (see
    :func:`genforge.finance.data.validate_prices`); ``predict`` returns one row per close from which a
    forecast can be made, for the *next* trading day. ``fit_forecast(frame, t0)`` is the rolling
    evaluation interface (:class:`genforge.finance.evaluate.RollingModel`).

    Everything fitted (GARCH parameters, scalers, ``k``, the ``eta`` quantiles, VAE weights) comes from
    the rows passed to ``fit``; ``predict`` only filters. Defaults (latent 2, widths 32-32, 300 AdamW
    steps at lr 1e-3 with a cosine schedule, batch 256) keep the network close to a smooth correction of
    the GARCH forecast: longer training overfits the noisy log squared returns. With ``warm_start=True``
    a later ``fit`` continues from the previous weights for ``warm_steps`` steps instead of starting
    afresh (``vol evaluate`` refits from scratch by default, which also lets the refits run in parallel).
    """

    name = "vae"
    state_version: ClassVar[int] = 2  # 1: the layout before SuiteEstimator ("fitted" beside "params")

    @property
    def feedback_rate(self) -> float:
        """Exception-feedback rate of the VaR in use (:mod:`genforge.finance.volatility.var_feedback`):
        ``var_feedback``, or when it is None 0.05 with ``skewt`` and 0 (a fixed level) with ``fhs`` /
        ``evt``, which have no quantile at an arbitrary level here."""
        if self.var_feedback is None:
            return DEFAULT_RATE if self.var_method == "skewt" else 0.0
        return float(self.var_feedback)

    @property
    def stateful(self) -> bool:
        """Whether a refit depends on earlier fits (warm starts): then refits must run in order."""
        return self.warm_start

    def __init__(
        self,
        base: str = "gjr",
        latent_dim: int = 2,
        hidden: tuple[int, ...] = (32, 32),
        steps: int = 300,
        warm_steps: int = 100,
        batch_size: int = 256,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        beta: float = 1.0,
        delta: float = 0.1,
        n_samples: int = 256,
        quantiles: tuple[float, ...] = (0.05, 0.5, 0.95),
        var_levels: tuple[float, ...] = (0.01, 0.05),
        var_method: str = DEFAULT_VAR_METHOD,
        var_feedback: float | None = None,
        warm_start: bool = False,
        seed: int = 0,
        device: str = "auto",
    ) -> None:
        self.base = base
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.steps = steps
        self.warm_steps = warm_steps
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.beta = beta
        self.delta = delta
        self.n_samples = n_samples
        self.quantiles = quantiles
        self.var_levels = var_levels
        self.var_method = var_method
        self.var_feedback = var_feedback
        self.warm_start = warm_start
        self.seed = seed
        self.device = device

    # ------------------------------------------------------------------ public API
    def fit(self, prices: pd.DataFrame) -> VolatilityForecaster:
        """Fit on every day of ``prices`` (a validated OHLC table with a DatetimeIndex)."""
        frame = return_frame(check_prices(prices))
        return self.fit_frame(frame)

    def predict(self, prices: pd.DataFrame) -> pd.DataFrame:
        """Forecasts for the trading day after each close of ``prices`` (from the 23rd close on).

        Columns: ``date`` (the close the forecast is made at), ``variance`` (predictive mean of the
        next day's squared return, percent^2), ``volatility`` (its square root), ``variance_q*``
        (quantiles of the conditional variance), ``sq_return_q*`` (quantiles of the next day's
        squared return), ``var_1`` / ``var_5`` (VaR as positive percent returns) and
        ``base_variance`` (the GARCH-family forecast the VAE corrects).
        """
        self._check_fitted()
        frame = return_frame(check_prices(prices))
        out = self.predict_frame(frame, start=HAR_WINDOW - 1)
        out.insert(0, "date", frame.index[HAR_WINDOW - 1 :])
        return out.reset_index(drop=True)

    def fit_forecast(self, frame: pd.DataFrame, t0: int) -> pd.DataFrame:
        """Rolling protocol: fit on ``frame.iloc[:t0]``, forecast days ``t0 .. len(frame)``."""
        self.fit_frame(frame.iloc[:t0])
        return self.predict_frame(frame, start=t0 - 1)

    # ------------------------------------------------------------------ fitting
    def fit_frame(self, frame: pd.DataFrame) -> VolatilityForecaster:
        """Fit on a return frame (``return``, ``parkinson``, ``garman_klass`` columns)."""
        from genforge.models.vae import VAE, VAEConfig
        from genforge.training import TrainConfig, Trainer

        n = len(frame)
        if self.var_method not in VAR_METHODS:
            raise GenforgeError(
                f"VolatilityForecaster.var_method: expected one of {VAR_METHODS}, got {self.var_method!r}"
            )
        rate = self.feedback_rate
        if rate < 0 or (rate > 0 and self.var_method != "skewt"):
            raise GenforgeError(
                f"VolatilityForecaster.var_feedback={self.var_feedback}: exception feedback needs a rate "
                f">= 0 and var_method='skewt' (a quantile at any level), got var_method={self.var_method!r}; "
                "use var_feedback=0 with fhs / evt"
            )
        if n < MIN_TRAIN:
            raise DataError(f"prices: {n} returns to fit on; at least {MIN_TRAIN} are needed")
        r = frame["return"].to_numpy(dtype=float)
        self.scale_ = float(np.mean(r**2))
        self.base_params_ = self._fit_base(r)
        base = self._base_variance(r)
        feats = har_features(frame, base, self.delta, self.scale_)
        rows = np.arange(HAR_WINDOW - 1, n - 1)  # origins with a known next-day return
        x_cond = feats[rows]
        target = np.log(r[rows + 1] ** 2 / base[rows] + self.delta)
        self.cond_mean_ = x_cond.mean(0)
        self.cond_std_ = x_cond.std(0) + 1e-8
        self.y_mean_ = float(target.mean())
        self.y_std_ = float(target.std() + 1e-8)
        # The Trainer moves each batch to the model's device.
        cond_t = torch.as_tensor((x_cond - self.cond_mean_) / self.cond_std_, dtype=torch.float32)
        y_t = torch.as_tensor(((target - self.y_mean_) / self.y_std_)[:, None], dtype=torch.float32)

        warm = self.warm_start and getattr(self, "model_", None) is not None
        if not warm:
            torch.manual_seed(self.seed)
            config = VAEConfig(
                kind="mlp",
                in_features=1,
                cond_dim=len(FEATURES),
                latent_dim=self.latent_dim,
                hidden=tuple(self.hidden),
                beta=self.beta,
            )
            self.model_ = VAE(config)
        steps = self.warm_steps if warm else self.steps
        cfg = TrainConfig(
            max_steps=steps,
            batch_size=min(self.batch_size, len(rows)),
            lr=self.lr,
            weight_decay=self.weight_decay,
            progress=False,
            val_every=None,
            seed=self.seed,
            device=self.device,
            precision="fp32",
            lr_schedule="cosine",
        )
        result = Trainer(cfg).fit(self.model_, (y_t, cond_t))
        self.model_.eval()
        self.train_history_ = result.history
        self.n_fit_ = n

        # In-sample calibration of the mean (one scale) and the standardised returns for VaR.
        self.calibration_ = 1.0
        mean_ratio, _, _ = self._predict_ratio(feats[rows], n_draws=0)
        raw = base[rows] * mean_ratio
        self.calibration_ = float(np.mean(r[rows + 1] ** 2 / raw))
        eta = r[rows + 1] / np.sqrt(raw * self.calibration_)
        quantiles, self.skewt_params_ = eta_quantiles(eta, self.var_levels, self.var_method)
        self.eta_quantiles_ = {str(a): q for a, q in quantiles.items()}
        return self

    def _fit_base(self, r: np.ndarray) -> list[float]:
        if self.base == "ewma":
            return []
        if self.base != "gjr":
            raise GenforgeError(f"VolatilityForecaster.base: expected 'gjr' or 'ewma', got {self.base!r}")
        from arch import arch_model

        start = getattr(self, "base_params_", None) if self.warm_start else None
        model = arch_model(r, mean="Constant", vol="GARCH", p=1, o=1, q=1, dist="t", rescale=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = model.fit(
                disp="off", starting_values=np.asarray(start) if start else None, show_warning=False
            )
            if res.convergence_flag != 0 and start:
                res = model.fit(disp="off", show_warning=False)
        return [float(p) for p in res.params]

    def _base_variance(self, r: np.ndarray) -> np.ndarray:
        """``b[s]``: the base forecast of ``E[r_{s+1}^2]`` made at close ``s`` (fixed parameters)."""
        if self.base == "ewma":
            out = np.empty_like(r)
            level = float(np.mean(r[: min(75, len(r))] ** 2))
            for i, value in enumerate(r):
                level = 0.94 * level + 0.06 * value**2
                out[i] = level
            return out
        from arch import arch_model

        model = arch_model(r, mean="Constant", vol="GARCH", p=1, o=1, q=1, dist="t", rescale=False)
        fixed = model.fix(np.asarray(self.base_params_))
        fc = fixed.forecast(horizon=1, start=0, reindex=False)
        return fc.variance.to_numpy()[:, 0] + fc.mean.to_numpy()[:, 0] ** 2

    # ------------------------------------------------------------------ prediction
    @torch.no_grad()
    def _predict_ratio(self, feats: np.ndarray, n_draws: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Predictive quantities of ``R = r_{s+1}^2 / b_s`` for each feature row.

        Returns the mean (before calibration), quantiles of the conditional mean ratio over the
        latent ([n, len(quantiles)]) and, when ``n_draws > 0``, quantiles of ``R`` itself.
        """
        model = self.model_
        cond = self._tensor((feats - self.cond_mean_) / self.cond_std_)
        n, s = cond.shape[0], self.n_samples
        gen = torch.Generator().manual_seed(self.seed + 1)  # on the CPU: the same draws on any device
        z = torch.randn(s, self.latent_dim, generator=gen).to(cond.device)
        sigma = float(model.log_sigma.clamp(-6.0, 3.0).exp()[0]) * self.y_std_
        means = np.empty(n)
        q_var = np.empty((n, len(self.quantiles)))
        q_obs = np.empty((n, len(self.quantiles)))
        chunk = max(1, 65536 // s)
        for i in range(0, n, chunk):
            c = cond[i : i + chunk]
            m = c.shape[0]
            mu = to_numpy(model.decode(z.repeat(m, 1), c.repeat_interleave(s, 0)).view(m, s).double())
            mu = mu * self.y_std_ + self.y_mean_
            cond_ratio = np.maximum(np.exp(mu + 0.5 * sigma**2) - self.delta, 1e-6)
            means[i : i + m] = cond_ratio.mean(1)
            q_var[i : i + m] = np.quantile(cond_ratio, self.quantiles, axis=1).T
            if n_draws:
                noise = torch.randn(m, s, generator=gen).double().numpy() * sigma
                draws = np.maximum(np.exp(mu + noise) - self.delta, 0.0)
                q_obs[i : i + m] = np.quantile(draws, self.quantiles, axis=1).T
        return np.maximum(means, 1e-3), q_var, q_obs

    def predict_frame(self, frame: pd.DataFrame, start: int) -> pd.DataFrame:
        """Forecasts made at closes ``start .. len(frame)-1`` (for the days after them)."""
        self._check_fitted()
        if start < HAR_WINDOW - 1:
            raise DataError(f"prices: forecasts need {HAR_WINDOW} returns of history before the first one")
        r = frame["return"].to_numpy(dtype=float)
        base = self._base_variance(r)
        feats = har_features(frame, base, self.delta, self.scale_)[start:]
        b = base[start:]
        mean_ratio, q_var, q_obs = self._predict_ratio(feats, n_draws=1)
        variance = b * mean_ratio * self.calibration_
        out = pd.DataFrame({"variance": variance, "volatility": np.sqrt(variance)})
        for j, q in enumerate(self.quantiles):
            out[f"variance_q{round(q * 100):02d}"] = b * q_var[:, j] * self.calibration_
        for j, q in enumerate(self.quantiles):
            out[f"sq_return_q{round(q * 100):02d}"] = b * q_obs[:, j]
        for a in self.var_levels:
            out[f"var_{round(a * 100):d}"] = -np.sqrt(variance) * self.eta_quantiles_[str(a)]
        out["base_variance"] = b
        params = getattr(self, "skewt_params_", None)
        if params is not None:
            out["eta_loc"], out["eta_scale"] = params["loc"], params["scale"]
            out["eta_nu"], out["eta_lambda"] = params["nu"], params["lam"]
        if self.feedback_rate > 0:
            outcomes = np.append(r[start + 1 :], np.nan)  # row k forecasts the return of day start+k+1
            for a in self.var_levels:
                var, levels = adaptive_var(out, outcomes, a, self.feedback_rate)
                out[f"var_{round(a * 100):d}"] = var
                out[level_column(a)] = levels
        return out

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> dict[str, Any]:
        return {key: getattr(self, key, None) for key in _STATE}

    def _set_state(self, state: dict[str, Any], directory: Path) -> None:
        for key in _STATE:
            value = state.get(key)
            setattr(self, key, np.asarray(value) if key in ("cond_mean_", "cond_std_") else value)

    @classmethod
    def _upgrade(cls, version: int, extra: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Version 1 (before SuiteEstimator) kept the fitted numbers under ``fitted``; checkpoints from
        before exception feedback have no ``var_feedback``: they used a fixed level."""
        params = dict(extra.get("params") or {})
        if version == 1:
            params.setdefault("var_feedback", 0.0)
            return params, dict(extra.get("fitted") or {})
        return params, dict(extra.get("state") or {})

    @classmethod
    def example(cls) -> Example:
        """The last 400 days of the bundled S&P 500, a 40-step VAE on the EWMA base (seconds)."""
        from genforge.finance.data import load_sp500

        prices = load_sp500().iloc[-400:]
        return Example(
            params={"steps": 40, "n_samples": 32, "base": "ewma"},
            fit_args=(prices,),
            probe=lambda est: est.predict(prices.iloc[-60:])[["variance", "var_1"]].to_numpy(),
        )
