"""Baselines the level VAE is measured against, in the same run.

- :class:`MarkovColumns` — the PCGML classic (Snodgrass & Ontañón; Dahlskog et al.'s n-grams): a level
  is a sequence of columns; the next column is drawn from the columns that followed the same ``order``
  previous columns in the training levels, backing off to shorter histories when a history is unseen.
- :class:`LevelGAN` — MarioGAN-style: the core :class:`genforge.GAN` (``kind="image"``, DCGAN players,
  WGAN-GP) on one-hot tile windows scaled to [-1, 1]; the argmax channel is the tile. Levels are windows
  from independent latents placed side by side, as MarioGAN concatenates segments.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from genforge.estimator import Example, SuiteEstimator, to_numpy
from genforge.games.data import Level, Vocabulary
from genforge.games.models import check_levels, level_windows


class MarkovColumns:
    """Column n-gram model with back-off (``order`` previous columns)."""

    def __init__(self, order: int = 2, seed: int = 0):
        self.order = order
        self.seed = seed

    def fit(self, levels: Sequence[Level]) -> MarkovColumns:
        levels = check_levels(levels)
        self.legend_ = dict(levels[0].legend)
        self.table_: dict[int, dict[tuple, list[str]]] = {k: defaultdict(list) for k in range(self.order + 1)}
        self.starts_: list[tuple[str, ...]] = []
        for level in levels:
            cols = ["".join(level.grid[:, c]) for c in range(level.grid.shape[1])]
            self.starts_.append(tuple(cols[: self.order]))
            for i in range(len(cols)):
                for k in range(self.order + 1):
                    if i - k >= 0:
                        self.table_[k][tuple(cols[i - k:i])].append(cols[i])
        return self

    def generate(self, n: int = 1, width: int = 150, seed: int = 0) -> list[Level]:
        rng = np.random.default_rng(seed)
        out = []
        for i in range(n):
            cols = list(self.starts_[rng.integers(len(self.starts_))])
            while len(cols) < width:
                for k in range(self.order, -1, -1):
                    options = self.table_[k].get(tuple(cols[len(cols) - k:]) if k else ())
                    if options:
                        cols.append(options[rng.integers(len(options))])
                        break
            grid = np.array([list(c) for c in cols[:width]], dtype="<U1").T
            out.append(Level(grid=grid, legend=dict(self.legend_), name=f"markov-{seed}-{i}", game="markov"))
        return out


class LevelGAN(SuiteEstimator):
    """The core GAN on one-hot tile windows (see the module docstring)."""

    state_version: ClassVar[int] = 1

    def __init__(self, height: int = 14, width: int = 16, latent_dim: int = 32,
                 hidden: tuple[int, ...] = (64, 128),
                 max_steps: int = 1000, batch_size: int = 64, lr: float = 2e-4, seed: int = 0,
                 progress: bool = False, device: str = "auto"):
        self.height = height
        self.width = width
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.max_steps = max_steps
        self.batch_size = batch_size
        self.lr = lr
        self.seed = seed
        self.progress = progress
        self.device = device

    @classmethod
    def example(cls) -> Example:
        from genforge.games.rules import rule_levels

        levels = rule_levels(2, width=40, seed=3)
        return Example(params={"max_steps": 5, "hidden": (16, 32), "latent_dim": 8, "batch_size": 16},
                       fit_args=(levels,), probe=lambda est: est.sample_windows(4, seed=0))

    def fit(self, levels: Sequence[Level], y: Any = None) -> LevelGAN:
        from genforge import GAN, GANConfig
        from genforge.devices import pick_device
        from genforge.training import TrainConfig, Trainer

        levels = check_levels(levels)
        self.vocab_ = Vocabulary.of_levels(levels)
        x, _ = level_windows(levels, self.vocab_, self.height, self.width)
        k = len(self.vocab_.chars)
        onehot = torch.nn.functional.one_hot(torch.from_numpy(x), k).permute(0, 3, 1, 2).float() * 2 - 1
        device = pick_device(self.device)
        torch.manual_seed(self.seed)
        model = GAN(GANConfig(kind="image", loss="wgan-gp", latent_dim=self.latent_dim,
                              hidden=tuple(self.hidden), channels=k, image_size=(self.height, self.width),
                              n_critic=5))
        tcfg = TrainConfig(max_steps=self.max_steps, batch_size=min(self.batch_size, len(x)), lr=self.lr,
                           betas=(0.5, 0.9), val_every=None, seed=self.seed, progress=self.progress,
                           device=str(device), precision="fp32", drop_last=len(x) > self.batch_size)
        self.train_result_ = Trainer(tcfg).fit(model, (onehot,))
        self.model_ = model.to(device).eval()
        self.game_ = levels[0].game
        return self

    @torch.no_grad()
    def sample_windows(self, n: int, seed: int = 0) -> np.ndarray:
        self._check_fitted()
        torch.manual_seed(seed)
        z = torch.randn(n, self.latent_dim).to(self._device())
        self.model_.generator.eval()
        return to_numpy(self.model_.generator(z).argmax(1))

    def generate(self, n: int = 1, width: int = 150, seed: int = 0) -> list[Level]:
        self._check_fitted()
        per = -(-width // self.width)
        windows = self.sample_windows(n * per, seed)
        out = []
        for i in range(n):
            codes = np.hstack(list(windows[i * per:(i + 1) * per]))[:, :width]
            out.append(Level(grid=self.vocab_.decode(codes), legend=dict(self.vocab_.legend),
                             name=f"gan-{seed}-{i}", game="gan"))
        return out

    def _get_state(self) -> dict[str, Any]:
        return {"chars": self.vocab_.chars, "legend": self.vocab_.legend, "aliases": self.vocab_.aliases,
                "game": self.game_}

    def _set_state(self, state: dict[str, Any], directory: Path) -> None:
        legend = {k: list(v) for k, v in state["legend"].items()}
        self.vocab_ = Vocabulary(chars=state["chars"], legend=legend, aliases=dict(state["aliases"]))
        self.game_ = state["game"]
