"""SpaceGAN: a conditional GAN whose condition is each point's neighbourhood
(Klemmer, Koshiyama & Flennerhag 2019).

The condition of point i is its covariates and coordinates plus, for each of its k nearest neighbours, the
neighbour's covariates, target values and offset from i (standardised). The networks are the core's tabular
GAN (``genforge.GAN``) trained by the core engine (``genforge.training.Trainer``); the engine runs in chunks
of ``check_every`` steps (resuming its own state, so the run is the same as an uninterrupted one) and after
each chunk the estimator scores the mean of ``n_draws`` draws at every training point:

- **MIE**: RMSE between the local Moran's I of the real target and of the mean of the draws (kNN weights);
- **RMSE** of the mean of the draws against the real target (original units).

The weights with the lowest MIE (``select="mie"``, the default) or RMSE are kept — the paper's two criteria.

Beyond the paper (``SpaceGAN()`` defaults; ``SpaceGAN.original()`` gives the paper's configuration): the
non-saturating loss with two hidden layers of 64, Adam at 1e-3, and a supervised term on the generator
(``mean_weight``): the squared error between the real target and the mean of ``mean_draws`` draws for the
same condition. It pulls the *mean* of the conditional distribution onto the data (as the L1 term of pix2pix
does) while the adversarial loss shapes the spread of single draws. (Chosen on toy1 at 1,000 steps against
WGAN-GP with 1 or 5 critic steps, see docs/results/geo.md.) That term makes single draws too narrow (on
California their spread about the mean was a tenth of the real residuals'), so after fit ``spread_`` scales
each draw's distance from the draws' mean until the draws' variance about it matches the real targets'
mean squared residual at the training points (``noise="match"``; "raw" keeps 1). At new points
:meth:`SpaceGAN.set_interval` (split conformal, e.g. on held-out blocks) sets the draws' interval instead.

The core GAN's extension point for extra generator terms (``GAN.extra_generator_loss``) receives the fakes
and their conditions but not the real batch, which this term needs; so :class:`SpaceGANNet` overrides
``generator_loss`` only, calling the core's (adversarial loss + extra terms) and adding its own term.
"""

from __future__ import annotations

import copy
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from genforge.errors import DataError
from genforge.estimator import Example, SuiteEstimator, to_numpy
from genforge.geo.data import SpatialData, prepare
from genforge.geo.spatial import knn_indices, local_moran_torch, sparse_weights, weights
from genforge.models.gan import GAN, GANConfig
from genforge.registry import register_model

SELECT = ("mie", "rmse")
INTERVAL_SCORES = ("abs", "local", "oof")
OOF_NEIGHBOURS = 16  # training points whose out-of-fold errors set the "oof" scale
NOISE = ("match", "raw")


@dataclass
class SpaceGANConfig(GANConfig):
    """The core GAN's config plus the supervised mean-of-draws term (0 = the plain adversarial loss)."""

    mean_weight: float = 0.0
    mean_draws: int = 8


@register_model("spacegan")
class SpaceGANNet(GAN):
    """The core tabular GAN; the generator's loss gains ``mean_weight`` x MSE(mean of draws, real)."""

    config_class = SpaceGANConfig

    def generator_loss(self, batch) -> dict[str, torch.Tensor]:
        out = super().generator_loss(batch)
        c = self.config
        if c.mean_weight <= 0:
            return out
        real, cond = self.split_batch(batch)
        m = max(1, int(c.mean_draws))
        fake = self.generate(real.shape[0] * m, cond.repeat(m, 1)).view(m, real.shape[0], -1)
        mean_loss = ((fake.mean(0) - real) ** 2).mean()
        out["loss"] = out["loss"] + c.mean_weight * mean_loss
        out["mean_mse"] = mean_loss.detach()
        return out


