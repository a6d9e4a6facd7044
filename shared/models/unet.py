"""1-D and 2-D UNets for diffusion: sinusoidal timestep embedding, GroupNorm ResNet blocks, optional
self-attention at chosen resolutions, class-label or vector conditioning.

The layout and parameter names mirror diffusers' ``UNet2DModel`` (``DownBlock2D`` / ``AttnDownBlock2D``,
``ResnetBlock2D`` with a time-embedding projection, a mid block with attention, ``UpBlock2D`` /
``AttnUpBlock2D``), so a 2-D UNet's ``state_dict`` loads into the equivalent ``UNet2DModel`` and back,
key for key; the benchmark relies on that to compare like with like. The same code builds a 1-D UNet
(``dims=1``) for signals and time series.

The UNet knows nothing about the noise schedule: it maps (x_t, t[, condition]) to a tensor shaped like x_t.
Speed notes (they matter at batch 1, where per-call overhead is a large share of a sampling step):
attention runs through ``scaled_dot_product_attention``; with no autograd graph, activations and
residual sums are computed in place; a ``channels_last`` 2-D input stays channels-last all the way
(attention reshapes are then free views); every ResNet block's time projection is one product
(:meth:`UNet.time_projections`); large single-image 3x3 convolutions go to oneDNN (:class:`Conv2d`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from genforge import kernels


@dataclass
class UNetConfig:
    """Shape of a UNet. ``attention_levels`` are indices into ``block_out_channels`` (0 = full
    resolution) whose blocks get self-attention; the mid block has attention when ``mid_attention``."""

    dims: int = 2
    in_channels: int = 1
    out_channels: int = 1
    block_out_channels: tuple[int, ...] = (64, 128, 128)
    layers_per_block: int = 2
    attention_levels: tuple[int, ...] = (1,)
    mid_attention: bool = True
    attention_head_dim: int = 32
    norm_num_groups: int = 32
    norm_eps: float = 1e-5
    dropout: float = 0.0
    num_classes: int = 0  # class conditioning: labels in [0, num_classes); index num_classes = "no class"
    cond_dim: int = 0  # vector conditioning [B, cond_dim]


_ONEDNN = torch.backends.mkldnn.is_available()


@torch.library.custom_op("genforge::conv2d_onednn", mutates_args=())
def conv2d_onednn(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: list[int], stride: list[int]
) -> torch.Tensor:
    """oneDNN's direct convolution (no dilation, one group), NCHW in and out. A custom op so that a
    compiled UNet keeps it as one opaque call (``torch.mkldnn_convolution`` has no fake-tensor kernel)."""
    return torch.mkldnn_convolution(x.contiguous(), weight, bias, padding, stride, [1, 1], 1).contiguous()


@conv2d_onednn.register_fake
def _(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: list[int], stride: list[int]
) -> torch.Tensor:
    h = (x.shape[2] + 2 * padding[0] - weight.shape[2]) // stride[0] + 1
    w = (x.shape[3] + 2 * padding[1] - weight.shape[3]) // stride[1] + 1
    return x.new_empty(x.shape[0], weight.shape[0], h, w)


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` with faster single-image paths when no graph is recorded (sampling at batch 1).

    Why: at batch 1 the 3x3 convolutions are ~70% of a UNet forward and oneDNN already runs them at the
    core's FMA rate. (1) Winograd F(2x2, 3x3) (:mod:`genforge.kernels`) does 2.25x fewer multiply-adds:
    1.1-1.4x faster per shape on x86 at batch 1, slower at batch 16 (docs/results/core.md), so it serves
    batch 1 only, when the native kernels are available. (2) Otherwise, for a batch of one with at most
    20,480 input values ATen picks im2col + GEMM, 16-28% slower than oneDNN's direct convolution for 3x3
    kernels of >= 8M multiply-adds; those go to oneDNN (a compiled graph calls :func:`conv2d_onednn`).
    Results equal the default path to float rounding; autograd, other dtypes and devices keep it.
    ``forward(x, residual)`` adds ``residual`` to the output (fused into the Winograd output pass).
    """

    MIN_MACS = 8_000_000
    MIN_WINOGRAD_MACS = 1_000_000
    ATEN_ONEDNN_ABOVE = 20480  # input values of one image above which ATen already picks oneDNN (torch 2.x)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._onednn_shape = (
            self.kernel_size == (3, 3)
            and self.groups == 1
            and self.dilation == (1, 1)
            and self.padding_mode == "zeros"
            and isinstance(self.padding, tuple)
        )
        self._winograd_shape = self._onednn_shape and self.stride == (1, 1) and self.padding == (1, 1)
        self._winograd = _DerivedWeights()

    def _fast_single_image(self, x: torch.Tensor) -> bool:
        return (
            self._onednn_shape
            and x.dim() == 4
            and x.shape[0] == 1
            and x.is_cpu
            and x.dtype == torch.float32
            and not torch.is_grad_enabled()
        )

    def _use_winograd(self, x: torch.Tensor) -> bool:
        if not (self._winograd_shape and self._fast_single_image(x)) or torch.compiler.is_compiling():
            return False
        macs = x.shape[2] * x.shape[3] * self.out_channels * self.in_channels * 9
        return macs >= self.MIN_WINOGRAD_MACS and kernels.available()

    def _use_onednn(self, x: torch.Tensor) -> bool:
        if not self._fast_single_image(x):
            return False
        if not _ONEDNN or not (torch.compiler.is_compiling() or torch.backends.mkldnn.enabled):
            return False
        if x.shape[1] * x.shape[2] * x.shape[3] > self.ATEN_ONEDNN_ABOVE:  # ATen sends it to oneDNN itself
            return False
        h = (x.shape[2] + 2 * self.padding[0] - 3) // self.stride[0] + 1
        w = (x.shape[3] + 2 * self.padding[1] - 3) // self.stride[1] + 1
        return h * w * self.out_channels * self.in_channels * 9 >= self.MIN_MACS

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        if residual is not None and self._use_winograd(x):
            return self._winograd_forward(x, residual)
        out = super().forward(x)
        if residual is None:
            return out
        return out.add_(residual) if _no_grad() else out + residual

    def _winograd_forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        weights = self._winograd.get((self.weight,), lambda: kernels.winograd_weights(self.weight))
        return kernels.winograd_conv3x3(x, weights, self.bias, residual)

    def _conv_forward(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        if weight is self.weight and bias is self.bias and self._use_winograd(x):
            return self._winograd_forward(x)
        if self._use_onednn(x):
            pad, stride = list(self.padding), list(self.stride)
            if torch.compiler.is_compiling():
                return conv2d_onednn(x, weight, bias, pad, stride)
            if x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last):
                return torch.mkldnn_convolution(x, weight, bias, pad, stride, [1, 1], 1)
        return super()._conv_forward(x, weight, bias)


