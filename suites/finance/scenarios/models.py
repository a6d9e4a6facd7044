"""Market scenarios: a TCN GAN over windows of returns (or any multivariate series), Quant GAN style.

:class:`ScenarioGAN` wraps the core :class:`genforge.models.gan.GAN` (``kind="sequence"``, causal
TCN generator and critic, WGAN-GP) in a scikit-learn style estimator:

- ``fit(data)`` takes a DataFrame / Series / 2-D array of a time series ``[T, C]`` (cut into
  overlapping windows of ``window`` steps) or a 3-D array of ready windows ``[N, L, C]``.
- ``sample(n_paths, length)`` returns ``[n_paths, length, C]`` in the data's units; a TCN generator
  with a finite receptive field can produce paths longer than its training windows (Wiese et al.
  2020, "Quant GANs: deep generation of financial time series", Quantitative Finance).
- ``simulate(n_paths, length)`` returns the same as a long DataFrame (``path``, ``t``, columns).

Preprocessing (per channel) is described in :mod:`genforge.finance.scenarios.data`.
``clip=True`` clips samples to the per-channel range seen in training (useful for bounded data).

Sampling uses an exponential moving average of the weights (``ema_decay``, through the core
:class:`~genforge.training.Trainer`): a WGAN-GP generator's live weights circle around a good solution
from step to step, so whichever step training happens to stop at can carry a visible bias, while the
average over the last ~1 / (1 - decay) steps does not (measured in ``docs/results/finance.md``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from genforge.errors import GenforgeError
from genforge.estimator import Example, SuiteEstimator, to_numpy
from genforge.finance.scenarios.data import (
    PREPROCESSING,
    ChannelTransform,
    paths_frame,
    prepare_windows,
    to_data_scale,
)
from genforge.models.gan import GAN, GANConfig, SequenceDiscriminator
from genforge.registry import register_model

# --------------------------------------------------------------------------------------------- the network


@dataclasses.dataclass
class ScenarioNetConfig(GANConfig):
    """GANConfig plus the scenario options: ``global_noise`` and ``increment_scale``.

    ``global_noise=False`` draws every noise channel afresh per step (it sets the core's
    ``shared_noise`` to 0). The core sequence GAN holds half of its noise channels constant over a
    path (path-level factors), which suits fixed-length windows; over paths far longer than the
    training window a constant factor becomes a permanent drift/volatility level, so return scenarios
    use i.i.d. noise per step as Quant GAN does, and all temporal dependence comes from the TCN.
    ``increment_scale`` (one number per channel; empty = off): the critic also reads each path's
    step-to-step increments times these numbers (:class:`IncrementCritic`).
    """

    global_noise: bool = True
    increment_scale: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        self.increment_scale = tuple(float(v) for v in self.increment_scale)
        if not self.global_noise:
            self.shared_noise = 0
        if self.increment_scale and len(self.increment_scale) != self.channels:
            raise ValueError(
                f"ScenarioNetConfig.increment_scale: {len(self.increment_scale)} numbers; expected one per "
                f"channel ({self.channels})"
            )


class IncrementCritic(SequenceDiscriminator):
    """The core sequence critic over ``[x, scale * diff(x)]``: levels and scaled increments.

    The gradient penalty keeps the critic 1-Lipschitz in the path, so increments far smaller than the
    levels (prices that move ~1% a day) can only move its score a little, and jitter costs the
    generator little; scaled up to the levels' size they weigh as much as the levels in the
    transport cost (a Sobolev-type distance on paths).
    """

    def __init__(self, config: ScenarioNetConfig):
        super().__init__(dataclasses.replace(config, channels=2 * config.channels, increment_scale=()))
        self.register_buffer("scale", torch.tensor(config.increment_scale), persistent=False)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        steps = torch.diff(x, dim=1, prepend=x[:, :1])
        return super().forward(torch.cat([x, steps * self.scale.to(x.dtype)], 2), cond)


@register_model("scenario_gan")
class ScenarioNet(GAN):
    """The core sequence GAN configured for scenarios (see :class:`ScenarioNetConfig`): the noise
    layout through ``shared_noise`` and, with ``increment_scale``, an :class:`IncrementCritic`."""

    config_class = ScenarioNetConfig

    def build_critic(self, config: ScenarioNetConfig) -> torch.nn.Module:
        critic = super().build_critic(config)
        if not config.increment_scale:
            return critic
        # The core critic above is built and dropped so that its initial weights are drawn as before
        # this builder existed: a seed gives the numbers recorded in docs/results/finance.md.
        return IncrementCritic(config)


def increment_scale(windows: np.ndarray, largest: float = 100.0) -> tuple[float, ...]:
    """Per channel of ``[N, L, C]`` windows: sd of the values over sd of the step-to-step changes
    (at least 1, at most ``largest``), the factor that brings increments to the levels' size."""
    level = windows.reshape(-1, windows.shape[2]).std(0)
    step = np.diff(windows, axis=1).reshape(-1, windows.shape[2]).std(0)
    ratio = np.clip(level / np.maximum(step, 1e-12), 1.0, largest)
    return tuple(float(v) for v in ratio)