class Neighbourhood:
    """Standardised SpaceGAN conditions for query points, from a reference (training) layer."""

    def __init__(
        self, xy: np.ndarray, x: np.ndarray, y: np.ndarray, k: int, use_neighbours: bool, use_coords: bool
    ) -> None:
        self.xy, self.x, self.y = xy, x, y
        self.k, self.use_neighbours, self.use_coords = k, use_neighbours, use_coords
        self.xy_mean, self.xy_scale = xy.mean(0), float(xy.std(0).mean()) or 1.0
        self.x_mean, self.x_std = x.mean(0), np.where(x.std(0) > 0, x.std(0), 1.0)
        self.y_mean, self.y_std = y.mean(0), np.where(y.std(0) > 0, y.std(0), 1.0)

    @property
    def dim(self) -> int:
        c, t = self.x.shape[1], self.y.shape[1]
        own = c + (2 if self.use_coords else 0)
        return own + (self.k * (c + t + (2 if self.use_coords else 0)) if self.use_neighbours else 0)

    def condition(self, xy: np.ndarray | None = None, x: np.ndarray | None = None) -> np.ndarray:
        """[Q, dim] conditions; None = the reference points themselves (each without itself as neighbour)."""
        if xy is None:
            xy, x = self.xy, self.x
            idx = knn_indices(self.xy, self.k) if self.use_neighbours else None
        else:
            idx = self._neighbours_of(xy) if self.use_neighbours else None
        parts = [(x - self.x_mean) / self.x_std]
        if self.use_coords:
            parts.append((xy - self.xy_mean) / self.xy_scale)
        if idx is not None:
            nx = (self.x[idx] - self.x_mean) / self.x_std  # [Q, k, C]
            ny = (self.y[idx] - self.y_mean) / self.y_std  # [Q, k, T]
            blocks = [nx, ny]
            if self.use_coords:
                blocks.append((self.xy[idx] - xy[:, None, :]) / self.xy_scale)
            parts.append(np.concatenate(blocks, 2).reshape(len(xy), -1))
        return np.concatenate(parts, 1).astype(np.float32)

    def _neighbours_of(self, xy: np.ndarray, k: int | None = None) -> np.ndarray:
        """k (default: the model's) nearest reference points of each query, never one at the query's own
        location."""
        from scipy.spatial import cKDTree

        k = min(self.k if k is None else k, len(self.xy) - 1)
        dist, idx = cKDTree(self.xy).query(xy, k=k + 1)
        keep = dist > 1e-12
        out = np.empty((len(xy), k), dtype=np.int64)
        for i in range(len(xy)):
            out[i] = idx[i][keep[i]][:k]
        return out

    def state(self) -> dict[str, Any]:
        return {"k": self.k, "use_neighbours": self.use_neighbours, "use_coords": self.use_coords}