def _conv(dims: int, cin: int, cout: int, kernel: int = 3, stride: int = 1, padding: int = 1) -> nn.Module:
    cls = nn.Conv1d if dims == 1 else Conv2d
    return cls(cin, cout, kernel_size=kernel, stride=stride, padding=padding)


def _no_grad() -> bool:
    return not torch.is_grad_enabled()


class _DerivedWeights:
    """Inference-only tensors derived from parameters (fused or re-laid-out weights), kept until one of
    their source parameters changes (new storage, in-place update, dtype or device)."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._value: Any = None

    def get(self, sources: tuple[torch.Tensor, ...], make: Callable[[], Any]) -> Any:
        if torch.compiler.is_compiling():  # in a graph: no Python cache (its state would be a guard)
            return make()
        if any(p.is_inference() for p in sources):  # made under inference_mode: no version counter
            return make()
        key = tuple((p.data_ptr(), p._version, p.dtype, p.device) for p in sources)
        if key != self._key:
            with torch.no_grad():
                self._value = make()
            self._key = key
        return self._value


class Timesteps(nn.Module):
    """Sinusoidal embedding [cos | sin] of integer or real timesteps (diffusers' flip_sin_to_cos=True,
    freq_shift=0)."""

    def __init__(self, dim: int, max_period: float = 10000.0) -> None:
        super().__init__()
        half = dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
        self.register_buffer("freqs", freqs, persistent=False)
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        args = t.float()[:, None] * self.freqs[None, :]
        emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
        if self.dim % 2:
            emb = F.pad(emb, (0, 1))
        return emb


class TimestepEmbedding(nn.Module):
    """Two-layer MLP on the sinusoidal embedding (names as diffusers: linear_1, act, linear_2)."""

    def __init__(self, in_dim: int, dim: int) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(in_dim, dim)
        self.act = nn.SiLU()
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(self.act(self.linear_1(x)))


class ResnetBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, with the (already SiLU-activated) time embedding added in between."""

    def __init__(
        self, dims: int, cin: int, cout: int, temb_dim: int, groups: int, eps: float, dropout: float
    ) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin, eps=eps)
        self.conv1 = _conv(dims, cin, cout)
        self.time_emb_proj = nn.Linear(temb_dim, cout)
        self.norm2 = nn.GroupNorm(groups, cout, eps=eps)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = _conv(dims, cout, cout)
        self.conv_shortcut = _conv(dims, cin, cout, kernel=1, padding=0) if cin != cout else None
        self.spatial = (1,) * dims

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        """``temb``: this block's projected time embedding [B or 1, cout] (``time_emb_proj`` of the
        activated embedding; the UNet computes all blocks' projections in one product)."""
        inplace = _no_grad()
        h = F.silu(self.norm1(x), inplace=inplace)
        h = self.conv1(h)
        temb = temb.reshape(*temb.shape, *self.spatial)
        h = h.add_(temb) if inplace else h + temb
        h = F.silu(self.norm2(h), inplace=inplace)
        if self.conv_shortcut is not None:
            x = self.conv_shortcut(x)
        if isinstance(self.conv2, Conv2d):  # the residual sum fused into the convolution's output
            return self.conv2(self.dropout(h), residual=x)
        h = self.conv2(self.dropout(h))
        return h.add_(x) if inplace else x + h