class ScenarioEstimator(SuiteEstimator):
    """What the two scenario estimators share: paths in the data's units, and persistence of the
    preprocessing (``transform_``), the column names and the window beside the network."""

    state_version: ClassVar[int] = 2  # 1: the layout before SuiteEstimator (``extra.format``)
    FORMAT: ClassVar[str] = ""

    def simulate(self, n_paths: int, length: int | None = None, seed: int | None = None) -> pd.DataFrame:
        """Long table of paths: columns ``path``, ``t`` and one column per channel."""
        return paths_frame(self.sample(n_paths, length, seed), self.columns_)

    def _get_state(self) -> dict[str, Any]:
        return {
            "columns": self.columns_,
            "window": self.window_,
            "transform": dataclasses.asdict(self.transform_),
        }

    def _set_state(self, state: dict[str, Any], directory: Path) -> None:
        self.transform_ = ChannelTransform(**state["transform"])
        self.columns_ = list(state["columns"])
        self.window_ = int(state["window"])
        self.history_ = []

    @classmethod
    def _checkpoint_estimator(cls, extra: dict[str, Any]) -> str | None:
        if "estimator" not in extra and extra.get("format") == cls.FORMAT:
            return cls.__name__  # written before SuiteEstimator (state version 1)
        return extra.get("estimator")

    @classmethod
    def _upgrade(cls, version: int, extra: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Version 1 kept columns, window and transform at the top of ``extra``."""
        if version == 1:
            params = {"window": int(extra["window"]), **dict(extra.get("params") or {})}
            state = {k: extra[k] for k in ("columns", "window", "transform")}
            return params, state
        return super()._upgrade(version, extra)

    def _check_common(self) -> None:
        """The parameters both estimators take: ``preprocessing`` and ``ema_decay``."""
        name = type(self).__name__
        if self.preprocessing not in PREPROCESSING:
            raise GenforgeError(
                f"{name} preprocessing: expected one of {PREPROCESSING}, got {self.preprocessing!r}"
            )
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise GenforgeError(
                f"{name} ema_decay: expected a number in (0, 1) or None, got {self.ema_decay!r}"
            )

    def _train_network(self, build: Callable[[], torch.nn.Module], z: np.ndarray, **fields: Any) -> None:
        """Seed torch, build the network (``model_``) and train it on the windows ``z`` with the core
        Trainer at this estimator's budget; ``fields`` adds the family's ``TrainConfig`` fields."""
        from genforge.training import TrainConfig, Trainer

        torch.manual_seed(self.seed)
        self.model_ = build()
        train_cfg = TrainConfig(
            max_steps=self.steps,
            batch_size=min(self.batch_size, len(z)),
            lr=self.lr,
            seed=self.seed,
            progress=self.progress,
            device=self.device,
            val_every=None,
            ema_decay=self.ema_decay,
            **fields,
        )
        result = Trainer(train_cfg).fit(self.model_, torch.from_numpy(np.ascontiguousarray(z)))
        self.history_ = result.history
        self.model_.eval()

    def _sample_length(self, n_paths: int, length: int | None) -> int:
        """The length of the paths to sample (the window by default), after checking both counts."""
        self._check_fitted()
        length = int(length or self.window_)
        if n_paths < 1 or length < 1:
            raise GenforgeError(
                f"{type(self).__name__}.sample: expected n_paths >= 1 and length >= 1, "
                f"got {n_paths} and {length}"
            )
        return length

    @staticmethod
    def _example_returns() -> np.ndarray:
        """The last 600 daily returns of the bundled S&P 500 (percent), as a column."""
        from genforge.finance.data import load_sp500, log_returns

        return log_returns(load_sp500()).to_numpy(np.float64)[-600:, None]


class ScenarioGAN(ScenarioEstimator):
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
        prices, whose jitter the critic otherwise barely sees (measured in docs/results/finance.md).
        Off by default: return series (Quant GAN style) have no smoothness to keep.
    Learned: ``model_`` (the core GAN), ``transform_``, ``columns_``, ``history_``.
    """

    FORMAT: ClassVar[str] = "genforge.finance.ScenarioGAN"

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
        device: str = "auto",
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
        self._check_common()
        values, windows, columns = prepare_windows(data, self.window, self.stride)
        self.transform_ = ChannelTransform.fit(values, self.preprocessing)
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
        self._train_network(lambda: ScenarioNet(config), z, betas=(0.5, 0.9), grad_clip=None)
        return self

    # ------------------------------------------------------------------ sampling
    def sample(self, n_paths: int, length: int | None = None, seed: int | None = None) -> np.ndarray:
        """``[n_paths, length, C]`` synthetic paths in the data's units (length defaults to the window)."""
        length = self._sample_length(n_paths, length)
        if seed is not None:
            torch.manual_seed(seed)
        chunks = []
        for start in range(0, n_paths, 1024):
            n = min(1024, n_paths - start)
            chunks.append(to_numpy(self.model_.sample(n, length=length)).astype(np.float64))
        return to_data_scale(self.transform_, np.concatenate(chunks), self.clip)

    @classmethod
    def example(cls) -> Example:
        """A tiny GAN on the last 600 S&P 500 returns (a few seconds)."""
        returns = cls._example_returns()
        params = {"window": 16, "hidden": 8, "latent_dim": 4, "steps": 20, "batch_size": 32}
        params["progress"] = False
        return Example(params=params, fit_args=(returns,), probe=lambda est: est.sample(4, 16, seed=3))


def quick_scenario_gan(window: int = 32, steps: int = 150, seed: int = 0) -> ScenarioGAN:
    """A small ScenarioGAN fitted on the bundled S&P 500's daily log returns (percent), Quant GAN style
    (Lambert W preprocessing, noise fresh per step): the settings of an interactive view, where a
    fit must take about a minute. ``genforge finance scenarios train`` trains the full model."""
    from genforge.finance.data import load_sp500, log_returns

    returns = log_returns(load_sp500()).to_numpy(np.float64)
    params = {"hidden": 32, "preprocessing": "lambertw", "global_noise": False, "progress": False}
    return ScenarioGAN(window=window, steps=steps, seed=seed, **params).fit(returns[:, None])