class SpaceGAN(SuiteEstimator):
    """Spatial data augmentation that keeps local spatial autocorrelation (see the module docstring).

    ``fit(frame, target=, coords=, covariates=)`` (a DataFrame or a :class:`SpatialData`);
    ``sample(n_per_point=K)`` gives a long frame with K generated rows per point and a ``draw`` column.
    """

    state_version = 1

    def __init__(
        self,
        k: int = 8,
        use_neighbours: bool = True,
        use_coords: bool = True,
        loss: str = "ns",
        hidden: tuple[int, ...] = (64, 64),
        latent_dim: int = 8,
        n_critic: int = 1,
        lr: float = 1e-3,
        batch_size: int = 100,
        max_steps: int = 2000,
        check_every: int = 100,
        n_draws: int = 20,
        select: str = "mie",
        mean_weight: float = 1.0,
        mean_draws: int = 8,
        noise: str = "match",
        seed: int = 0,
        device: str = "auto",
        progress: bool = True,
    ) -> None:
        self.k = k
        self.use_neighbours = use_neighbours
        self.use_coords = use_coords
        self.loss = loss
        self.hidden = hidden
        self.latent_dim = latent_dim
        self.n_critic = n_critic
        self.lr = lr
        self.batch_size = batch_size
        self.max_steps = max_steps
        self.check_every = check_every
        self.n_draws = n_draws
        self.select = select
        self.mean_weight = mean_weight
        self.mean_draws = mean_draws
        self.noise = noise
        self.seed = seed
        self.device = device
        self.progress = progress

    # ------------------------------------------------------------------ presets
    @classmethod
    def original(cls, **overrides: Any) -> SpaceGAN:
        """The paper's configuration: one hidden layer of 50, BCE (non-saturating) loss, one critic step per
        generator step, lr 0.01, no supervised term. (The core engine's optimiser is
        Adam; the paper's is SGD.)"""
        params = {
            "loss": "ns",
            "hidden": (50,),
            "latent_dim": 1,
            "n_critic": 1,
            "lr": 0.01,
            "mean_weight": 0.0,
            "noise": "raw",
        }
        return cls(**{**params, **overrides})

    @classmethod
    def example(cls) -> Example:
        from genforge.geo.data import baltimore

        data = baltimore()
        params = {
            "k": 4,
            "hidden": (16,),
            "max_steps": 40,
            "check_every": 20,
            "n_draws": 4,
            "n_critic": 2,
            "progress": False,
            "device": "cpu",
        }
        return Example(params, (data,), lambda est: est.sample(n_per_point=2, seed=0)["PRICE"].to_numpy())

    # ------------------------------------------------------------------ fitting
    def _data(
        self, frame: pd.DataFrame | SpatialData, target: Any, coords: Any, covariates: Any, crs: str
    ) -> SpatialData:
        if isinstance(frame, SpatialData):
            return frame
        if not isinstance(frame, pd.DataFrame):
            raise DataError(
                f"SpaceGAN.fit: got {type(frame).__name__}; expected a pandas DataFrame or SpatialData"
            )
        return prepare(frame, target, coords, covariates, crs=crs, k=self.k)

    def _check_params(self, n: int) -> None:
        if self.select not in SELECT:
            raise DataError(f"SpaceGAN select={self.select!r}: expected one of {', '.join(SELECT)}")
        if self.k < 1 or self.k >= n:
            raise DataError(f"SpaceGAN k={self.k}: expected 1 <= k < {n} points")
        if self.check_every < 1 or self.max_steps < 1 or self.n_draws < 1:
            raise DataError("SpaceGAN: max_steps, check_every and n_draws must be positive")
        if self.noise not in NOISE:
            raise DataError(f"SpaceGAN noise={self.noise!r}: expected one of {', '.join(NOISE)}")

    def fit(
        self,
        frame: pd.DataFrame | SpatialData,
        target: str | list[str] | None = None,
        coords: tuple[str, str] | str | None = None,
        covariates: list[str] | str | None = None,
        crs: str = "auto",
        out_dir: str | Path | None = None,
    ) -> SpaceGAN:
        """Train on the point layer; keeps the best-MIE (or best-RMSE) weights of the checks every
        ``check_every`` steps. ``out_dir`` keeps the engine's resumable state, the checks so far and the best
        weights there, so a rerun with the same folder continues where the last one stopped."""
        from tqdm.auto import tqdm

        from genforge.training import TrainConfig, Trainer

        data = self._data(frame, target, coords, covariates, crs)
        self._check_params(len(data))
        self.target_, self.covariates_, self.coords_ = (
            list(data.target),
            list(data.covariates),
            list(data.coords),
        )
        self.crs_, self.lat0_ = data.crs, data.lat0
        self.columns_ = [str(c) for c in data.frame.columns]
        self.frame_ = data.frame.copy()
        self.hood_ = Neighbourhood(data.xy, data.x, data.y, self.k, self.use_neighbours, self.use_coords)
        self._cond = cond = self.hood_.condition()  # the training points' conditions, kept for the checks
        y_std = ((data.y - self.hood_.y_mean) / self.hood_.y_std).astype(np.float32)
        config = SpaceGANConfig(
            kind="tabular",
            loss=self.loss,
            latent_dim=self.latent_dim,
            cond_dim=cond.shape[1],
            hidden=tuple(self.hidden),
            n_critic=self.n_critic,
            in_features=y_std.shape[1],
            mean_weight=self.mean_weight,
            mean_draws=self.mean_draws,
        )
        torch.manual_seed(self.seed)
        self.model_ = net = SpaceGANNet(config)
        self.W_ = sparse_weights(weights(data.xy, f"knn:{self.k}"))
        self.spread_, self.interval_, self.reference_errors_ = 1.0, None, None
        batch = int(min(self.batch_size, len(data)))
        history: list[dict[str, float]] = []
        best: dict[str, tuple[float, int, dict[str, torch.Tensor]]] = {}
        with tempfile.TemporaryDirectory(prefix="spacegan-") as scratch:
            state_dir = Path(out_dir) if out_dir is not None else Path(scratch)
            history, best = _load_selection(state_dir) if out_dir is not None else ([], {})
            step = history[-1]["step"] if history else 0
            if step > self.max_steps:
                raise DataError(
                    f"{state_dir}: holds a run at step {step}, beyond max_steps={self.max_steps}; "
                    f"expected max_steps >= {step} or another folder"
                )
            bar = tqdm(
                total=self.max_steps, initial=step, desc="SpaceGAN", disable=None if self.progress else True
            )
            while step < self.max_steps:
                step = min(step + self.check_every, self.max_steps)
                cfg = TrainConfig(
                    max_steps=step,
                    batch_size=batch,
                    lr=self.lr,
                    seed=self.seed,
                    out_dir=state_dir,
                    progress=False,
                    device=self.device,
                    val_every=None,
                    grad_clip=None,
                )
                Trainer(cfg).fit(net, (torch.from_numpy(y_std), torch.from_numpy(cond)))
                scores = self._score(net)
                history.append({"step": step, **scores})
                for name in SELECT:
                    if name not in best or scores[name] < best[name][0]:
                        best[name] = (scores[name], step, copy.deepcopy(net.state_dict()))
                if out_dir is not None:
                    _save_selection(state_dir, history, best)
                bar.update(step - bar.n)
                bar.set_postfix(mie=f"{scores['mie']:.3g}", rmse=f"{scores['rmse']:.3g}", refresh=False)
            bar.close()
        self.selection_ = history
        self.best_step_ = {name: best[name][1] for name in SELECT}
        self.best_scores_ = {name: next(h for h in history if h["step"] == best[name][1]) for name in SELECT}
        self._best_states = {name: best[name][2] for name in SELECT}
        net.load_state_dict(best[self.select][2])
        net.eval()
        if self.noise == "match":
            self.spread_ = self._matched_spread()
        return self

    def _train_cond(self) -> np.ndarray:
        cond = getattr(self, "_cond", None)
        if cond is None:
            cond = self._cond = self.hood_.condition()
        return cond

    def _matched_spread(self) -> float:
        """The factor that gives single draws at the training points the dispersion the real targets have
        about the draws' mean: sqrt(mean squared residual of the mean / mean variance of the draws), pooled
        over points and targets (standardised units). 1 when the draws do not vary."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed + 11)
            draws = self._draws(self.model_, self._train_cond(), max(self.n_draws, 50), spread=1.0)
        draws = draws / self.hood_.y_std
        var = draws.var(0, ddof=1).mean()
        # the squared residual about a mean of m draws holds var / m of Monte Carlo noise: taken off
        residual = ((self.hood_.y / self.hood_.y_std - draws.mean(0)) ** 2).mean() - var / len(draws)
        return float(np.sqrt(max(residual, 0.0) / var)) if var > 0 and residual > 0 else 1.0

    def _score(self, net: SpaceGANNet) -> dict[str, float]:
        """RMSE and MIE of the mean of ``n_draws`` in-sample draws (fixed noise seed, RNG state untouched)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed + 7)
            draws = self._draws(net, self._train_cond(), self.n_draws, spread=1.0)  # [S, N, T]
        return score_mean(self.hood_.y, draws.mean(0), self.W_)

    def _draws(self, net: SpaceGANNet, cond: np.ndarray, n: int, spread: float | None = None) -> np.ndarray:
        """[n, Q, T] draws in original units, their distance from the draws' mean scaled by ``spread``
        (default ``spread_``; the mean is taken over at least 100 draws, so a single draw is scaled too)."""
        spread = getattr(self, "spread_", 1.0) if spread is None else spread
        m = n if spread == 1.0 else max(n, 100)
        c = torch.as_tensor(cond, dtype=torch.float32, device=next(net.parameters()).device)
        q = len(cond)
        raw = to_numpy(net.sample(m * q, c.repeat(m, 1))).astype(np.float64).reshape(m, q, -1)
        if spread != 1.0:
            centre = raw.mean(0, keepdims=True)
            raw = (centre + spread * (raw - centre))[:n]
        return raw * self.hood_.y_std + self.hood_.y_mean

    def set_spread(self, spread: float) -> SpaceGAN:
        """Scale the draws' spread about their mean by ``spread`` (> 0) from now on (saved with the model)."""
        self._check_fitted()
        if not spread > 0:
            raise DataError(f"set_spread({spread!r}): expected a positive number")
        self.spread_ = float(spread)
        return self

    def local_scale(self, xy: np.ndarray) -> np.ndarray:
        """[Q, T] difficulty of predicting at new points ``xy``: the standard deviation of the targets of
        their k nearest training points, plus a floor (a tenth of the median of the same at the training
        points)."""
        self._check_fitted()
        hood = self.hood_
        sd = hood.y[hood._neighbours_of(np.asarray(xy, float))].std(1)
        floor = 0.1 * np.median(hood.y[knn_indices(hood.xy, hood.k)].std(1), axis=0)
        return sd + np.maximum(floor, 1e-12)

    def set_reference_errors(self, errors: Any) -> SpaceGAN:
        """Out-of-fold absolute errors [N, T] at the training points (each from a model that did not see the
        point's block, e.g. the inner block folds of ``genforge geo evaluate``), in the training order; the
        "oof" interval score scales by their mean over a new point's nearest training points. Saved with
        the model."""
        self._check_fitted()
        errors = np.asarray(errors, float).reshape(len(self.hood_.y), -1)
        if errors.shape != self.hood_.y.shape or not np.all(np.isfinite(errors)) or np.any(errors < 0):
            raise DataError(
                f"set_reference_errors: expected {self.hood_.y.shape} finite errors >= 0, got {errors.shape}"
            )
        self.reference_errors_ = errors
        return self

    def interval_scale(self, xy: np.ndarray, score: str) -> np.ndarray:
        """[Q, T] the scale a score divides the error by at points ``xy``: 1 ("abs"), :meth:`local_scale`
        ("local"), or ("oof") the mean out-of-fold error of the ``OOF_NEIGHBOURS`` nearest training points
        (:meth:`set_reference_errors`) plus a floor of a tenth of their median: wide where the model has
        been wrong nearby when it could not see the data."""
        xy = np.asarray(xy, float)
        if score == "local":
            return self.local_scale(xy)
        if score == "oof":
            errors = getattr(self, "reference_errors_", None)
            if errors is None:
                raise DataError("interval score 'oof': call set_reference_errors(out-of-fold errors) first")
            near = errors[self.hood_._neighbours_of(xy, OOF_NEIGHBOURS)].mean(1)
            return near + np.maximum(0.1 * np.median(errors, axis=0), 1e-12)
        return np.ones((len(xy), len(self.target_)))

    def interval_scores(
        self, frame: pd.DataFrame, n: int = 100, seed: int = 0, score: str = "abs"
    ) -> np.ndarray:
        """[N, T] conformity scores of the real targets of ``frame`` (points this model was *not* fitted on,
        e.g. held-out blocks): ``|y - mean of n draws|``, divided by :meth:`interval_scale` ("local",
        "oof"). Their ``level`` quantile over many such points is the half-width :meth:`set_interval` takes
        (split conformal: :func:`conformal_half_width`)."""
        self._check_fitted()
        if score not in INTERVAL_SCORES:
            raise DataError(f"interval score {score!r}: expected one of {', '.join(INTERVAL_SCORES)}")
        data = self._points(frame, require_target=True)
        cond = self.hood_.condition(data.xy, data.x)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            centre = self._draws(self.model_, cond, n, spread=1.0).mean(0)
        return np.abs(data.y - centre) / self.interval_scale(data.xy, score)

    def set_interval(self, half_width: Any, level: float = 0.9, score: str = "abs") -> SpaceGAN:
        """From now on draws at *new* points (``sample(frame=...)``) are stretched about their mean so that
        their central ``level`` interval is mean +- ``half_width`` (x :meth:`interval_scale`); one
        half-width per target, or one for all. Below and above the mean are stretched separately, so a skewed
        batch of draws still gives exactly the symmetric interval the conformal scores were calibrated for.
        ``None`` switches it off. Draws at the training points keep the fitted model's spread (x
        ``spread_``). Saved with the model."""
        self._check_fitted()
        if half_width is None:
            self.interval_ = None
            return self
        if score not in INTERVAL_SCORES or not 0 < level < 1:
            raise DataError(f"set_interval: score in {INTERVAL_SCORES} and 0 < level < 1 expected")
        if score == "oof" and getattr(self, "reference_errors_", None) is None:
            raise DataError("set_interval(score='oof'): call set_reference_errors(out-of-fold errors) first")
        half = np.broadcast_to(np.asarray(half_width, float), (len(self.target_),))
        if not np.all(half > 0):
            raise DataError(f"set_interval({half_width!r}): expected positive half-widths")
        self.interval_ = {"half": [float(h) for h in half], "level": float(level), "score": score}
        return self

    def calibrate_interval(
        self, frame: pd.DataFrame, level: float = 0.9, n: int = 100, seed: int = 0, score: str = "abs"
    ) -> np.ndarray:
        """Split-conformal calibration on ``frame`` (points the model was not fitted on): sets and returns
        the half-width per target that makes ``level`` of such points fall inside the draws' interval."""
        half = conformal_half_width(self.interval_scores(frame, n=n, seed=seed, score=score), level)
        self.set_interval(half, level, score)
        return half

    def calibrate_blocks(
        self,
        level: float = 0.9,
        score: str = "local",
        blocks: int = 4,
        folds: int = 4,
        n: int = 100,
        seed: int = 0,
        draw_seed: int | None = None,
        max_steps: int | None = None,
        layout: str = "kmeans",
    ) -> BlockScores:
        """Calibrate the interval at new points with no data set aside: ``folds`` models with this model's
        parameters are fitted on block folds (``layout``: :func:`block_ids`) of its own training points
        (:func:`block_cross_scores`); the
        pooled out-of-fold scores give the conformal half-width (:func:`conformal_half_width`) that this
        model, fitted on all the points, then uses (:meth:`set_interval`); the out-of-fold errors become the
        reference errors of the "oof" score. Costs ``folds`` more fits (of ``max_steps``, default this
        model's). This model saw every block the fold models missed one of, so it errs less than they did
        at a new point and the interval tends to be conservative (see docs/results/geo.md)."""
        self._check_fitted()
        if score not in INTERVAL_SCORES or not 0 < level < 1:
            raise DataError(f"calibrate_blocks: score in {INTERVAL_SCORES} and 0 < level < 1 expected")
        data = prepare(
            self.frame_,
            self.target_,
            tuple(self.coords_),
            self.covariates_,
            crs=self.crs_,
            k=self.k,
            source="<training points>",
            duplicates="keep",
            lat0=getattr(self, "lat0_", None),
        )
        cal = block_cross_scores(data, self, blocks, folds, seed, n, draw_seed, max_steps, layout)
        self.set_reference_errors(cal.errors)
        self.set_interval(conformal_half_width(cal.scores[score], level), level, score)
        return cal

    def use_checkpoint(self, criterion: str) -> SpaceGAN:
        """Switch to the best-``criterion`` weights of the last fit ("mie" or "rmse"; in memory only)."""
        self._check_fitted()
        states = getattr(self, "_best_states", None)
        if criterion not in SELECT or not states:
            raise DataError(
                f"use_checkpoint({criterion!r}): expected one of {SELECT} after fit (not after load)"
            )
        self.model_.load_state_dict(states[criterion])
        return self

    # ------------------------------------------------------------------ sampling
    def sample_array(
        self, n_per_point: int, frame: pd.DataFrame | None = None, seed: int | None = None
    ) -> np.ndarray:
        """Draws [K, N, T] at the training points (``frame=None``, each conditioned on its neighbours) or at
        new points of ``frame`` (conditioned on their nearest training points)."""
        self._check_fitted()
        if n_per_point < 1:
            raise DataError(f"sample: n_per_point={n_per_point}; expected >= 1")
        self.model_.eval()
        interval = getattr(self, "interval_", None)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed if seed is None else seed)
            if frame is None:
                return self._draws(self.model_, self._train_cond(), n_per_point)
            data = self._points(frame, require_target=False)
            cond = self.hood_.condition(data.xy, data.x)
            if interval is None:
                return self._draws(self.model_, cond, n_per_point)
            # stretch each point's draws about their mean to the calibrated interval (mean and width taken
            # from at least 100 draws, so that a single draw is stretched too)
            raw = self._draws(self.model_, cond, max(n_per_point, 100), spread=1.0)
        centre = raw.mean(0)
        tail = (1 - interval["level"]) / 2
        lo, hi = np.quantile(raw, [tail, 1 - tail], axis=0)
        width = np.asarray(interval["half"])[None] * self.interval_scale(data.xy, interval["score"])
        tiny = 1e-12 * self.hood_.y_std
        below = width / np.maximum(centre - lo, tiny)  # lo -> centre - width
        above = width / np.maximum(hi - centre, tiny)  # hi -> centre + width
        return (centre + np.where(raw < centre, below, above) * (raw - centre))[:n_per_point]

    def _points(self, frame: pd.DataFrame, require_target: bool) -> SpatialData:
        """New points in the fitted model's columns and CRS, lon/lat projected about the training points'
        reference latitude (all rows kept)."""
        return prepare(
            frame,
            self.target_ if require_target else None,
            tuple(self.coords_),
            self.covariates_,
            crs=self.crs_,
            k=0,
            source="<frame>",
            require_target=require_target,
            duplicates="keep",
            lat0=getattr(self, "lat0_", None),
        )

    def sample(
        self, n_per_point: int = 1, frame: pd.DataFrame | None = None, seed: int | None = None
    ) -> pd.DataFrame:
        """Long frame: ``n_per_point`` rows per point with the targets generated, plus ``draw`` (0..K-1)."""
        draws = self.sample_array(n_per_point, frame, seed)
        base = (self.frame_ if frame is None else frame).reset_index(drop=True)
        parts = []
        for d in range(n_per_point):
            part = base.copy()
            for t, name in enumerate(self.target_):
                part[name] = draws[d, :, t]
            part["draw"] = d
            parts.append(part)
        return pd.concat(parts, ignore_index=True)

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> dict[str, Any]:
        return {
            "target": self.target_,
            "covariates": self.covariates_,
            "coords": self.coords_,
            "crs": self.crs_,
            "lat0": getattr(self, "lat0_", None),
            "columns": self.columns_,
            "spread": self.spread_,
            "interval": self.interval_,
            "selection": self.selection_,
            "best_step": self.best_step_,
        }

    def _save_files(self, directory: Path) -> None:
        arrays = {
            f"col_{i}": self.frame_[c].to_numpy()
            for i, c in enumerate(self.columns_)
            if pd.api.types.is_numeric_dtype(self.frame_[c])
        }
        errors = getattr(self, "reference_errors_", None)
        if errors is not None:
            arrays["reference_errors"] = errors
        self._save_arrays(directory / "points.safetensors", {k: np.asarray(v) for k, v in arrays.items()})

    def _set_state(self, state: dict[str, Any], directory: Path) -> None:
        self.target_, self.covariates_ = list(state["target"]), list(state["covariates"])
        self.coords_, self.crs_, self.columns_ = list(state["coords"]), state["crs"], list(state["columns"])
        self.spread_, self.selection_, self.best_step_ = (
            float(state["spread"]),
            state["selection"],
            state["best_step"],
        )
        self.interval_ = state.get("interval")
        arrays = self._load_arrays(directory / "points.safetensors")
        self.frame_ = pd.DataFrame(
            {c: arrays[f"col_{i}"] for i, c in enumerate(self.columns_) if f"col_{i}" in arrays}
        )
        data = prepare(
            self.frame_,
            self.target_,
            tuple(self.coords_),
            self.covariates_,
            crs=self.crs_,
            k=0,
            source=str(directory),
            duplicates="keep",
            lat0=state.get("lat0"),  # older saves: None, the training frame's mean latitude, as at fit
        )
        self.lat0_ = data.lat0
        self.hood_ = Neighbourhood(data.xy, data.x, data.y, self.k, self.use_neighbours, self.use_coords)
        self.W_ = sparse_weights(weights(data.xy, f"knn:{self.k}"))
        self.reference_errors_ = (
            np.asarray(arrays["reference_errors"], float) if "reference_errors" in arrays else None
        )


