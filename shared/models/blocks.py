"""Shared building blocks for the model families: MLPs, 1-D/2-D conv stages, residual blocks, a
temporal convolutional network (TCN) with dilated causal convolutions, spectral-norm wrapping, and
the padding helpers that let conv models accept sizes not divisible by their stride product.

Everything here is a plain ``nn.Module`` or a function returning one; no block knows about a
likelihood or a loss, so VAE, GAN (and suites) can compose them freely.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def activation(name: str) -> nn.Module:
    """An activation module by name ("silu", "relu", "leaky_relu" (slope 0.2), "gelu", "tanh")."""
    table = {
        "silu": nn.SiLU,
        "relu": nn.ReLU,
        "gelu": nn.GELU,
        "tanh": nn.Tanh,
        "leaky_relu": lambda: nn.LeakyReLU(0.2),
    }
    if name not in table:
        raise ValueError(f"unknown activation {name!r}; expected one of {sorted(table)}")
    return table[name]()


def group_norm(channels: int, max_groups: int = 8) -> nn.GroupNorm:
    """GroupNorm with the largest group count <= max_groups that divides ``channels``.

    Batch-independent (unlike BatchNorm), so a sample's score does not depend on its batch mates.
    """
    groups = math.gcd(channels, max_groups)
    return nn.GroupNorm(groups, channels)


def mlp(
    in_dim: int,
    widths: Sequence[int],
    out_dim: int,
    act: str = "silu",
    norm: str | None = None,
    dropout: float = 0.0,
) -> nn.Sequential:
    """Linear -> [norm] -> act -> [dropout] for each width, then a final Linear to ``out_dim``.

    ``norm`` is None, "layer" or "batch".
    """
    layers: list[nn.Module] = []
    prev = in_dim
    for width in widths:
        layers.append(nn.Linear(prev, width))
        if norm == "layer":
            layers.append(nn.LayerNorm(width))
        elif norm == "batch":
            layers.append(nn.BatchNorm1d(width))
        elif norm is not None:
            raise ValueError(f"unknown norm {norm!r}; expected None, 'layer' or 'batch'")
        layers.append(activation(act))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        prev = width
    layers.append(nn.Linear(prev, out_dim))
    return nn.Sequential(*layers)


def conv_cls(dims: int) -> type[nn.Module]:
    """nn.Conv1d or nn.Conv2d."""
    return {1: nn.Conv1d, 2: nn.Conv2d}[dims]


def conv_transpose_cls(dims: int) -> type[nn.Module]:
    """nn.ConvTranspose1d or nn.ConvTranspose2d."""
    return {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d}[dims]


class ResBlock(nn.Module):
    """Pre-activation residual block: x + conv(act(norm(conv(act(norm(x)))))), same shape out."""

    def __init__(self, dims: int, channels: int, dropout: float = 0.0):
        super().__init__()
        conv = conv_cls(dims)
        self.body = nn.Sequential(
            group_norm(channels),
            nn.SiLU(),
            conv(channels, channels, 3, padding=1),
            group_norm(channels),
            nn.SiLU(),
            nn.Dropout(dropout),
            conv(channels, channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def down_stage(
    dims: int, c_in: int, c_out: int, dropout: float = 0.0, residual: bool = True
) -> nn.Sequential:
    """Halve every spatial size exactly (for even sizes): strided conv, norm, act, residual block.

    ``residual=False`` keeps only the strided conv and the activation: several times cheaper on a CPU,
    for small inputs where depth buys little (e.g. single heartbeats).
    """
    if not residual:
        return nn.Sequential(conv_cls(dims)(c_in, c_out, 4, stride=2, padding=1), nn.SiLU())
    return nn.Sequential(
        conv_cls(dims)(c_in, c_out, 4, stride=2, padding=1),
        group_norm(c_out),
        nn.SiLU(),
        ResBlock(dims, c_out, dropout),
    )


def up_stage(
    dims: int, c_in: int, c_out: int, dropout: float = 0.0, residual: bool = True
) -> nn.Sequential:
    """Double every spatial size exactly: transposed conv, norm, act, residual block (``residual=False``:
    the transposed conv and the activation only, as in :func:`down_stage`)."""
    if not residual:
        return nn.Sequential(conv_transpose_cls(dims)(c_in, c_out, 4, stride=2, padding=1), nn.SiLU())
    return nn.Sequential(
        conv_transpose_cls(dims)(c_in, c_out, 4, stride=2, padding=1),
        group_norm(c_out),
        nn.SiLU(),
        ResBlock(dims, c_out, dropout),
    )


def padded_size(size: int, multiple: int) -> int:
    """The smallest multiple of ``multiple`` that is >= ``size``."""
    return -(-size // multiple) * multiple


def pad_to(x: torch.Tensor, sizes: Sequence[int]) -> torch.Tensor:
    """Zero-pad the trailing spatial dims of ``x`` at their end up to ``sizes``."""
    pads: list[int] = []
    for have, want in zip(reversed(x.shape[-len(sizes) :]), reversed(list(sizes)), strict=True):
        pads += [0, want - have]
    return F.pad(x, pads) if any(pads) else x


def crop_to(x: torch.Tensor, sizes: Sequence[int]) -> torch.Tensor:
    """Keep the leading ``sizes`` entries of the trailing spatial dims of ``x``."""
    index = (..., *(slice(0, s) for s in sizes))
    return x[index]


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Wrap every Linear / Conv / ConvTranspose weight in ``module`` with spectral normalisation.

    Recurrent layers are left as they are. Returns the module (changed in place).
    """
    targets = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.ConvTranspose1d, nn.ConvTranspose2d)
    for sub in list(module.modules()):
        if isinstance(sub, targets):
            nn.utils.parametrizations.spectral_norm(sub)
    return module


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel dim of [B, C, L]: per time step, so it keeps causality."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.transpose(1, 2)).transpose(1, 2)


