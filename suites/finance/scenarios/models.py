"""Market scenarios: a TCN GAN over windows of returns (or any multivariate series), Quant GAN style.

:class:`ScenarioGAN` wraps the core :class:`genforge.models.gan.GAN` (``kind="sequence"``, causal
TCN generator and critic, WGAN-GP) in a scikit-learn style estimator:

- ``fit(data)`` takes a DataFrame / Series / 2-D array of a time series ``[T, C]`` (cut into
  overlapping windows of ``window`` steps) or a 3-D array of ready windows ``[N, L, C]``.
- ``sample(n_paths, length)`` returns ``[n_paths, length, C]`` in the data's units; a TCN generator
  with a finite receptive field can produce paths longer than its training windows (Wiese et al.
  2020, "Quant GANs: deep generation of financial time series", Quantitative Finance).
- ``simulate(n_paths, length)`` returns the same as a long DataFrame (``path``, ``t``, columns).

Preprocessing (per channel), because a GAN learns a bounded, roughly Gaussian target far more
easily than raw heavy-tailed returns:

- ``"lambertw"`` (Quant GAN): standardise, apply the inverse Lambert W x Gaussian transform
  (Goerg 2015, "The Lambert way to Gaussianize heavy-tailed data") with the tail parameter delta
  chosen so the result has a kurtosis of 3, then standardise again. Sampling applies the inverse.
- ``"standard"``: z-score only.
- ``"whiten"``: z-score, then rotate onto the principal components of the channels and scale each
  component to unit variance (PCA whitening, fitted on the training values). For channels that move
  almost together, such as the open/high/low/close prices of the TimeGAN benchmark (correlations
  0.9997-1), the small differences between them (the intraday spreads) become components of their
  own: without it the generator's per-channel error, small on the scale of a price, is about five
  times the real spreads, and a classifier that looks at Open - Close sees it at once. A component
  whose variance is (almost) zero, e.g. of two identical columns, keeps a floor of 1e-8 of the total
  variance, so it is generated as (almost) exactly zero.
- ``"none"``.
``clip=True`` clips samples to the per-channel range seen in training (useful for bounded data).

Sampling uses an exponential moving average of the weights (``ema_decay``, through the core
:class:`~genforge.training.Trainer`): a WGAN-GP generator's live weights circle around a good solution
from step to step, so whichever step training happens to stop at can carry a visible bias, while the
average over the last ~1 / (1 - decay) steps does not. On the TimeGAN "Stocks" protocol, in four
paired runs (two seeds, two learning rates), the last step's weights scored 0.08-0.45 on the
discriminative judge and their average (decay 0.95 or 0.98) 0.002-0.017 (``genforge finance
evaluate-gen``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy import optimize, special, stats

from genforge.errors import DataError, GenforgeError
from genforge.models.blocks import apply_spectral_norm
from genforge.models.gan import GAN, GANConfig, SequenceDiscriminator
from genforge.registry import register_model

PREPROCESSING = ("lambertw", "standard", "whiten", "none")
WHITEN_FLOOR = 1e-8  # smallest component variance kept by "whiten", relative to the total
FORMAT = "genforge.finance.ScenarioGAN"


# --------------------------------------------------------------------------------------------- the network


@dataclasses.dataclass
class ScenarioNetConfig(GANConfig):
    """GANConfig plus the noise layout: ``global_noise=False`` draws every noise channel afresh per step.

    The core sequence GAN holds half of its noise channels constant over a path (path-level factors),
    which suits fixed-length windows; over paths far longer than the training window a constant
    factor becomes a permanent drift/volatility level, so return scenarios use i.i.d. noise per
    step as Quant GAN does, and all temporal dependence comes from the TCN.
    """

    global_noise: bool = True
    increment_scale: tuple[float, ...] = ()


@register_model("scenario_gan")
class ScenarioNet(GAN):
    """The core sequence GAN with a choice of noise layout (see :class:`ScenarioNetConfig`).

    With ``increment_scale`` (one number per channel) the critic also reads each path's step-to-step
    increments, multiplied by those numbers. The gradient penalty keeps the critic 1-Lipschitz in the
    path, so increments far smaller than the levels (prices that move ~1% a day) can only move its
    score a little, and jitter costs the generator little; scaled up to the levels' size they weigh
    as much as the levels in the transport cost (a Sobolev-type distance on paths).
    """

    config_class = ScenarioNetConfig

    def __init__(self, config: ScenarioNetConfig):
        super().__init__(config)
        if config.increment_scale:
            wide = dataclasses.replace(config, channels=2 * config.channels)
            self.discriminator = SequenceDiscriminator(wide)
            if config.spectral_norm:
                apply_spectral_norm(self.discriminator)

    def critic(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        scale = self.config.increment_scale
        if scale:
            steps = torch.diff(x, dim=1, prepend=x[:, :1])
            x = torch.cat([x, steps * torch.as_tensor(scale, dtype=x.dtype, device=x.device)], 2)
        return super().critic(x, cond)

    def noise(self, n: int, length: int | None = None, device: torch.device | None = None) -> torch.Tensor:
        if self.config.global_noise:
            return super().noise(n, length, device)
        device = device or next(self.parameters()).device
        return torch.randn(n, length or self.config.length, self.config.latent_dim, device=device)


def increment_scale(windows: np.ndarray, largest: float = 100.0) -> tuple[float, ...]:
    """Per channel of ``[N, L, C]`` windows: sd of the values over sd of the step-to-step changes
    (at least 1, at most ``largest``), the factor that brings increments to the levels' size."""
    level = windows.reshape(-1, windows.shape[2]).std(0)
    step = np.diff(windows, axis=1).reshape(-1, windows.shape[2]).std(0)
    ratio = np.clip(level / np.maximum(step, 1e-12), 1.0, largest)
    return tuple(float(v) for v in ratio)