def _save_selection(directory: Path, history: list[dict[str, float]], best: dict[str, Any]) -> None:
    """The checks so far and the best weights per criterion, beside the engine's state (atomically)."""
    from safetensors.torch import save_file

    from genforge.io import atomic_path, write_json_atomic

    for name, (_, _, state) in best.items():
        with atomic_path(directory / f"best_{name}.safetensors") as tmp:
            save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(tmp))
    write_json_atomic(
        directory / "selection.json", {"history": history, "best": {n: [b[0], b[1]] for n, b in best.items()}}
    )


def _load_selection(directory: Path) -> tuple[list[dict[str, float]], dict[str, Any]]:
    """What :func:`_save_selection` wrote (empty when the folder holds no run yet)."""
    import json

    from safetensors.torch import load_file

    path = directory / "selection.json"
    if not path.is_file():
        return [], {}
    saved = json.loads(path.read_text())
    best = {
        name: (score, step, load_file(str(directory / f"best_{name}.safetensors")))
        for name, (score, step) in saved["best"].items()
    }
    return list(saved["history"]), best


def score_mean(real: np.ndarray, mean: np.ndarray, W: torch.Tensor) -> dict[str, float]:
    """RMSE (original units) and MIE of a generated mean field [N, T] against the real one, averaged
    over targets."""
    real, mean = (
        np.array(real, float).reshape(len(real), -1),
        np.array(mean, float).reshape(len(real), -1),
    )
    rmse = float(np.mean(np.sqrt(((mean - real) ** 2).mean(0))))
    a = local_moran_torch(torch.as_tensor(real.T, dtype=torch.float64), W)
    b = local_moran_torch(torch.as_tensor(mean.T, dtype=torch.float64), W)
    mie = float(torch.sqrt(((a - b) ** 2).mean(1)).mean())
    return {"rmse": rmse, "mie": mie}


