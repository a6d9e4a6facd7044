"""Device and precision policy, and seeding, in one place so every entry point behaves the same.

* ``pick_device("auto")`` prefers CUDA, then Apple MPS, then the CPU; an explicit choice that this
  machine cannot honour is a :class:`GenforgeError`, not a silent fallback.
* ``autocast(device, precision)``: ``"auto"`` means bf16 autocast on CUDA (no loss scaling needed)
  and plain fp32 everywhere else; ``"bf16"`` / ``"fp32"`` force the choice.
* ``seed_everything(seed)`` seeds Python, NumPy and torch (all devices), so the same seed gives the
  same weights on the CPU.
"""

from __future__ import annotations

import contextlib
import random
from typing import Any

import numpy as np
import torch

from genforge.errors import GenforgeError

PRECISIONS = ("auto", "fp32", "bf16")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def pick_device(pref: str | torch.device = "auto") -> torch.device:
    """The device to train/sample on: ``"auto"`` (cuda > mps > cpu), ``"cpu"``, ``"cuda[:i]"``, ``"mps"``."""
    if isinstance(pref, torch.device):
        pref = str(pref)
    choice = (pref or "auto").strip().lower()
    if choice == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(choice)
    except (RuntimeError, ValueError):
        raise GenforgeError(
            f"device {pref!r}: unknown device; expected auto, cpu, cuda[:index] or mps"
        ) from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise GenforgeError(
                f"device {pref!r}: CUDA is not available on this machine; use 'auto' or 'cpu'"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise GenforgeError(
                f"device {pref!r}: only {torch.cuda.device_count()} CUDA device(s) visible; expected index "
                f"below that"
            )
        return device
    if device.type == "mps":
        if not _mps_available():
            raise GenforgeError(
                f"device {pref!r}: Apple MPS is not available on this machine; use 'auto' or 'cpu'"
            )
        return device
    raise GenforgeError(f"device {pref!r}: unsupported device type; expected auto, cpu, cuda[:index] or mps")


def available_devices() -> list[str]:
    """Devices this machine offers, best first (for ``genforge info``), e.g. ``["cuda:0", "cpu"]``."""
    found = [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    if _mps_available():
        found.append("mps")
    return [*found, "cpu"]


def autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device``, or None for plain fp32."""
    if precision not in PRECISIONS:
        raise GenforgeError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    return torch.bfloat16 if device.type == "cuda" else None


def autocast(device: torch.device, precision: str = "auto") -> contextlib.AbstractContextManager[Any]:
    """A context manager running the forward pass under the precision policy."""
    dtype = autocast_dtype(device, precision)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and every CUDA device)."""
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