class CausalConv1d(nn.Conv1d):
    """Conv1d padded on the left only, so output step t sees inputs <= t; same length out."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, dilation: int = 1):
        super().__init__(c_in, c_out, kernel_size, dilation=dilation)
        self.left_pad = (kernel_size - 1) * dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (self.left_pad, 0)))


class TCNBlock(nn.Module):
    """Residual block of two dilated causal convs (Bai et al. 2018), with per-step LayerNorm."""

    def __init__(self, channels: int, kernel_size: int, dilation: int, norm: bool = True):
        super().__init__()
        self.body = nn.Sequential(
            CausalConv1d(channels, channels, kernel_size, dilation),
            ChannelLayerNorm(channels) if norm else nn.Identity(),
            nn.LeakyReLU(0.2),
            CausalConv1d(channels, channels, kernel_size, dilation),
            ChannelLayerNorm(channels) if norm else nn.Identity(),
            nn.LeakyReLU(0.2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def tcn_depth(length: int, kernel_size: int = 3) -> int:
    """Blocks (dilations 1, 2, 4, ...) needed for the receptive field to cover ``length`` steps."""
    depth = 1
    while tcn_receptive_field(depth, kernel_size) < length:
        depth += 1
    return depth


def tcn_receptive_field(depth: int, kernel_size: int = 3) -> int:
    """Receptive field of ``depth`` TCNBlocks with dilations 2**i (two convs per block)."""
    return 1 + 2 * (kernel_size - 1) * (2**depth - 1)


class TCN(nn.Module):
    """[B, c_in, L] -> [B, c_out, L]: 1x1 in-projection, dilated causal TCN blocks, 1x1 out.

    The number of blocks is chosen so that the receptive field covers ``length`` steps; the network
    itself accepts any length.
    """

    def __init__(self, c_in: int, width: int, c_out: int, length: int, kernel_size: int = 3,
                 norm: bool = True):
        super().__init__()
        depth = tcn_depth(max(length, 2), kernel_size)
        self.receptive_field = tcn_receptive_field(depth, kernel_size)
        self.inp = nn.Conv1d(c_in, width, 1)
        self.blocks = nn.Sequential(*(TCNBlock(width, kernel_size, 2**i, norm) for i in range(depth)))
        self.out = nn.Conv1d(width, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.blocks(self.inp(x)))