# --------------------------------------------------------------------------------------------- transforms


def lambertw_inverse(u: np.ndarray, delta: float) -> np.ndarray:
    """Gaussianize heavy tails: ``W_delta^{-1}(u) = sign(u) sqrt(W(delta u^2) / delta)`` (Goerg 2015)."""
    if delta <= 0:
        return u
    return np.sign(u) * np.sqrt(np.real(special.lambertw(delta * u**2)) / delta)


def lambertw_forward(z: np.ndarray, delta: float) -> np.ndarray:
    """Heavy-tail a Gaussian-like variable: ``u = z exp(delta z^2 / 2)``, the inverse of the above."""
    return z * np.exp(0.5 * delta * z**2)


def fit_lambertw_delta(u: np.ndarray) -> float:
    """Tail parameter delta in [0, 2] whose inverse transform gives the standardised data a kurtosis of 3."""
    u = (u - u.mean()) / (u.std() + 1e-12)
    if stats.kurtosis(u, fisher=False) <= 3.0:
        return 0.0

    def objective(delta: float) -> float:
        z = lambertw_inverse(u, delta)
        return float((stats.kurtosis(z, fisher=False) - 3.0) ** 2)

    res = optimize.minimize_scalar(objective, bounds=(0.0, 2.0), method="bounded", options={"xatol": 1e-4})
    return float(res.x)