def conformal_half_width(scores: np.ndarray, level: float = 0.9) -> np.ndarray:
    """Split-conformal quantile of conformity scores [N, T] (per column): the ceil((N + 1) level)-th
    smallest, so that a new exchangeable point falls within it with probability >= ``level``."""
    scores = np.asarray(scores, float)
    n = len(scores)
    if n == 0:
        raise DataError("conformal_half_width: no calibration scores")
    scores = scores.reshape(n, -1)
    rank = min(n, int(np.ceil((n + 1) * level - 1e-9)))  # the 1e-9: (19 + 1) * 0.9 is 18.000000000000004
    return np.sort(scores, axis=0)[rank - 1]


BLOCK_LAYOUTS = ("kmeans", "grid")


def block_ids(xy: np.ndarray, blocks: int, layout: str = "kmeans", seed: int = 0) -> np.ndarray:
    """Block id of every point. ``"grid"``: the cell of a ``blocks`` x ``blocks`` grid over the points'
    bounding box. ``"kmeans"``: the cluster of scikit-learn ``KMeans(blocks**2, n_init=4,
    random_state=seed)`` on the (projected) coordinates, i.e. blocks that adapt to the points' density
    (sperrorest's ``partition_kmeans``, Brenning 2012; blockCV's cluster blocks), so no single block holds
    half of a clustered layer as a grid cell can (California's 4 x 4 grid: one cell, 51% of the points)."""
    xy = np.asarray(xy, float)
    if layout == "grid":
        lo, hi = xy.min(0), xy.max(0)
        cell = np.minimum(((xy - lo) / np.where(hi > lo, hi - lo, 1.0) * blocks).astype(int), blocks - 1)
        return cell[:, 0] * blocks + cell[:, 1]
    if layout != "kmeans":
        raise DataError(f"block layout {layout!r}: expected one of {', '.join(BLOCK_LAYOUTS)}")
    from sklearn.cluster import KMeans

    clusters = min(blocks**2, len(np.unique(xy, axis=0)))
    return KMeans(n_clusters=clusters, n_init=4, random_state=seed).fit(xy).labels_.astype(int)


