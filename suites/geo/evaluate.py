"""SpaceGAN's protocol (Klemmer et al. 2019) with baselines in the same run, plus sample-level checks.

Per seed, on one point layer:

1. **In-sample mean of draws** (the paper's protocol): each generator is scored every ``check_every`` steps
   by the RMSE and the MIE (RMSE of local Moran's I, kNN weights with the model's k) of the mean of
   ``n_draws`` draws against the real target. Ours is reported at its best-MIE checkpoint (``rmse``,
   ``mie``) and at its best-RMSE checkpoint (``rmse_best_rmse``, ``mie_best_rmse``). For the GAN baselines
   each figure is taken at the checkpoint best for it (the baseline's most favourable reading).
2. **Baselines**: ``original`` (the paper's code re-implemented, SGD: :class:`OriginalSpaceGAN`;
   ``original_adam``, not run by default, is its configuration on the core engine), ``nonspatial`` (the
   same GAN as ours conditioned on the point's covariates only), ``linear`` (least squares on our
   conditioning vector, draws = prediction + Gaussian residual noise) and ``kriging`` (scikit-learn GP on
   coordinates and covariates, RBF + white noise; draws from the predictive distribution; fitted on at most
   ``gp_max`` points).
3. **Single draws**: the energy distance between draws and real values in each point's neighbourhood
   (ours, linear, kriging), the global Moran's I of each in-sample draw against the real one (mean and largest
   absolute error), and the coverage of the 5-95% interval of draws out of sample, by **spatial block
   cross-validation** (``holdout="cv"``, default): the map's blocks (``block_layout``: ``blocks``**2
   k-means clusters of the coordinates, dealt to balance points, default; or the occupied cells of a
   ``blocks`` x ``blocks`` grid, dealt round-robin) are dealt into ``holdout_folds`` folds, each fold is
   predicted by a model fitted on the others (held-out points conditioned on that model's training points
   only) with the half-width calibrated on the other folds' out-of-fold scores (cross-conformal / CV+);
   every point is held out once. ``holdout="quarter"``
   keeps the first sessions' protocol (one quarter of the cells held out, calibration on inner folds of the
   rest). The ``interval_score`` is "local" (|error| / sd of the k nearest training targets; chosen on
   training regions, see docs/results/geo.md); "abs", "oof" and the uncalibrated draws are reported beside.

Results go to a JSON file (atomically, after every seed; a rerun with the same settings resumes after the
last finished seed).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genforge.errors import DataError
from genforge.geo.data import SpatialData
from genforge.geo.models import (
    BLOCK_LAYOUTS,
    INTERVAL_SCORES,
    Neighbourhood,
    SpaceGAN,
    block_cross_scores,
    block_folds,
    conformal_half_width,
    leave_fold_out_half_widths,
    score_mean,
    subset_points,
)
from genforge.geo.spatial import global_moran_torch, knn_indices, sparse_weights, weights

# the figures measured with the original code in this repository's issue (best-RMSE checkpoint, two seeds)
ANCHORS = {
    "toy1": {"original_code": "RMSE 0.185-0.206 / MIE 0.414-0.529", "linear": "0.052 / 0.083"},
    "toy2": {"original_code": "RMSE 0.222-0.269 / MIE 0.151-0.196", "linear": "0.140 / 0.099"},
    "california": {"original_code": "RMSE 116,500 / MIE 1.40 (1,000 it.)", "linear": "40,600 / 0.395"},
}


@dataclass
class Protocol:
    """Settings of one evaluation (the issue's full protocol: toy1 20,000 steps / 20 draws,
    toy2 10,000 / 50)."""

    k: int = 8
    max_steps: int = 2000
    check_every: int = 100
    n_draws: int = 20
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    blocks: int = 4
    holdout_draws: int = 100
    gp_max: int = 1500
    inner_folds: int = 4  # the quarter hold-out's calibration folds (inside the training region)
    holdout: str = "cv"  # "cv": block cross-validation over the whole map; "quarter": the old hold-out
    holdout_folds: int = 4  # folds of the "cv" protocol
    block_layout: str = "kmeans"  # blocks of the cv folds and of calibrate_blocks: "kmeans" or "grid"
    holdout_steps: int | None = None  # steps of the hold-out models (inner folds and outer); None = max_steps
    interval_score: str = "local"
    extra_weights: list[str] = field(default_factory=list)  # e.g. ["band:paper"]: MIE also under these
    baselines: list[str] = field(default_factory=lambda: ["original", "nonspatial", "linear", "kriging"])


def block_holdout(xy: np.ndarray, blocks: int, seed: int) -> np.ndarray:
    """Boolean mask of held-out points: a quarter of the cells of a blocks x blocks grid over the map."""
    lo, hi = xy.min(0), xy.max(0)
    cell = np.minimum(((xy - lo) / np.where(hi > lo, hi - lo, 1.0) * blocks).astype(int), blocks - 1)
    ids = cell[:, 0] * blocks + cell[:, 1]
    occupied = np.unique(ids)
    rng = np.random.default_rng(seed)
    held = rng.choice(occupied, size=max(1, len(occupied) // 4), replace=False)
    return np.isin(ids, held)


def neighbourhood_energy(draws: np.ndarray, real: np.ndarray, hoods: np.ndarray) -> float:
    """Mean over points of the energy distance between the draws in a point's neighbourhood (the point and
    its k nearest neighbours, all draws) and the real values there (first target); 0 = same distribution."""
    from scipy.stats import energy_distance

    values = draws[:, :, 0]
    return float(np.mean([energy_distance(values[:, h].ravel(), real[h, 0]) for h in hoods]))


def covered(draws: np.ndarray, real: np.ndarray, level: float = 0.9) -> np.ndarray:
    """[N, T] whether each real value lies inside the central ``level`` interval of its draws ([S, N, T])."""
    lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return (real >= lo) & (real <= hi)


def coverage(draws: np.ndarray, real: np.ndarray, level: float = 0.9) -> float:
    """Share of real values inside the central ``level`` interval of the draws ([S, N, T] vs [N, T])."""
    return float(covered(draws, real, level).mean())


# ------------------------------------------------------------------------------------ baselines
class LinearGenerator:
    """Least squares on the SpaceGAN conditioning; draws add Gaussian noise with the residual sd."""

    def fit(self, hood: Neighbourhood, cond: np.ndarray, y: np.ndarray) -> LinearGenerator:
        from sklearn.linear_model import LinearRegression

        self.hood, self.model = hood, LinearRegression().fit(cond, y)
        self.sd = (y - self.model.predict(cond)).std(0)
        return self

    def draws(self, cond: np.ndarray, n: int, seed: int) -> np.ndarray:
        mean = self.model.predict(cond).reshape(len(cond), -1)
        noise = np.random.default_rng(seed).standard_normal((n, *mean.shape))
        return mean[None] + noise * self.sd.reshape(1, 1, -1)


class KrigingGenerator:
    """Gaussian process on (coordinates, covariates), RBF with one length scale per input + white noise."""

    def fit(self, xy: np.ndarray, x: np.ndarray, y: np.ndarray, gp_max: int, seed: int) -> KrigingGenerator:
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

        inputs = np.column_stack([xy, x])
        self.mu, self.sd_in = inputs.mean(0), np.where(inputs.std(0) > 0, inputs.std(0), 1.0)
        self.y_mu, self.y_sd = y.mean(0), np.where(y.std(0) > 0, y.std(0), 1.0)
        rng = np.random.default_rng(seed)
        take = rng.choice(len(y), size=min(gp_max, len(y)), replace=False)
        kernel = ConstantKernel() * RBF(np.ones(inputs.shape[1])) + WhiteKernel(0.1)
        self.models = []
        for t in range(y.shape[1]):
            gp = GaussianProcessRegressor(kernel, normalize_y=False, random_state=seed)
            self.models.append(gp.fit(self._z(inputs[take]), ((y[take, t] - self.y_mu[t]) / self.y_sd[t])))
        return self

    def _z(self, inputs: np.ndarray) -> np.ndarray:
        return (inputs - self.mu) / self.sd_in

    def draws(self, xy: np.ndarray, x: np.ndarray, n: int, seed: int) -> np.ndarray:
        z = self._z(np.column_stack([xy, x]))
        rng = np.random.default_rng(seed)
        out = []
        for t, gp in enumerate(self.models):
            mean, sd = gp.predict(z, return_std=True)  # includes the fitted white noise
            out.append(
                (mean[None] + sd[None] * rng.standard_normal((n, len(mean)))) * self.y_sd[t] + self.y_mu[t]
            )
        return np.stack(out, 2)


class OriginalSpaceGAN:
    """The paper's code, re-implemented as a baseline (konstantinklemmer/spacegan ``src/``): generator
    Linear(cond + noise, 50)-ReLU-Linear, discriminator Linear(target + cond, 50)-Tanh-Linear-Sigmoid, BCE,
    plain SGD at lr 0.01 for both players, batches of 100 drawn with replacement, one generator then one
    discriminator step per iteration, Gaussian noise of the condition's size. The condition is the
    paper's: the point's covariates and coordinates plus its k neighbours' targets (standardised).
    Every ``check_every`` iterations (from iteration 0, as the paper) the mean of ``n_draws`` draws is
    scored by RMSE and MIE; ``best_scores_`` holds the best check per criterion.

    Its own 15-line loop, not the core engine: the engine has Adam only, and this baseline's point is the
    paper's optimiser (SGD)."""

    def fit(
        self,
        hood: Neighbourhood,
        W: torch.Tensor,
        p: Protocol,
        seed: int,
        extra: dict[str, torch.Tensor] | None = None,
    ) -> OriginalSpaceGAN:
        """``extra``: more weights, each scored at every check as ``mie_<name>`` (and selected by it)."""
        from torch import nn

        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        x = (hood.x - hood.x_mean) / hood.x_std
        xy = (hood.xy - hood.xy_mean) / hood.xy_scale
        ys = (hood.y - hood.y_mean) / hood.y_std
        cond = torch.as_tensor(
            np.column_stack([x, xy, ys[knn_indices(hood.xy, p.k)].reshape(len(ys), -1)]), dtype=torch.float32
        )
        y = torch.as_tensor(ys, dtype=torch.float32)
        c, t = cond.shape[1], y.shape[1]
        gen = nn.Sequential(nn.Linear(2 * c, 50), nn.ReLU(), nn.Linear(50, t))
        disc = nn.Sequential(nn.Linear(t + c, 50), nn.Tanh(), nn.Linear(50, 1), nn.Sigmoid())
        g_opt, d_opt = torch.optim.SGD(gen.parameters(), lr=0.01), torch.optim.SGD(disc.parameters(), lr=0.01)
        bce, batch = nn.BCELoss(), min(100, len(y))
        ones, zeros = torch.ones(batch, 1), torch.zeros(batch, 1)
        self.history: list[dict[str, float]] = []
        for it in range(p.max_steps + 1):
            idx = torch.as_tensor(rng.integers(0, len(y), batch))
            fake = gen(torch.cat([torch.randn(batch, c), cond[idx]], 1))
            g_opt.zero_grad()
            bce(disc(torch.cat([fake, cond[idx]], 1)), ones).backward()
            g_opt.step()
            d_opt.zero_grad()
            d_real = bce(disc(torch.cat([y[idx], cond[idx]], 1)), ones)
            d_fake = bce(disc(torch.cat([fake.detach(), cond[idx]], 1)), zeros)
            (0.5 * (d_real + d_fake)).backward()
            d_opt.step()
            if it % p.check_every == 0:
                with torch.no_grad():
                    z = torch.randn(p.n_draws * len(y), c)
                    out = gen(torch.cat([z, cond.repeat(p.n_draws, 1)], 1))
                    mean = out.view(p.n_draws, len(y), t).mean(0)
                field_ = mean.numpy() * hood.y_std + hood.y_mean
                scores = score_mean(hood.y, field_, W)
                for name, w in (extra or {}).items():
                    scores[f"mie_{name}"] = score_mean(hood.y, field_, w)["mie"]
                self.history.append({"step": it, **scores})
        self.best_scores_ = {
            m: min(self.history, key=lambda h, m=m: h[m]) for m in self.history[0] if m != "step"
        }
        return self


