"""Market scenarios from a diffusion model: the same estimator API as ScenarioGAN, another family.

:class:`ScenarioDiffusion` wraps the core :class:`genforge.models.diffusion.Diffusion` (a 1-D UNet
over windows ``[C, L]``, DDPM training, DDIM sampling) with the scenario GAN's inputs and
preprocessing (:func:`~genforge.finance.scenarios.prepare_windows`, the per-channel transforms,
``"whiten"`` by default), trained by the core :class:`~genforge.training.Trainer` with an EMA of the
weights (the usual practice for diffusion models). It is a likelihood model, so there is no
adversarial game to go unstable, at the price of ``sample_steps`` network calls per sample.

Unlike the causal TCN generator, the UNet sees the whole window at once: sampled lengths are
rounded up to a multiple of the UNet's downsampling factor and cropped, and paths much longer than
the training window are outside what it learned.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from genforge.errors import GenforgeError
from genforge.estimator import Example, to_numpy
from genforge.finance.scenarios.data import ChannelTransform, prepare_windows, to_data_scale
from genforge.finance.scenarios.models import ScenarioEstimator


class ScenarioDiffusion(ScenarioEstimator):
    """Diffusion model of windows of a (multivariate) series; ``fit`` / ``sample`` / ``save`` / ``load``.

    Parameters (no work is done here; scikit-learn convention):
        window: training window length (and the default sample length).
        base_channels / channel_mults: UNet width per resolution level (each extra level halves
        the length). steps / batch_size / lr: the training budget (AdamW, one batch per step).
        timesteps / schedule / prediction: the noise schedule and the network's target ("epsilon"
        or "v"). sample_steps: DDIM steps per sample. preprocessing / clip / stride: as in
        :class:`~genforge.finance.scenarios.ScenarioGAN`. ema_decay: decay of the weight average
        that sampling uses.
    Learned: ``model_`` (the core Diffusion), ``transform_``, ``columns_``, ``history_``.
    """

    FORMAT: ClassVar[str] = "genforge.finance.ScenarioDiffusion"

    def __init__(
        self,
        window: int = 24,
        base_channels: int = 32,
        channel_mults: tuple[int, ...] = (1, 2),
        steps: int = 3000,
        batch_size: int = 64,
        lr: float = 1e-3,
        timesteps: int = 1000,
        schedule: str = "cosine",
        prediction: str = "v",
        sample_steps: int = 50,
        preprocessing: str = "whiten",
        clip: bool = False,
        stride: int = 1,
        ema_decay: float | None = 0.995,
        seed: int = 0,
        progress: bool = True,
        device: str = "auto",
    ) -> None:
        self.window = window
        self.base_channels = base_channels
        self.channel_mults = tuple(channel_mults)
        self.steps = steps
        self.batch_size = batch_size
        self.lr = lr
        self.timesteps = timesteps
        self.schedule = schedule
        self.prediction = prediction
        self.sample_steps = sample_steps
        self.preprocessing = preprocessing
        self.clip = clip
        self.stride = stride
        self.ema_decay = ema_decay
        self.seed = seed
        self.progress = progress
        self.device = device

    @property
    def _factor(self) -> int:
        """Lengths the UNet accepts are multiples of this (one halving per extra level)."""
        return 2 ** (len(self.channel_mults) - 1)

    # ------------------------------------------------------------------ fitting
    def fit(self, data: Any) -> ScenarioDiffusion:
        """Fit on a series ``[T, C]`` (DataFrame/Series/array, cut into windows) or windows ``[N, L, C]``."""
        from genforge.models.diffusion import Diffusion, DiffusionConfig

        self._check_common()
        if not self.channel_mults or self.sample_steps < 1:
            raise GenforgeError(
                "ScenarioDiffusion: expected at least one channel_mults level and sample_steps >= 1"
            )
        values, windows, columns = prepare_windows(data, self.window, self.stride)
        if windows.shape[1] % self._factor:
            raise GenforgeError(
                f"ScenarioDiffusion: windows of {windows.shape[1]} steps; expected a multiple of "
                f"{self._factor} for channel_mults={self.channel_mults}"
            )
        self.transform_ = ChannelTransform.fit(values, self.preprocessing)
        self.window_ = windows.shape[1]
        self.columns_ = columns
        z = self.transform_.forward(windows).astype(np.float32).transpose(0, 2, 1)  # [N, C, L]
        config = DiffusionConfig(
            dims=1,
            channels=z.shape[1],
            length=self.window_,
            base_channels=self.base_channels,
            channel_mults=self.channel_mults,
            layers_per_block=1,
            attention_levels=(),
            mid_attention=False,
            norm_groups=min(8, self.base_channels),
            schedule=self.schedule,
            timesteps=self.timesteps,
            prediction=self.prediction,
        )
        self._train_network(
            lambda: Diffusion(config), z, lr_schedule="cosine", warmup_steps=min(100, self.steps // 10)
        )
        return self

    # ------------------------------------------------------------------ sampling
    def sample(self, n_paths: int, length: int | None = None, seed: int | None = None) -> np.ndarray:
        """``[n_paths, length, C]`` synthetic paths in the data's units (length defaults to the window)."""
        length = self._sample_length(n_paths, length)
        padded = -(-length // self._factor) * self._factor
        gen = torch.Generator().manual_seed(int(seed)) if seed is not None else None
        chunks = []
        for start in range(0, n_paths, 1024):
            n = min(1024, n_paths - start)
            x = self.model_.sample(n, steps=self.sample_steps, generator=gen, length=padded)
            chunks.append(to_numpy(x[:, :, :length].transpose(1, 2)).astype(np.float64))
        return to_data_scale(self.transform_, np.concatenate(chunks), self.clip)

    @classmethod
    def example(cls) -> Example:
        """A tiny diffusion model on the last 600 S&P 500 returns (a few seconds)."""
        returns = cls._example_returns()
        params = {
            "window": 16,
            "base_channels": 8,
            "steps": 20,
            "timesteps": 50,
            "sample_steps": 4,
            "progress": False,
        }
        return Example(params=params, fit_args=(returns,), probe=lambda est: est.sample(4, 16, seed=3))