@dataclasses.dataclass
class _ChannelTransform:
    """Per-channel affine + Lambert W (or whitening) parameters, kept as JSON in the checkpoint's ``extra``.

    ``rotation`` [C, C] (columns: principal directions) and ``scale`` [C] are set by "whiten" only.
    """

    kind: str
    mean1: list[float]
    std1: list[float]
    delta: list[float]
    mean2: list[float]
    std2: list[float]
    lo: list[float]
    hi: list[float]
    rotation: list[list[float]] | None = None
    scale: list[float] | None = None

    @classmethod
    def fit(cls, series: np.ndarray, kind: str) -> _ChannelTransform:
        """``series`` [T, C] (all values the windows are made of)."""
        c = series.shape[1]
        mean1, std1 = series.mean(0), series.std(0) + 1e-12
        delta = np.zeros(c)
        if kind == "none":
            mean1, std1 = np.zeros(c), np.ones(c)
        z = (series - mean1) / std1
        if kind == "lambertw":
            delta = np.array([fit_lambertw_delta(z[:, j]) for j in range(c)])
            z = np.stack([lambertw_inverse(z[:, j], delta[j]) for j in range(c)], 1)
        mean2, std2 = (z.mean(0), z.std(0) + 1e-12) if kind == "lambertw" else (np.zeros(c), np.ones(c))
        rotation = scale = None
        if kind == "whiten":
            eig, vec = np.linalg.eigh(z.T @ z / len(z))
            eig = np.clip(eig, 0.0, None)
            rotation = vec.tolist()
            scale = np.sqrt(np.maximum(eig, WHITEN_FLOOR * max(eig.sum(), 1e-12))).tolist()
        return cls(
            kind,
            *(a.tolist() for a in (mean1, std1, delta, mean2, std2, series.min(0), series.max(0))),
            rotation=rotation,
            scale=scale,
        )

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Data -> model space; ``x`` [..., C]."""
        z = (x - np.asarray(self.mean1)) / np.asarray(self.std1)
        if self.kind == "lambertw":
            z = np.stack([lambertw_inverse(z[..., j], d) for j, d in enumerate(self.delta)], -1)
        if self.rotation is not None:
            z = (z @ np.asarray(self.rotation)) / np.asarray(self.scale)
        return (z - np.asarray(self.mean2)) / np.asarray(self.std2)

    def inverse(self, z: np.ndarray) -> np.ndarray:
        """Model space -> data; ``z`` [..., C]."""
        z = z * np.asarray(self.std2) + np.asarray(self.mean2)
        if self.rotation is not None:
            z = (z * np.asarray(self.scale)) @ np.asarray(self.rotation).T
        if self.kind == "lambertw":
            z = np.stack([lambertw_forward(z[..., j], d) for j, d in enumerate(self.delta)], -1)
        return z * np.asarray(self.std1) + np.asarray(self.mean1)


# --------------------------------------------------------------------------------------------- inputs


def make_windows(series: np.ndarray, window: int, stride: int = 1) -> np.ndarray:
    """Overlapping windows ``[N, window, C]`` of a series ``[T, C]`` (stride ``stride``)."""
    if series.ndim == 1:
        series = series[:, None]
    n = (len(series) - window) // stride + 1
    if n < 1:
        raise DataError(f"series of {len(series)} steps is shorter than the window of {window} steps")
    idx = np.arange(window)[None, :] + stride * np.arange(n)[:, None]
    return series[idx]


def _as_array(data: Any) -> tuple[np.ndarray, list[str]]:
    if isinstance(data, pd.Series):
        data = data.to_frame(name=data.name if data.name is not None else "value")
    if isinstance(data, pd.DataFrame):
        numeric = data.select_dtypes("number")
        dropped = [c for c in data.columns if c not in numeric.columns]
        if dropped:
            raise DataError(
                f"scenario data: column(s) {dropped} are not numeric; expected numeric columns only"
            )
        return numeric.to_numpy(np.float64), [str(c) for c in numeric.columns]
    arr = np.asarray(data, dtype=np.float64)
    channels = arr.shape[-1] if arr.ndim >= 2 else 1
    return arr, [f"x{j}" for j in range(channels)]


def prepare_windows(data: Any, window: int, stride: int = 1) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Checked inputs of a scenario model: ``(values [T, C], windows [N, L, C], column names)``.

    ``data`` is a series ``[T, C]`` (DataFrame / Series / array; cut into windows of ``window`` steps
    every ``stride`` steps) or ready windows ``[N, L, C]``; ``values`` are all the numbers the windows
    are made of (what the preprocessing is fitted on).
    """
    arr, columns = _as_array(data)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim == 2:
        if len(arr) < window + 1:
            raise DataError(f"scenario data: {len(arr)} rows; expected more than window={window}")
        values = arr
    elif arr.ndim == 3:
        values = arr.reshape(-1, arr.shape[2])
    else:
        raise DataError(f"scenario data: expected [T, C] or [N, L, C] values, got shape {arr.shape}")
    if not np.all(np.isfinite(values)):
        raise DataError("scenario data: contains NaN or infinite values; expected finite numbers")
    windows = make_windows(arr, window, stride) if arr.ndim == 2 else arr
    return values, windows, columns


