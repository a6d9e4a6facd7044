"""Denoising diffusion model (DDPM training; DDPM or DDIM sampling) over 1-D or 2-D data.

``Diffusion`` = a ``UNet`` (which knows nothing of the noise schedule) + a training ``NoiseSchedule``
+ a swappable sampler (``DDIMScheduler`` / ``DDPMScheduler``, chosen by config or per call). It predicts
epsilon or v, supports class labels or a conditioning vector, and classifier-free guidance: during
training the condition is dropped with probability ``cfg_dropout`` (replaced by a learned null
embedding); at sampling, ``guidance_scale`` w mixes the two predictions, out = u + w (c - u), so w = 1
is the plain conditional model. EMA weights are the training engine's job (``TrainConfig.ema_decay``).

Data is used as given; scale it to about [-1, 1] (``clip_sample`` clips the x0 estimate to that range).
Shapes: dims=2 x [B, C, H, W]; dims=1 x [B, C, L]. A batch is x, or (x, labels [B] Long | cond [B, D]).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genforge.errors import ConfigError
from genforge.models.batch import split_batch
from genforge.models.schedulers import (
    PREDICTIONS,
    SCHEDULES,
    NoiseSchedule,
    _Scheduler,
    make_scheduler,
    randn,
)
from genforge.models.unet import UNet, UNetConfig
from genforge.registry import register_model


@dataclass
class DiffusionConfig:
    dims: int = 2  # 1: signals [B, C, L]; 2: images [B, C, H, W]
    channels: int = 1
    image_size: tuple[int, int] = (28, 28)  # dims=2
    length: int = 0  # dims=1
    base_channels: int = 64
    channel_mults: tuple[int, ...] = (1, 2, 2)
    layers_per_block: int = 2
    attention_levels: tuple[int, ...] = (1,)  # levels (0 = full resolution) with self-attention
    mid_attention: bool = True
    attention_head_dim: int = 32
    norm_groups: int = 32
    dropout: float = 0.0
    schedule: str = "linear"  # "linear" | "cosine"
    beta_start: float = 1e-4
    beta_end: float = 0.02
    timesteps: int = 1000
    prediction: str = "epsilon"  # "epsilon" | "v"
    sampler: str = "ddim"  # default sampler: "ddim" | "ddpm"
    timestep_spacing: str = "trailing"  # "trailing" | "leading" | "linspace"
    clip_sample: bool = False
    num_classes: int = 0  # class-conditional: labels in [0, num_classes)
    cond_dim: int = 0  # vector-conditional: cond [B, cond_dim]
    cfg_dropout: float = 0.0  # probability of dropping the condition in training (enables guidance)

    def __post_init__(self) -> None:
        self.image_size = tuple(int(s) for s in self.image_size)
        self.channel_mults = tuple(int(m) for m in self.channel_mults)
        self.attention_levels = tuple(int(a) for a in self.attention_levels)
        if self.dims not in (1, 2):
            raise ConfigError(f"DiffusionConfig.dims: expected 1 or 2, got {self.dims}")
        if self.dims == 2 and (len(self.image_size) != 2 or min(self.image_size) < 1):
            raise ConfigError(f"DiffusionConfig.image_size: expected positive (H, W), got {self.image_size}")
        if self.dims == 1 and self.length < 1:
            raise ConfigError(f"DiffusionConfig.length: expected >= 1 for dims=1, got {self.length}")
        if self.channels < 1 or self.base_channels < 1 or self.timesteps < 1:
            raise ConfigError(
                "DiffusionConfig.channels, base_channels, timesteps: expected positive integers"
            )
        if not self.channel_mults or min(self.channel_mults) < 1:
            raise ConfigError(
                f"DiffusionConfig.channel_mults: expected positive factors, got {self.channel_mults}"
            )
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"DiffusionConfig.schedule: expected one of {SCHEDULES}, got {self.schedule!r}")
        if self.prediction not in PREDICTIONS:
            raise ConfigError(
                f"DiffusionConfig.prediction: expected one of {PREDICTIONS}, got {self.prediction!r}"
            )
        if self.num_classes and self.cond_dim:
            raise ConfigError("DiffusionConfig.num_classes, cond_dim: expected one of them, not both")
        if not 0.0 <= self.cfg_dropout < 1.0:
            raise ConfigError(
                f"DiffusionConfig.cfg_dropout: expected a value in [0, 1), got {self.cfg_dropout}"
            )


@register_model("diffusion")
class Diffusion(nn.Module):
    """DDPM-trained denoiser with DDIM/DDPM samplers and classifier-free guidance."""

    config_class = DiffusionConfig
    family = "diffusion"

    def __init__(self, config: DiffusionConfig) -> None:
        super().__init__()
        self.config = cfg = config
        self.sample_shape = self._sample_shape()
        self.unet = UNet(
            UNetConfig(
                dims=cfg.dims,
                in_channels=cfg.channels,
                out_channels=cfg.channels,
                block_out_channels=tuple(cfg.base_channels * m for m in cfg.channel_mults),
                layers_per_block=cfg.layers_per_block,
                attention_levels=tuple(cfg.attention_levels),
                mid_attention=cfg.mid_attention,
                attention_head_dim=cfg.attention_head_dim,
                norm_num_groups=cfg.norm_groups,
                dropout=cfg.dropout,
                num_classes=cfg.num_classes,
                cond_dim=cfg.cond_dim,
            )
        )
        self.noise_schedule = NoiseSchedule(cfg.schedule, cfg.timesteps, cfg.beta_start, cfg.beta_end)

    def _sample_shape(self) -> tuple[int, ...]:
        cfg = self.config
        if cfg.dims == 2:
            return (cfg.channels, *cfg.image_size)
        return (cfg.channels, cfg.length)

    @property
    def conditional(self) -> bool:
        return bool(self.config.num_classes or self.config.cond_dim)

    # ----------------------------------------------------------------------------------- network
    def _cond_kwargs(self, cond: torch.Tensor | None) -> dict[str, torch.Tensor | None]:
        if not self.conditional:
            if cond is not None:
                raise ValueError("this diffusion model is unconditional; got a condition")
            return {}
        if cond is None:
            raise ValueError("this diffusion model is conditional; pass cond (labels or vectors)")
        return {"class_labels": cond} if self.config.num_classes else {"cond": cond.float()}

    def predict(
        self,
        x: torch.Tensor,
        t: torch.Tensor | int,
        cond: torch.Tensor | None = None,
        guidance_scale: float = 1.0,
    ) -> torch.Tensor:
        """Network output at (x_t, t), guided: u + w (c - u) with u the unconditional prediction.

        w = 1 is one conditional pass; any other w runs conditional and null rows in one batch.
        """
        return self._predict(self.unet, x, t, cond, guidance_scale)

    def _predict(
        self,
        net: nn.Module,
        x: torch.Tensor,
        t: torch.Tensor | int,
        cond: torch.Tensor | None,
        guidance_scale: float,
    ) -> torch.Tensor:
        kwargs = self._cond_kwargs(cond)
        if not kwargs or guidance_scale == 1.0:
            return net(x, t, **kwargs)
        b = x.shape[0]
        drop = torch.cat([torch.zeros(b, dtype=torch.bool), torch.ones(b, dtype=torch.bool)]).to(x.device)
        kwargs = {k: torch.cat([v, v]) for k, v in kwargs.items()}
        tt = torch.cat([t, t]) if torch.is_tensor(t) and t.ndim > 0 else t
        out = net(torch.cat([x, x]), tt, drop=drop, **kwargs)
        c, u = out[:b], out[b:]
        return u + guidance_scale * (c - u)

    # ---------------------------------------------------------------------------------- training
    def training_loss(self, batch: torch.Tensor | Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
        """DDPM objective: MSE between the network output and the eps (or v) target at a random t."""
        x0, cond = split_batch(batch, conditional=self.conditional)
        x0 = x0.float()
        if tuple(x0.shape[1:]) != self.sample_shape:
            raise ValueError(
                f"diffusion batch: expected x of shape [B, {self.sample_shape}], got {list(x0.shape)}"
            )
        b = x0.shape[0]
        t = torch.randint(0, self.config.timesteps, (b,), device=x0.device)
        noise = torch.randn_like(x0)
        sched = self.noise_schedule
        x_t = sched.add_noise(x0, noise, t)
        kwargs = self._cond_kwargs(cond)
        drop = None
        if kwargs and self.config.cfg_dropout > 0:
            drop = torch.rand(b, device=x0.device) < self.config.cfg_dropout
        out = self.unet(x_t, t, drop=drop, **kwargs)
        loss = F.mse_loss(out, sched.target(self.config.prediction, x0, noise, t))
        return {"loss": loss, "mse": loss.detach()}

    # ---------------------------------------------------------------------------------- sampling
    def make_scheduler(self, sampler: str | None = None) -> _Scheduler:
        """A fresh scheduler on this model's training schedule ("ddim" or "ddpm"; default from config)."""
        cfg = self.config
        return make_scheduler(
            sampler or cfg.sampler,
            num_train_timesteps=cfg.timesteps,
            beta_schedule=cfg.schedule,
            beta_start=cfg.beta_start,
            beta_end=cfg.beta_end,
            prediction_type=cfg.prediction,
            timestep_spacing=cfg.timestep_spacing,
            clip_sample=cfg.clip_sample,
        )

    def compiled_unet(self) -> nn.Module:
        """The UNet wrapped once in ``torch.compile(dynamic=False)``: one static-shape graph per batch
        size (inductor fuses GroupNorm + SiLU, the time-embedding and residual adds around oneDNN's
        convolutions). Inductor's layout optimisation (convolutions in channels-last) is off for this
        graph (oneDNN's NCHW convolutions were the faster ones here; docs/results/core.md, DDIM
        round 2). Weights stay graph inputs, so training the UNet afterwards needs no recompile.
        Kept outside the module tree (not in ``state_dict``)."""
        net = self.__dict__.get("_compiled_unet")
        if net is None:
            net = torch.compile(self.unet, dynamic=False, options={"layout_optimization": False})
            self.__dict__["_compiled_unet"] = net
        return net

    @torch.inference_mode()
    def sample(
        self,
        n: int,
        steps: int = 50,
        sampler: str | _Scheduler | None = None,
        eta: float = 0.0,
        guidance_scale: float = 1.0,
        cond: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        progress: bool = False,
        length: int | None = None,
        compile: bool = False,
    ) -> torch.Tensor:
        """Draw ``n`` samples with ``steps`` reverse steps of a DDIM ("ddim", ``eta`` = 0 deterministic)
        or DDPM ("ddpm") sampler, or any scheduler object with set_timesteps/step.

        cond: labels [n] (Long) or vectors [n, cond_dim] for conditional models. ``length`` overrides
        the sequence length of a 1-D model (any multiple of the UNet's downsampling factor works).
        ``compile=True`` runs the UNet through ``compiled_unet()`` (see there: the first call per batch
        size compiles, which takes minutes on a small CPU; the samples agree with eager to float tolerance).
        """
        if n < 1:
            raise ValueError(f"sample: n must be >= 1, got {n}")
        scheduler = sampler if isinstance(sampler, _Scheduler) else self.make_scheduler(sampler)
        device = next(self.parameters()).device
        shape = self.sample_shape
        if length is not None:
            if self.config.dims != 1:
                raise ValueError("sample: length is only for 1-D models")
            shape = (shape[0], int(length))
        if cond is not None:
            cond = cond.to(device)
            if cond.shape[0] != n:
                raise ValueError(f"sample: cond has {cond.shape[0]} rows for n={n}")
        was_training = self.training
        self.eval()
        try:
            x = randn((n, *shape), generator, device)
            scheduler.set_timesteps(steps)
            ts = scheduler.timesteps.tolist()
            if progress:
                from tqdm.auto import tqdm

                ts = tqdm(ts, desc="sampling", disable=None)
            net = self.compiled_unet() if compile else self.unet
            for t in ts:
                # the compiled UNet gets a fresh 0-d tensor: an int timestep would be a constant of the
                # graph (one recompilation per step)
                tt = torch.tensor(t, device=device) if compile else t
                out = self._predict(net, x, tt, cond, guidance_scale)
                x = scheduler.step(out, t, x, eta=eta, generator=generator).prev_sample
        finally:
            self.train(was_training)
        return x