class Attention(nn.Module):
    """Multi-head self-attention over all positions with a GroupNorm in front and a residual sum.

    Parameter names follow diffusers' ``Attention`` (group_norm, to_q, to_k, to_v, to_out.0)."""

    def __init__(self, channels: int, head_dim: int, groups: int, eps: float, dropout: float) -> None:
        super().__init__()
        if channels % head_dim:
            raise ValueError(
                f"attention: channels {channels} are not a multiple of attention_head_dim {head_dim}"
            )
        self.heads = channels // head_dim
        self.head_dim = head_dim
        self.group_norm = nn.GroupNorm(groups, channels, eps=eps)
        self.to_q = nn.Linear(channels, channels)
        self.to_k = nn.Linear(channels, channels)
        self.to_v = nn.Linear(channels, channels)
        self.to_out = nn.ModuleList([nn.Linear(channels, channels), nn.Dropout(dropout)])
        self._fused = _DerivedWeights()

    def _qkv(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries, keys and values [B, heads, N, head_dim]; without autograd as one fused linear."""
        b = h.shape[0]
        if not _no_grad():
            return tuple(
                lin(h).view(b, -1, self.heads, self.head_dim).transpose(1, 2)
                for lin in (self.to_q, self.to_k, self.to_v)
            )
        lins = (self.to_q, self.to_k, self.to_v)
        weight, bias = self._fused.get(
            tuple(p for lin in lins for p in (lin.weight, lin.bias)),
            lambda: (torch.cat([lin.weight for lin in lins]), torch.cat([lin.bias for lin in lins])),
        )
        qkv = F.linear(h, weight, bias).view(b, -1, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        return qkv[0], qkv[1], qkv[2]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        b, c = shape[0], shape[1]
        h = self.group_norm(x).flatten(2).transpose(1, 2)  # [B, N, C]
        h = F.scaled_dot_product_attention(*self._qkv(h))
        h = self.to_out[1](self.to_out[0](h.transpose(1, 2).reshape(b, -1, c)))
        h = h.transpose(1, 2).reshape(shape)
        return h.add_(x) if _no_grad() else h + x


class Downsample(nn.Module):
    def __init__(self, dims: int, channels: int) -> None:
        super().__init__()
        self.conv = _conv(dims, channels, channels, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


# Nearest x2 upsampling followed by a 3-tap conv equals, per output phase (even / odd position), a
# 2-tap conv on the low-resolution input: phase 0 reads rows (i-1, i) with taps (w0, w1 + w2), phase 1
# reads (i, i+1) with taps (w0 + w1, w2). Per output pixel that is 2 taps instead of 3 along each axis,
# so a 2-D upsampling conv costs 16/36 of the multiply-adds, with the same result up to rounding.
_PHASE_TAPS = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]], [[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])


def _phase_weight(w: torch.Tensor, dims: int) -> torch.Tensor:
    """[Co, Ci, 3(, 3)] -> [2**dims * Co, Ci, 2(, 2)], phase-major (phase index = a * 2 + b)."""
    m = _PHASE_TAPS.to(w)
    if dims == 1:
        k = torch.einsum("apk,oik->aoip", m, w)
    else:
        k = torch.einsum("apk,bql,oikl->aboipq", m, m, w)
    return k.reshape(-1, *w.shape[1:-dims], *(2,) * dims).contiguous()


class Upsample(nn.Module):
    """Nearest-neighbour x2 (or to the skip connection's size when sizes are odd), then a 3x3 conv.

    Without autograd the x2 case runs as one 2x2 conv over the low-resolution input for all four output
    phases (see ``_phase_weight``); the fused weight is cached until the conv's weight changes.
    """

    def __init__(self, dims: int, channels: int) -> None:
        super().__init__()
        self.dims = dims
        self.conv = _conv(dims, channels, channels)
        self._cache = _DerivedWeights()

    def _fused(self) -> tuple[torch.Tensor, torch.Tensor]:
        w, b = self.conv.weight, self.conv.bias
        return self._cache.get((w, b), lambda: (_phase_weight(w, self.dims), b.repeat(2**self.dims)))

    def _phase_forward(self, x: torch.Tensor) -> torch.Tensor:
        weight, bias = self._fused()
        c = self.conv.out_channels
        if self.dims == 1:
            y = F.conv1d(F.pad(x, (1, 1)), weight, bias)  # [B, 2C, L+1]
            n, length = x.shape[0], x.shape[2]
            out = x.new_empty(n, c, length, 2)
            for a in range(2):
                out[..., a] = y[:, a * c : (a + 1) * c, a : a + length]
            return out.view(n, c, 2 * length)
        y = F.conv2d(F.pad(x, (1, 1, 1, 1)), weight, bias)  # [B, 4C, H+1, W+1]
        n, h, w = x.shape[0], x.shape[2], x.shape[3]
        out = x.new_empty(n, c, h, 2, w, 2)
        for a in range(2):
            for b in range(2):
                p = (a * 2 + b) * c
                out[:, :, :, a, :, b] = y[:, p : p + c, a : a + h, b : b + w]
        return out.view(n, c, 2 * h, 2 * w)

    def forward(self, x: torch.Tensor, size: torch.Size | None = None) -> torch.Tensor:
        if size is None:
            if not torch.is_grad_enabled():
                return self._phase_forward(x)
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        else:
            x = F.interpolate(x, size=size, mode="nearest")
        return self.conv(x)


class DownBlock(nn.Module):
    """``layers`` ResNet blocks (each followed by attention if enabled), then an optional downsample."""

    def __init__(self, cfg: UNetConfig, cin: int, cout: int, temb_dim: int, attention: bool, down: bool):
        super().__init__()
        g, e, d = cfg.norm_num_groups, cfg.norm_eps, cfg.dropout
        self.resnets = nn.ModuleList(
            ResnetBlock(cfg.dims, cin if i == 0 else cout, cout, temb_dim, g, e, d)
            for i in range(cfg.layers_per_block)
        )
        self.attentions = nn.ModuleList(
            Attention(cout, cfg.attention_head_dim, g, e, d)
            for _ in range(cfg.layers_per_block if attention else 0)
        )
        self.downsamplers = nn.ModuleList([Downsample(cfg.dims, cout)] if down else [])

    def forward(
        self, x: torch.Tensor, temb: Iterator[torch.Tensor], skips: list[torch.Tensor]
    ) -> torch.Tensor:
        attns = list(self.attentions)
        for i, resnet in enumerate(self.resnets):
            x = resnet(x, next(temb))
            if attns:
                x = attns[i](x)
            skips.append(x)
        for down in self.downsamplers:
            x = down(x)
            skips.append(x)
        return x


class MidBlock(nn.Module):
    """ResNet, (attention), ResNet at the lowest resolution."""

    def __init__(self, cfg: UNetConfig, channels: int, temb_dim: int) -> None:
        super().__init__()
        g, e, d = cfg.norm_num_groups, cfg.norm_eps, cfg.dropout
        self.attentions = nn.ModuleList(
            [Attention(channels, cfg.attention_head_dim, g, e, d)] if cfg.mid_attention else []
        )
        self.resnets = nn.ModuleList(
            ResnetBlock(cfg.dims, channels, channels, temb_dim, g, e, d) for _ in range(2)
        )

    def forward(self, x: torch.Tensor, temb: Iterator[torch.Tensor]) -> torch.Tensor:
        x = self.resnets[0](x, next(temb))
        for attn in self.attentions:
            x = attn(x)
        return self.resnets[1](x, next(temb))


class UpBlock(nn.Module):
    """``layers + 1`` ResNet blocks, each on [x, skip] concatenated (with attention if enabled), then an
    optional upsample."""

    def __init__(
        self, cfg: UNetConfig, cin: int, cout: int, prev: int, temb_dim: int, attention: bool, up: bool
    ) -> None:
        super().__init__()
        g, e, d = cfg.norm_num_groups, cfg.norm_eps, cfg.dropout
        n = cfg.layers_per_block + 1
        self.resnets = nn.ModuleList(
            ResnetBlock(
                cfg.dims, (prev if i == 0 else cout) + (cin if i == n - 1 else cout), cout, temb_dim, g, e, d
            )
            for i in range(n)
        )
        self.attentions = nn.ModuleList(
            Attention(cout, cfg.attention_head_dim, g, e, d) for _ in range(n if attention else 0)
        )
        self.upsamplers = nn.ModuleList([Upsample(cfg.dims, cout)] if up else [])

    def forward(
        self, x: torch.Tensor, temb: Iterator[torch.Tensor], skips: list[torch.Tensor]
    ) -> torch.Tensor:
        attns = list(self.attentions)
        for i, resnet in enumerate(self.resnets):
            x = resnet(torch.cat([x, skips.pop()], dim=1), next(temb))
            if attns:
                x = attns[i](x)
        for up in self.upsamplers:
            size = skips[-1].shape[2:] if skips else None  # the next skip's size (odd sizes round up)
            if size is not None and all(s == 2 * v for s, v in zip(size, x.shape[2:], strict=True)):
                size = None
            x = up(x, size)
        return x


class UNet(nn.Module):
    """A 1-D or 2-D UNet: (x [B, C, *spatial], t [B] or scalar[, labels | cond]) -> [B, C_out, *spatial].

    Conditioning is added to the time embedding: ``class_labels`` (Long [B]) through ``class_embedding``
    (row ``num_classes`` is the learned "no class" embedding for classifier-free guidance), or a vector
    ``cond`` [B, cond_dim] through ``cond_embedding`` (``null_cond`` is its "no condition" embedding).
    ``drop`` (bool [B]) replaces the condition of the marked rows by the null embedding.
    """

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        cfg = self.config = config
        if cfg.dims not in (1, 2):
            raise ValueError(f"UNet dims must be 1 or 2, got {cfg.dims}")
        ch = list(cfg.block_out_channels)
        if not ch:
            raise ValueError("UNet block_out_channels must not be empty")
        for c in ch:
            if c % cfg.norm_num_groups:
                raise ValueError(
                    f"UNet channels {c} are not a multiple of norm_num_groups {cfg.norm_num_groups}"
                )
        bad = [lvl for lvl in cfg.attention_levels if not 0 <= lvl < len(ch)]
        if bad:
            raise ValueError(f"UNet attention_levels {bad} are outside 0..{len(ch) - 1}")
        temb_dim = ch[0] * 4
        self.conv_in = _conv(cfg.dims, cfg.in_channels, ch[0])
        self.time_proj = Timesteps(ch[0])
        self.time_embedding = TimestepEmbedding(ch[0], temb_dim)
        self.class_embedding = nn.Embedding(cfg.num_classes + 1, temb_dim) if cfg.num_classes > 0 else None
        if cfg.cond_dim > 0:
            self.cond_embedding: nn.Module | None = nn.Linear(cfg.cond_dim, temb_dim)
            self.null_cond = nn.Parameter(torch.zeros(temb_dim))
        else:
            self.cond_embedding = None
        last = len(ch) - 1
        attn = set(cfg.attention_levels)
        self.down_blocks = nn.ModuleList()
        cout = ch[0]
        for i, c in enumerate(ch):
            cin, cout = cout, c
            self.down_blocks.append(DownBlock(cfg, cin, cout, temb_dim, i in attn, down=i != last))
        self.mid_block = MidBlock(cfg, ch[-1], temb_dim)
        self.up_blocks = nn.ModuleList()
        rev = ch[::-1]
        cout = rev[0]
        for i in range(len(ch)):
            prev, cout = cout, rev[i]
            cin = rev[min(i + 1, last)]
            self.up_blocks.append(UpBlock(cfg, cin, cout, prev, temb_dim, (last - i) in attn, up=i != last))
        self.conv_norm_out = nn.GroupNorm(cfg.norm_num_groups, ch[0], eps=cfg.norm_eps)
        self.conv_act = nn.SiLU()
        self.conv_out = _conv(cfg.dims, ch[0], cfg.out_channels)
        self._time_stack = _DerivedWeights()

    def embed(
        self,
        t: torch.Tensor | int | float,
        class_labels: torch.Tensor | None = None,
        cond: torch.Tensor | None = None,
        drop: torch.Tensor | None = None,
        device: torch.device | None = None,
    ) -> torch.Tensor:
        """The SiLU-activated time (+ condition) embedding that every ResNet block projects: [B or 1, D]."""
        if not torch.is_tensor(t):
            t = torch.tensor([t], device=device)
        elif t.ndim == 0:
            t = t[None]
        emb = self.time_embedding(self.time_proj(t))
        if self.class_embedding is not None:
            if class_labels is None:
                raise ValueError("this UNet is class-conditional: pass class_labels (Long [B])")
            labels = class_labels.long()
            if drop is not None:
                labels = torch.where(drop, torch.full_like(labels, self.config.num_classes), labels)
            emb = emb + self.class_embedding(labels)
        elif class_labels is not None:
            raise ValueError("class_labels given to a UNet built without num_classes")
        if self.cond_embedding is not None:
            if cond is None:
                raise ValueError(f"this UNet is conditional: pass cond [B, {self.config.cond_dim}]")
            c = self.cond_embedding(cond)
            if drop is not None:
                c = torch.where(drop[:, None], self.null_cond.to(c.dtype).expand_as(c), c)
            emb = emb + c
        elif cond is not None:
            raise ValueError("cond given to a UNet built without cond_dim")
        return F.silu(emb)

    def _resnets(self) -> list[ResnetBlock]:
        """Every ResNet block in the order the forward pass calls them."""
        return [r for block in (*self.down_blocks, self.mid_block, *self.up_blocks) for r in block.resnets]

    def time_projections(self, temb_act: torch.Tensor) -> list[torch.Tensor]:
        """Each ResNet block's ``time_emb_proj(temb_act)``, in call order, computed as one product over the
        blocks' stacked weights: one GEMM instead of one small matrix-vector call per block (which at
        batch 1 cost ~1 ms of a ~40 ms forward in call overhead). Cached stacked weights without autograd."""
        lins = [r.time_emb_proj for r in self._resnets()]

        def stack() -> tuple[torch.Tensor, torch.Tensor]:
            return torch.cat([lin.weight for lin in lins]), torch.cat([lin.bias for lin in lins])

        if _no_grad():
            sources = tuple(p for lin in lins for p in (lin.weight, lin.bias))
            weight, bias = self._time_stack.get(sources, stack)
        else:
            weight, bias = stack()
        return list(F.linear(temb_act, weight, bias).split([lin.out_features for lin in lins], dim=-1))

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor | int | float,
        class_labels: torch.Tensor | None = None,
        cond: torch.Tensor | None = None,
        drop: torch.Tensor | None = None,
    ) -> torch.Tensor:
        temb = iter(self.time_projections(self.embed(t, class_labels, cond, drop, device=x.device)))
        h = self.conv_in(x)
        skips = [h]
        for block in self.down_blocks:
            h = block(h, temb, skips)
        h = self.mid_block(h, temb)
        for block in self.up_blocks:
            h = block(h, temb, skips)
        h = F.silu(self.conv_norm_out(h), inplace=_no_grad())
        return self.conv_out(h)