# --------------------------------------------------------------------------------------------- estimator

def to_data_scale(transform: _ChannelTransform, z: np.ndarray, clip: bool) -> np.ndarray:
    """Model-space paths [N, L, C] back on the data's scale, clipped to the training range if ``clip``."""
    out = transform.inverse(z)
    if clip:
        out = np.clip(out, np.asarray(transform.lo), np.asarray(transform.hi))
    return out


def paths_frame(paths: np.ndarray, columns: list[str]) -> pd.DataFrame:
    """Paths [N, L, C] as a long table: columns ``path``, ``t`` and one column per channel."""
    n, length, c = paths.shape
    frame = pd.DataFrame(paths.reshape(n * length, c), columns=columns)
    frame.insert(0, "t", np.tile(np.arange(length), n))
    frame.insert(0, "path", np.repeat(np.arange(n), length))
    return frame



class ScenarioGAN:
    """TCN WGAN-GP for market scenarios (Quant GAN style); ``fit`` / ``sample`` / ``save`` / ``load``.

    Parameters (no work is done here; scikit-learn convention):
        window: training window length (also the critic's horizon and the default sample length).
        hidden: TCN width of both players. latent_dim: noise channels per step (half of them are
        constant over a path, the rest fresh per step). steps / batch_size / lr / n_critic: the
        adversarial training budget. preprocessing: "lambertw", "standard", "whiten" or "none"
        (module doc).
        clip: clip samples to the training range per channel. stride: step between training windows.
        ema_decay: decay of the moving average of the weights that sampling uses (None: the last
        step's weights); keep 1 / (1 - decay) well under ``steps``, or early weights linger.
        critic_increments: the critic also reads each window's step-to-step changes scaled to the
        values' size (:class:`ScenarioNet`; :func:`increment_scale`), for level series such as
        prices, whose jitter the critic otherwise barely sees. On the TimeGAN Stocks protocol
        (5 seeds, 2,000 steps): roughness 3.25 -> 2.96, judge 0.017 -> 0.017, ``nn_ratio`` 1.78 -> 1.67.
        Off by default: return series (Quant GAN style) have no smoothness to keep.
    Learned: ``model_`` (the core GAN), ``transform_``, ``columns_``, ``history_``.
    """

    def __init__(
        self,
        window: int = 24,
        hidden: int = 64,
        latent_dim: int = 8,
        steps: int = 2000,
        batch_size: int = 64,
        lr: float = 2e-4,
        n_critic: int = 5,
        loss: str = "wgan-gp",
        preprocessing: str = "standard",
        clip: bool = False,
        stride: int = 1,
        global_noise: bool = True,
        ema_decay: float | None = 0.95,
        critic_increments: bool = False,
        seed: int = 0,
        progress: bool = True,
        device: str = "cpu",
    ) -> None:
        self.window = window
        self.hidden = hidden
        self.latent_dim = latent_dim
        self.steps = steps
        self.batch_size = batch_size
        self.lr = lr
        self.n_critic = n_critic
        self.loss = loss
        self.preprocessing = preprocessing
        self.clip = clip
        self.stride = stride
        self.global_noise = global_noise
        self.ema_decay = ema_decay
        self.critic_increments = critic_increments
        self.seed = seed
        self.progress = progress
        self.device = device

    # ------------------------------------------------------------------ fitting
    def fit(self, data: Any) -> ScenarioGAN:
        """Fit on a series ``[T, C]`` (DataFrame/Series/array, cut into windows) or windows ``[N, L, C]``."""
        from genforge.training import TrainConfig, Trainer

        if self.preprocessing not in PREPROCESSING:
            raise GenforgeError(
                f"ScenarioGAN preprocessing: expected one of {PREPROCESSING}, got {self.preprocessing!r}"
            )
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise GenforgeError(
                f"ScenarioGAN ema_decay: expected a number in (0, 1) or None, got {self.ema_decay!r}"
            )
        values, windows, columns = prepare_windows(data, self.window, self.stride)
        self.transform_ = _ChannelTransform.fit(values, self.preprocessing)
        self.window_ = windows.shape[1]
        self.columns_ = columns
        z = self.transform_.forward(windows).astype(np.float32)

        config = ScenarioNetConfig(
            global_noise=self.global_noise,
            increment_scale=increment_scale(z) if self.critic_increments else (),
            kind="sequence",
            loss=self.loss,
            latent_dim=self.latent_dim,
            hidden=(self.hidden,),
            n_critic=self.n_critic,
            channels=z.shape[2],
            length=self.window_,
            seq_arch="tcn",
        )
        torch.manual_seed(self.seed)
        self.model_ = ScenarioNet(config)
        train_cfg = TrainConfig(
            max_steps=self.steps,
            batch_size=min(self.batch_size, len(z)),
            lr=self.lr,
            betas=(0.5, 0.9),
            seed=self.seed,
            progress=self.progress,
            device=self.device,
            val_every=None,
            grad_clip=None,
            ema_decay=self.ema_decay,
        )
        result = Trainer(train_cfg).fit(self.model_, torch.from_numpy(z))
        self.history_ = result.history
        self.model_.eval()
        return self

    # ------------------------------------------------------------------ sampling
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise GenforgeError("ScenarioGAN: not fitted; call fit(data) or ScenarioGAN.load(folder) first")

    def sample(self, n_paths: int, length: int | None = None, seed: int | None = None) -> np.ndarray:
        """``[n_paths, length, C]`` synthetic paths in the data's units (length defaults to the window)."""
        self._check_fitted()
        length = int(length or self.window_)
        if n_paths < 1 or length < 1:
            raise GenforgeError(
                f"ScenarioGAN.sample: expected n_paths >= 1 and length >= 1, got {n_paths} and {length}"
            )
        if seed is not None:
            torch.manual_seed(seed)
        chunks = []
        for start in range(0, n_paths, 1024):
            n = min(1024, n_paths - start)
            chunks.append(self.model_.sample(n, length=length).cpu().numpy().astype(np.float64))
        return to_data_scale(self.transform_, np.concatenate(chunks), self.clip)

    def simulate(self, n_paths: int, length: int | None = None, seed: int | None = None) -> pd.DataFrame:
        """Long table of paths: columns ``path``, ``t`` and one column per channel."""
        return paths_frame(self.sample(n_paths, length, seed), self.columns_)

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> Path:
        """Weights + config through :func:`genforge.save`; preprocessing and columns in ``extra``."""
        from genforge.checkpoints import save

        self._check_fitted()
        extra = {
            "format": FORMAT,
            "columns": self.columns_,
            "window": self.window_,
            "transform": dataclasses.asdict(self.transform_),
            "params": {
                k: getattr(self, k)
                for k in (
                    "hidden",
                    "latent_dim",
                    "steps",
                    "batch_size",
                    "lr",
                    "n_critic",
                    "loss",
                    "preprocessing",
                    "clip",
                    "stride",
                    "global_noise",
                    "ema_decay",
                    "critic_increments",
                    "seed",
                )
            },
        }
        return save(self.model_, directory, extra=extra)

    @classmethod
    def load(cls, directory: str | Path) -> ScenarioGAN:
        """Rebuild a saved ScenarioGAN (no pickle: safetensors weights + JSON)."""
        from genforge.checkpoints import load, load_extra

        extra = load_extra(directory)
        if extra.get("format") != FORMAT:
            raise GenforgeError(
                f"{directory}: not a ScenarioGAN model folder (extra.format is "
                f"{extra.get('format')!r}); train one with `genforge finance train-gen`"
            )
        est = cls(window=int(extra["window"]), **extra["params"])
        est.model_ = load(directory)
        est.transform_ = _ChannelTransform(**extra["transform"])
        est.columns_ = list(extra["columns"])
        est.window_ = int(extra["window"])
        est.history_ = []
        return est