# ------------------------------------------------------------------------------------ one seed
def _gan(kind: str, p: Protocol, seed: int, progress: bool, steps: int | None = None) -> SpaceGAN:
    common = {
        "k": p.k,
        "max_steps": steps or p.max_steps,
        "check_every": p.check_every,
        "n_draws": p.n_draws,
        "seed": seed,
        "progress": progress,
    }
    if kind == "original_adam":
        return SpaceGAN.original(**common)
    if kind == "nonspatial":
        return SpaceGAN(use_neighbours=False, use_coords=False, **common)
    return SpaceGAN(**common)


def run_seed(data: SpatialData, p: Protocol, seed: int, progress: bool = True) -> dict[str, Any]:
    """All models of one seed: in-sample scores, baselines, draws' global Moran's I, block
    hold-out coverage."""
    torch.manual_seed(seed)
    y = data.y
    W = sparse_weights(weights(data.xy, f"knn:{p.k}"))
    out: dict[str, Any] = {"seed": seed}
    ours = _gan("ours", p, seed, progress).fit(data)
    out["rmse"], out["mie"] = ours.best_scores_["mie"]["rmse"], ours.best_scores_["mie"]["mie"]
    out["rmse_best_rmse"], out["mie_best_rmse"] = (
        ours.best_scores_["rmse"]["rmse"],
        ours.best_scores_["rmse"]["mie"],
    )
    out["best_step"] = ours.best_step_
    out["noise_spread"] = ours.spread_
    out["selection"] = ours.selection_
    draws = ours.sample_array(p.n_draws, seed=seed + 1000)  # [S, N, T]
    real_i = float(global_moran_torch(torch.as_tensor(y[:, 0]), W))
    draw_i = global_moran_torch(torch.as_tensor(draws[:, :, 0]), W).numpy()
    out["moran_global_real"] = real_i
    out["moran_global_draws"] = {
        "mean": float(draw_i.mean()),
        "max_abs_error": float(np.abs(draw_i - real_i).max()),
        "mean_abs_error": float(np.abs(draw_i - real_i).mean()),
    }

    extra = {spec: _extra_weights(data, spec) for spec in p.extra_weights}
    variants: dict[str, dict[str, Any]] = {}
    with torch.random.fork_rng(devices=[]):
        for criterion in ("mie", "rmse"):  # ours at its two checkpoints (chosen by kNN MIE / RMSE)
            ours.use_checkpoint(criterion)
            torch.manual_seed(ours.seed + 7)  # the same draws as the checks that chose the checkpoint
            mean = ours._draws(ours.model_, ours._train_cond(), p.n_draws, spread=1.0).mean(0)
            for spec, (w, connected) in extra.items():
                key = "ours" if criterion == "mie" else "ours_best_rmse"
                variants.setdefault(spec, {"isolated": int((~connected).sum())})[key] = _mie_both(
                    y, mean, w, connected
                )
        ours.use_checkpoint(ours.select)

    baselines: dict[str, dict[str, float]] = {}
    hood = ours.hood_
    cond = hood.condition()
    hoods = np.column_stack([np.arange(len(y)), knn_indices(data.xy, p.k)])
    energy = {"ours": neighbourhood_energy(draws, y, hoods)}
    for name in p.baselines:
        if name in ("original", "original_adam", "nonspatial"):
            gan = (
                OriginalSpaceGAN().fit(hood, W, p, seed, {s: w for s, (w, _) in extra.items()})
                if name == "original"
                else _gan(name, p, seed, progress).fit(data)
            )
            if name == "original":
                for spec, (_w, connected) in extra.items():
                    best = gan.best_scores_[f"mie_{spec}"]
                    variants[spec].setdefault("baselines", {})[name] = {
                        "rmse": gan.best_scores_["rmse"]["rmse"],
                        "mie": best[f"mie_{spec}"],
                        "mie_connected": best[f"mie_{spec}"] * _connected_factor(connected),
                    }
            baselines[name] = {
                "rmse": gan.best_scores_["rmse"]["rmse"],
                "mie": gan.best_scores_["mie"]["mie"],
                "rmse_at_best_mie": gan.best_scores_["mie"]["rmse"],
                "mie_at_best_rmse": gan.best_scores_["rmse"]["mie"],
            }
        elif name == "linear":
            lin = LinearGenerator().fit(hood, cond, y)
            lin_draws = lin.draws(cond, p.n_draws, seed)
            baselines[name] = score_mean(y, lin_draws.mean(0), W)
            energy[name] = neighbourhood_energy(lin_draws, y, hoods)
            for spec, (w, connected) in extra.items():
                variants[spec].setdefault("baselines", {})[name] = _mie_both(
                    y, lin_draws.mean(0), w, connected
                )
        elif name == "kriging":
            gp = KrigingGenerator().fit(data.xy, data.x, y, p.gp_max, seed)
            gp_draws = gp.draws(data.xy, data.x, p.n_draws, seed)
            baselines[name] = score_mean(y, gp_draws.mean(0), W)
            energy[name] = neighbourhood_energy(gp_draws, y, hoods)
            for spec, (w, connected) in extra.items():
                variants[spec].setdefault("baselines", {})[name] = _mie_both(
                    y, gp_draws.mean(0), w, connected
                )
    out["baselines"] = baselines
    if variants:
        out["weights_variants"] = variants
    out["energy_distance"] = energy
    cal, out["coverage90_baselines"], out["holdout_points"] = _holdout(data, p, seed, progress)
    out["holdout"] = p.holdout
    out["coverage90"], out["interval_half_width"] = cal["coverage"], cal["half_width"]
    if p.holdout == "cv":
        out["coverage90_folds"] = cal["coverage_folds"]
        out["coverage90_baselines_folds"] = cal["others_folds"]
        out["coverage90_by_score"] = cal["coverage_by_score"]
        out["holdout_fold_points"] = cal["fold_points"]
    else:
        out["coverage90_inner"], out["coverage90_inner_folds"] = cal["inner"], cal["inner_folds"]
    return out