def block_folds(xy: np.ndarray, blocks: int, folds: int, seed: int, layout: str = "kmeans") -> np.ndarray:
    """Fold id (0..folds-1) of every point; every fold is made of whole blocks (:func:`block_ids`; spatial
    block cross-validation, Roberts et al. 2017). ``"grid"`` (the fourth session's folds, kept exactly):
    the occupied cells are shuffled with ``seed`` and dealt round-robin. ``"kmeans"``: the clusters are
    shuffled with ``seed``, sorted by size (largest first, stable) and each given to the fold with the
    fewest points so far, so the folds hold about equal numbers of points."""
    ids = block_ids(xy, blocks, layout, seed)
    occupied = np.random.default_rng(seed).permutation(np.unique(ids))
    if len(occupied) < folds:
        raise DataError(f"block folds: {len(occupied)} occupied blocks, fewer than {folds} folds")
    if layout == "grid":
        fold_of = {c: i % folds for i, c in enumerate(occupied)}
        return np.array([fold_of[c] for c in ids])
    sizes = np.array([(ids == c).sum() for c in occupied])
    load = np.zeros(folds, int)
    fold_of = {}
    for i in np.argsort(-sizes, kind="stable"):
        f = int(np.argmin(load))
        fold_of[occupied[i]] = f
        load[f] += sizes[i]
    return np.array([fold_of[c] for c in ids])


