"""Exponential moving average of a model's weights (used by diffusion and GAN generators especially).

What the code does: the shadow starts as a copy of the model's whole ``state_dict`` (parameters and
buffers) and, after every optimizer step, every floating-point entry follows
``shadow = decay * shadow + (1 - decay) * value`` - float buffers such as batch-norm running
statistics are averaged like the weights; only non-float entries (e.g. ``num_batches_tracked``) are
copied as they are. The decay is constant from the first step (no warm-up or bias correction), so
with decay d the shadow still leans on the initial weights for roughly 1 / (1 - d) steps. Shadow
tensors are float32 (whatever the model's dtype), on the model's device; ``copy_to`` casts them back
into the model's own tensors.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


class EMA:
    """Shadow weights of ``model``; ``update`` after each step, ``copy_to`` / ``swapped`` to use them."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema_decay must be in (0, 1), got {decay}")
        self.decay = float(decay)
        self.shadow = {k: self._fp32(v).clone() for k, v in model.state_dict().items()}

    @staticmethod
    def _fp32(t: torch.Tensor) -> torch.Tensor:
        return t.detach().float() if t.is_floating_point() else t.detach()

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for key, value in model.state_dict().items():
            shadow = self.shadow[key]
            if value.is_floating_point():
                shadow.lerp_(value.detach().float(), 1.0 - self.decay)
            else:
                shadow.copy_(value)

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Overwrite ``model``'s weights with the EMA weights."""
        model.load_state_dict(self.shadow)

    @contextlib.contextmanager
    def swapped(self, model: nn.Module) -> Iterator[nn.Module]:
        """Temporarily run ``model`` with the EMA weights (e.g. for validation), then restore them."""
        backup = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.copy_to(model)
        try:
            yield model
        finally:
            model.load_state_dict(backup)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.shadow)

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        missing = set(self.shadow) - set(state)
        if missing:
            raise KeyError(f"EMA state lacks {len(missing)} key(s), e.g. {sorted(missing)[0]!r}")
        for key, value in state.items():
            if key in self.shadow:
                self.shadow[key].copy_(value)