def _extra_weights(data: SpatialData, spec: str) -> tuple[torch.Tensor, np.ndarray]:
    """Sparse weights from ``spec`` on the layer's own coordinate columns (``band:paper`` on California:
    lon/lat degrees, as SpaceGAN's code) and the mask of points that have neighbours."""
    raw = data.frame[list(data.coords)].to_numpy(float)
    w = weights(raw, spec)
    connected = np.array([w.cardinalities[i] > 0 for i in w.id_order])
    return sparse_weights(w), connected


def _connected_factor(connected: np.ndarray) -> float:
    """MIE over the connected points only = MIE over all x this: isolated points have local I 0 in both
    fields, so they add nothing to the squared error, only to the count."""
    return float(np.sqrt(len(connected) / max(int(connected.sum()), 1)))


def _mie_both(real: np.ndarray, mean: np.ndarray, W: torch.Tensor, connected: np.ndarray) -> dict[str, float]:
    """RMSE and MIE under ``W`` with isolated points counted (local I 0, as esda) and left out."""
    scores = score_mean(real, mean, W)
    return {**scores, "mie_connected": scores["mie"] * _connected_factor(connected)}


HOLDOUTS = ("cv", "quarter")


def _holdout(
    data: SpatialData, p: Protocol, seed: int, progress: bool
) -> tuple[dict[str, Any], dict[str, float], int]:
    """90% interval coverage out of sample: :func:`_holdout_cv` (``p.holdout == "cv"``, the default) or
    :func:`_holdout_quarter` (the first three sessions' protocol)."""
    if p.holdout == "cv":
        return _holdout_cv(data, p, seed, progress)
    if p.holdout == "quarter":
        return _holdout_quarter(data, p, seed, progress)
    raise DataError(f"holdout {p.holdout!r}: expected one of {', '.join(HOLDOUTS)}")