def leave_fold_out_half_widths(scores: np.ndarray, folds: np.ndarray, level: float = 0.9) -> np.ndarray:
    """[K, T]: for every fold f the conformal half-width (:func:`conformal_half_width`) of the scores of
    the *other* folds' points — the half-width that fold f's points are checked against (cross-conformal,
    Vovk 2015; CV+, Barber et al. 2021). A fold's own scores never enter its half-width."""
    scores = np.asarray(scores, float).reshape(len(folds), -1)
    return np.stack([conformal_half_width(scores[folds != f], level) for f in range(int(folds.max()) + 1)])


@dataclass
class BlockScores:
    """Out-of-fold conformity scores of every point of a layer from block cross-fitting
    (:func:`block_cross_scores`): ``folds`` [N] fold ids, ``models[f]`` fitted without fold f, ``errors``
    [N, T] |y - mean of draws| from the model that did not see the point's fold, ``scores`` {score: [N, T]}
    (``errors`` divided by each :data:`INTERVAL_SCORES` scale of that model)."""

    folds: np.ndarray
    models: list[SpaceGAN]
    errors: np.ndarray
    scores: dict[str, np.ndarray]


def subset_points(data: SpatialData, mask: np.ndarray, k: int) -> SpatialData:
    """The rows ``mask`` of ``data`` prepared again with its columns, CRS and source (all rows kept)."""
    return prepare(
        data.frame[mask],
        data.target,
        data.coords,
        data.covariates,
        crs=data.crs,
        k=k,
        source=data.source,
        duplicates="keep",
        lat0=data.lat0,
    )