def _holdout_cv(
    data: SpatialData, p: Protocol, seed: int, progress: bool
) -> tuple[dict[str, Any], dict[str, float], int]:
    """Spatial block cross-validation with cross-conformal intervals (CV+ arrangement).

    The blocks of the whole map (``p.block_layout``, :func:`~genforge.geo.models.block_folds`) are dealt
    into ``p.holdout_folds`` folds; model f is fitted on the other folds and scores fold f's points
    (:func:`block_cross_scores`, the same code as :meth:`SpaceGAN.calibrate_blocks`). Fold f's half-width is
    the conformal quantile of the *other* folds' scores (:func:`leave_fold_out_half_widths`), set on model
    f, and fold f's coverage is read from model f's draws at fold f's points. So neither the model nor the
    half-width that a point is checked with used that point's block; the other folds' models (whose
    scores make the half-width) did see it — CV+'s arrangement (Barber et al. 2021). Every point is
    held out exactly once; ``coverage`` is the share of all points covered, per fold beside it. Linear
    and kriging are fitted on the same folds."""
    template = _gan("ours", p, seed, progress, p.holdout_steps)
    cal = block_cross_scores(
        data,
        template,
        p.blocks,
        p.holdout_folds,
        seed,
        n=p.holdout_draws,
        draw_seed=seed + 3000,
        layout=p.block_layout,
    )
    half = {s: leave_fold_out_half_widths(v, cal.folds, 0.9) for s, v in cal.scores.items()}
    names = ["ours_uncalibrated", *(f"ours_{s}" for s in INTERVAL_SCORES)]
    names += [b for b in ("linear", "kriging") if b in p.baselines]
    hit = {name: np.zeros(data.y.shape, bool) for name in names}
    for f, model in enumerate(cal.models):
        test = cal.folds == f
        frame, y_test = data.frame[test].reset_index(drop=True), data.y[test]
        model.set_interval(None)
        hit["ours_uncalibrated"][test] = covered(
            model.sample_array(p.holdout_draws, frame=frame, seed=seed + 2000), y_test
        )
        for s in INTERVAL_SCORES:
            model.set_interval(half[s][f], 0.9, s)
            draws = model.sample_array(p.holdout_draws, frame=frame, seed=seed + 2000)
            hit[f"ours_{s}"][test] = covered(draws, y_test)
        model.set_interval(None)
        hood = model.hood_
        if "linear" in p.baselines:
            lin = LinearGenerator().fit(hood, hood.condition(), hood.y)
            test_cond = hood.condition(data.xy[test], data.x[test])
            hit["linear"][test] = covered(lin.draws(test_cond, p.holdout_draws, seed), y_test)
        if "kriging" in p.baselines:
            gp = KrigingGenerator().fit(hood.xy, hood.x, hood.y, p.gp_max, seed)
            gp_draws = gp.draws(data.xy[test], data.x[test], p.holdout_draws, seed)
            hit["kriging"][test] = covered(gp_draws, y_test)
    folds = range(p.holdout_folds)
    others = {name: float(h.mean()) for name, h in hit.items()}
    by_score = cal.scores[p.interval_score] <= half[p.interval_score][cal.folds]
    result = {
        "coverage": others[f"ours_{p.interval_score}"],
        "coverage_folds": [float(hit[f"ours_{p.interval_score}"][cal.folds == f].mean()) for f in folds],
        "others_folds": {name: [float(h[cal.folds == f].mean()) for f in folds] for name, h in hit.items()},
        # the same check without Monte Carlo of the draws: score <= the other folds' half-width
        "coverage_by_score": float(by_score.mean()),
        "half_width": {s: v.tolist() for s, v in half.items()},
        "fold_points": [int((cal.folds == f).sum()) for f in folds],
    }
    return result, others, len(data)


def _holdout_quarter(
    data: SpatialData, p: Protocol, seed: int, progress: bool
) -> tuple[dict[str, Any], dict[str, float], int]:
    """90% interval coverage at one held-out quarter of the blocks (``--holdout quarter``, the first three
    sessions' protocol) for ours (raw, and calibrated by :meth:`SpaceGAN.calibrate_blocks` on block folds of
    the training region only), linear and kriging.

    Calibration: the training region's cells are split into ``p.inner_folds`` folds; per fold a model fitted
    on the other folds scores the fold's points; the pooled scores give the conformal half-width that the
    model fitted on the whole training region then uses at the held-out blocks. Every training point is
    scored once, by a model that did not see its block."""
    held = block_holdout(data.xy, p.blocks, seed)
    train = subset_points(data, ~held, p.k)
    test = data.frame[held].reset_index(drop=True)
    y_test = data.y[held]
    ours = _gan("ours", p, seed, progress, p.holdout_steps).fit(train)
    cal = ours.calibrate_blocks(
        0.9,
        p.interval_score,
        p.blocks,
        p.inner_folds,
        p.holdout_draws,
        seed=seed + 1,
        draw_seed=seed + 3000,
        layout=p.block_layout,
    )
    half = {s: conformal_half_width(v, 0.9) for s, v in cal.scores.items()}
    # leave-one-fold-out coverage inside the training region: each fold checked against the half-width
    # calibrated on the other folds (the training-side figure beside the hold-out one)
    inner_cov = {}
    for s, v in cal.scores.items():
        lfo = leave_fold_out_half_widths(v, cal.folds, 0.9)
        inner_cov[s] = [float(np.mean(v[cal.folds == f] <= lfo[f])) for f in range(p.inner_folds)]
    ours.set_interval(None)
    raw = coverage(ours.sample_array(p.holdout_draws, frame=test, seed=seed + 2000), y_test)
    others: dict[str, float] = {"ours_uncalibrated": raw}
    for s in INTERVAL_SCORES:
        ours.set_interval(half[s], 0.9, s)
        draws = ours.sample_array(p.holdout_draws, frame=test, seed=seed + 2000)
        others[f"ours_{s}"] = coverage(draws, y_test)
    hood = ours.hood_
    test_cond = hood.condition(data.xy[held], data.x[held])
    if "linear" in p.baselines:
        lin = LinearGenerator().fit(hood, hood.condition(), train.y)
        others["linear"] = coverage(lin.draws(test_cond, p.holdout_draws, seed), y_test)
    if "kriging" in p.baselines:
        gp = KrigingGenerator().fit(train.xy, train.x, train.y, p.gp_max, seed)
        others["kriging"] = coverage(gp.draws(data.xy[held], data.x[held], p.holdout_draws, seed), y_test)
    result = {
        "coverage": others[f"ours_{p.interval_score}"],
        "half_width": {s: [float(h) for h in v] for s, v in half.items()},
        "calibration_points": int(len(train.y)),
        "inner": {s: float(np.mean(v)) for s, v in inner_cov.items()},
        "inner_folds": inner_cov,
    }
    return result, others, int(held.sum())