def block_cross_scores(
    data: SpatialData,
    template: SpaceGAN,
    blocks: int = 4,
    folds: int = 4,
    seed: int = 0,
    n: int = 100,
    draw_seed: int | None = None,
    max_steps: int | None = None,
    layout: str = "kmeans",
) -> BlockScores:
    """Block cross-fitting, the one code path behind :meth:`SpaceGAN.calibrate_blocks` and the hold-out
    coverage of ``genforge geo evaluate``: the points' blocks (``layout``, ``blocks``**2 of them) are dealt
    into ``folds`` folds (:func:`block_folds`, ``seed``); per fold a model with ``template``'s parameters
    (``max_steps`` if given; no progress bar) is fitted on the other folds and scores the fold's points
    (:meth:`SpaceGAN.interval_scores`, mean of ``n`` draws, ``draw_seed``). Every point is scored once, by a
    model that did not see its block. The "oof" score of fold f scales by the other folds' errors."""
    fold_of = block_folds(data.xy, blocks, folds, seed, layout)
    params = {**template.get_params(), "progress": False}
    if max_steps is not None:
        params["max_steps"] = max_steps
    draw_seed = seed if draw_seed is None else draw_seed
    errors = np.zeros_like(data.y, dtype=float)
    scales: dict[str, np.ndarray] = {s: np.ones_like(errors) for s in INTERVAL_SCORES}
    models = []
    for f in range(folds):
        held = fold_of == f
        model = type(template)(**params).fit(subset_points(data, ~held, template.k))
        calib = data.frame[held].reset_index(drop=True)
        errors[held] = model.interval_scores(calib, n=n, seed=draw_seed, score="abs")
        scales["local"][held] = model.interval_scale(data.xy[held], "local")
        models.append(model)
    for f, model in enumerate(models):  # "oof": scaled by the other folds' out-of-fold errors nearby
        model.set_reference_errors(errors[fold_of != f])
        scales["oof"][fold_of == f] = model.interval_scale(data.xy[fold_of == f], "oof")
    return BlockScores(fold_of, models, errors, {s: errors / scales[s] for s in INTERVAL_SCORES})


def augment(
    frame: pd.DataFrame | SpatialData,
    n: int,
    target: str | list[str] | None = None,
    coords: tuple[str, str] | str | None = None,
    covariates: list[str] | str | None = None,
    model: SpaceGAN | None = None,
    **params: Any,
) -> pd.DataFrame:
    """``n`` generated copies of every row (long frame with ``draw``), for ensembles trained on real +
    generated data; fits a :class:`SpaceGAN` (``params``) unless a fitted ``model`` is given."""
    if model is None:
        model = SpaceGAN(**params).fit(frame, target=target, coords=coords, covariates=covariates)
        return model.sample(n_per_point=n)
    base = frame.frame if isinstance(frame, SpatialData) else frame
    return model.sample(n_per_point=n, frame=base)