# ------------------------------------------------------------------------------------ the run
def evaluate(
    data: SpatialData,
    protocol: Protocol | None = None,
    json_path: str | Path | None = None,
    progress: bool = True,
    echo: Any = None,
) -> dict[str, Any]:
    """Run the protocol over ``protocol.seeds``; the result has the issue's keys (means over seeds)."""
    from genforge.io import write_json_atomic

    p = protocol or Protocol()
    for spec in p.extra_weights:  # a bad spec fails here, before any training
        _extra_weights(data, spec)
    if p.holdout not in HOLDOUTS:
        raise DataError(f"--holdout {p.holdout!r}: expected one of {', '.join(HOLDOUTS)}")
    if p.block_layout not in BLOCK_LAYOUTS:
        raise DataError(f"--block-layout {p.block_layout!r}: expected one of {', '.join(BLOCK_LAYOUTS)}")
    if p.holdout == "cv":  # fewer occupied blocks than folds fails here too
        block_folds(data.xy, p.blocks, p.holdout_folds, 0, p.block_layout)
    settings = {
        "data": data.source,
        "target": data.target,
        "covariates": data.covariates,
        "points": len(data),
        "protocol": asdict(p),
    }
    per_seed: list[dict[str, Any]] = []
    if json_path is not None and Path(json_path).is_file():
        try:
            previous = json.loads(Path(json_path).read_text())
            if previous.get("settings") == json.loads(json.dumps(settings)):
                per_seed = list(previous.get("per_seed", []))
        except (OSError, ValueError):
            per_seed = []
    done = {r["seed"] for r in per_seed}
    for seed in p.seeds:
        if seed in done:
            continue
        started = time.perf_counter()
        per_seed.append(
            {**run_seed(data, p, seed, progress), "seconds": round(time.perf_counter() - started, 1)}
        )
        result = summarise(per_seed, settings, complete=len(per_seed) == len(p.seeds))
        if json_path is not None:
            write_json_atomic(json_path, result)
        if echo:
            echo(
                f"seed {seed}: rmse {per_seed[-1]['rmse']:.4g} mie {per_seed[-1]['mie']:.4g} "
                f"({per_seed[-1]['seconds']} s)"
            )
    result = summarise(per_seed, settings, complete=True)
    if json_path is not None:
        write_json_atomic(json_path, result)
    return result


def summarise(per_seed: list[dict[str, Any]], settings: dict[str, Any], complete: bool) -> dict[str, Any]:
    """Means over seeds under the issue's JSON keys (per-seed figures kept under ``per_seed``)."""

    def mean(key: str) -> float:
        return float(np.mean([r[key] for r in per_seed]))

    names = per_seed[0]["baselines"].keys() if per_seed else []
    baselines = {
        n: {m: float(np.mean([r["baselines"][n][m] for r in per_seed])) for m in per_seed[0]["baselines"][n]}
        for n in names
    }
    cover_b = {
        n: float(np.mean([r["coverage90_baselines"][n] for r in per_seed]))
        for n in (per_seed[0]["coverage90_baselines"] if per_seed else [])
    }
    result = {
        "rmse": mean("rmse"),
        "mie": mean("mie"),
        "rmse_best_rmse": mean("rmse_best_rmse"),
        "mie_best_rmse": mean("mie_best_rmse"),
        "baselines": baselines,
        "moran_global_real": per_seed[0]["moran_global_real"] if per_seed else None,
        "moran_global_draws": {
            "mean": mean_of(per_seed, "mean"),
            "max_abs_error": max_of(per_seed, "max_abs_error"),
            "mean_abs_error": mean_of(per_seed, "mean_abs_error"),
        },
        "energy_distance": {
            n: float(np.mean([r["energy_distance"][n] for r in per_seed if "energy_distance" in r]))
            for n in (per_seed[-1].get("energy_distance", {}) if per_seed else {})
        },
        "coverage90": mean("coverage90"),
        "coverage90_baselines": cover_b,
        "coverage90_inner": {
            s: float(np.mean([r["coverage90_inner"][s] for r in per_seed]))
            for s in (per_seed[0].get("coverage90_inner", {}) if per_seed else {})
            if all("coverage90_inner" in r for r in per_seed)
        },
        "seeds": [r["seed"] for r in per_seed],
        "complete": complete,
        "settings": settings,
        "per_seed": per_seed,
    }
    if per_seed and "weights_variants" in per_seed[0]:
        result["weights_variants"] = _mean_nested([r["weights_variants"] for r in per_seed])
    return result


def _mean_nested(items: list[Any]) -> Any:
    """Element-wise mean of equally shaped nested dicts of numbers (per-seed figures -> their mean)."""
    if isinstance(items[0], dict):
        return {k: _mean_nested([i[k] for i in items]) for k in items[0]}
    return float(np.mean(items))


def mean_of(per_seed: list[dict[str, Any]], key: str) -> float:
    return float(np.mean([r["moran_global_draws"][key] for r in per_seed]))


def max_of(per_seed: list[dict[str, Any]], key: str) -> float:
    return float(np.max([r["moran_global_draws"][key] for r in per_seed]))


def format_table(result: dict[str, Any], anchor: str | None = None) -> str:
    """Ours beside the baselines (and the published/measured anchor when the data set is known)."""
    rows = [
        ("ours (best-MIE ckpt)", result["rmse"], result["mie"]),
        ("ours (best-RMSE ckpt)", result["rmse_best_rmse"], result["mie_best_rmse"]),
    ]
    rows += [(name, b["rmse"], b["mie"]) for name, b in result["baselines"].items()]
    lines = [f"{'model':<24}{'RMSE':>14}{'MIE':>10}"]
    lines += [f"{name:<24}{rmse:>14.4g}{mie:>10.4g}" for name, rmse, mie in rows]
    g = result["moran_global_draws"]
    lines.append(
        f"global Moran's I: real {result['moran_global_real']:.4f}, draws mean {g['mean']:.4f}, "
        f"max |error| {g['max_abs_error']:.4f} (goal <= 0.05)"
    )
    if result.get("energy_distance"):
        lines.append(
            "energy distance of draws vs real per neighbourhood: "
            + ", ".join(f"{k} {v:.4g}" for k, v in result["energy_distance"].items())
        )
    cov = ", ".join(f"{k} {v:.3f}" for k, v in result.get("coverage90_baselines", {}).items())
    how = result.get("settings", {}).get("protocol", {}).get("holdout", "quarter")
    where = "block CV, every point held out once" if how == "cv" else "a held-out quarter of the blocks"
    lines.append(f"90% coverage ({where}): ours {result['coverage90']:.3f} (goal 0.85-0.95); {cov}")
    for r in result.get("per_seed", []):
        if "coverage90_folds" in r:
            folds = " / ".join(f"{c:.3f}" for c in r["coverage90_folds"])
            lines.append(f"  seed {r['seed']}: {r['coverage90']:.3f} (folds {folds})")
    if result.get("coverage90_inner"):
        lines.append(
            "90% coverage on inner block folds of the training region (leave one fold out): "
            + ", ".join(f"{k} {v:.3f}" for k, v in result["coverage90_inner"].items())
        )
    if anchor in ANCHORS:
        lines.append(
            "anchor (original code, measured for the issue): "
            + "; ".join(f"{k}: {v}" for k, v in ANCHORS[anchor].items())
        )
    for spec, v in result.get("weights_variants", {}).items():
        models = {"ours": v["ours"], "ours (best-RMSE ckpt)": v["ours_best_rmse"], **v.get("baselines", {})}
        lines.append(
            f"MIE with weights {spec} ({v['isolated']:.0f} isolated points, local I 0 / left out): "
            + "; ".join(f"{n} {m['mie']:.4g} / {m['mie_connected']:.4g}" for n, m in models.items())
        )
    lines.append(f"seeds: {result['seeds']}")
    return "\n".join(lines)
