"""Generative adversarial networks for sequences, images/grids and tables, with conditional variants.

- ``kind="sequence"``: x [B, L, C]. Generator: a TCN of dilated causal convolutions whose receptive
  field covers ``length`` (QuantGAN-style; it can sample any length), or a GRU. Noise is [B, L, Z]:
  the first ``shared_noise`` dims (default Z // 2) are shared by all time steps (sequence-level
  factors), the rest are fresh per step. Discriminator: a TCN or GRU over [x, cond] read out from the
  last step and the time mean.
- ``kind="image"``: x [B, C, H, W], scaled to [-1, 1] (the generator ends in tanh). DCGAN-style
  transposed-conv generator and strided-conv discriminator; any (H, W): the generator works on
  the next multiple of 2 ** len(hidden) and crops, the discriminator zero-pads.
- ``kind="tabular"``: x [B, F]. MLP generator whose output is split into CTGAN-style spans
  (tanh / softmax / linear); softmax spans use Gumbel-softmax (tau 0.2) in training and hard
  one-hots at sample time. MLP critic with PacGAN packing (``pac`` samples judged together).

Losses: "wgan-gp" (critic with a gradient penalty on real/fake interpolates), "ns" (non-saturating
BCE) and "hinge". ``spectral_norm=True`` wraps the discriminator's linear/conv weights. The
discriminator never uses BatchNorm (LayerNorm or nothing), so the gradient penalty stays per-sample.
Conditioning (``cond_dim > 0``): cond [B, cond_dim] is concatenated to the noise and to the
discriminator's input.

Extension points for suites, so a suite configures the GAN instead of replacing its parts:

- **the noise layout**: ``GANConfig.shared_noise`` (sequences), the number of noise channels held
  constant over a path (None: ``latent_dim // 2``; 0: every channel fresh per step, Quant GAN style);
- **the critic builder**: override :meth:`GAN.build_critic` to return another discriminator module
  (e.g. wider inputs, its own widths or dropout). The core applies spectral norm to whatever it
  returns when ``spectral_norm=True``, so a custom critic never loses it;
- **an extra generator loss**: override :meth:`GAN.extra_generator_loss`, which gets the fakes, their
  conditions and (tables) the generator's pre-activation outputs, and returns named terms that are
  added to the adversarial loss and logged (e.g. CTGAN's cross-entropy of the conditioned column).

Helpers that suites build on (keep them stable): ``noise(n, length)``, ``generate(n, cond, length,
hard)``, ``split_batch(batch)``, ``critic(x, cond)`` (the discriminator, cuDNN-safe for the gradient
penalty), ``gradient_penalty``, and for tables ``generator.logits`` / ``generator.activate``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genforge.errors import ConfigError, DataError
from genforge.models.batch import split_batch
from genforge.models.blocks import TCN, apply_spectral_norm, crop_to, mlp, pad_to, padded_size
from genforge.registry import register_model

GUMBEL_TAU = 0.2
SPAN_ACTIVATIONS = ("tanh", "softmax", "linear")


@dataclass
class GANConfig:
    kind: str = "tabular"  # "sequence" | "image" | "tabular"
    loss: str = "wgan-gp"  # "wgan-gp" | "ns" (non-saturating) | "hinge"
    latent_dim: int = 32
    cond_dim: int = 0  # conditional variants: cond vector fed to G and D
    hidden: tuple[int, ...] = (128, 128)
    n_critic: int = 5
    gp_weight: float = 10.0
    spectral_norm: bool = False
    # sequence
    channels: int = 1  # features per time step (image: colour channels)
    length: int = 24  # default sample length (TCN generators can sample other lengths)
    seq_arch: str = "tcn"  # "tcn" | "gru"
    shared_noise: int | None = None  # noise dims constant over a path; None = latent_dim // 2
    # image
    image_size: tuple[int, int] = (28, 28)
    # tabular: CTGAN-style output spans [size, activation]; empty = one linear span of in_features
    in_features: int = 0
    output_spans: tuple = ()
    pac: int = 1  # PacGAN packing for the tabular critic

    def __post_init__(self) -> None:
        self.hidden = tuple(int(h) for h in self.hidden)
        self.image_size = tuple(int(s) for s in self.image_size)
        self.output_spans = tuple((int(size), str(act)) for size, act in self.output_spans)
        if self.kind not in ("sequence", "image", "tabular"):
            raise ConfigError(f"GANConfig.kind: expected 'sequence', 'image' or 'tabular', got {self.kind!r}")
        if self.loss not in ("wgan-gp", "ns", "hinge"):
            raise ConfigError(f"GANConfig.loss: expected 'wgan-gp', 'ns' or 'hinge', got {self.loss!r}")
        if self.seq_arch not in ("tcn", "gru"):
            raise ConfigError(f"GANConfig.seq_arch: expected 'tcn' or 'gru', got {self.seq_arch!r}")
        if self.shared_noise is not None and not 0 <= self.shared_noise <= self.latent_dim:
            raise ConfigError(
                f"GANConfig.shared_noise: expected 0..latent_dim ({self.latent_dim}) or None, "
                f"got {self.shared_noise}"
            )
        if not self.hidden or min(self.hidden) < 1:
            raise ConfigError(f"GANConfig.hidden: expected positive widths, got {self.hidden}")
        if self.kind == "tabular":
            if self.in_features < 1:
                raise ConfigError("GANConfig.in_features: tabular needs the number of features (> 0)")
            for size, act in self.output_spans:
                if act not in SPAN_ACTIVATIONS or size < 1:
                    raise ConfigError(f"GANConfig.output_spans: bad span [{size}, {act!r}]; "
                                     f"expected [size > 0, one of {SPAN_ACTIVATIONS}]")
            total = sum(size for size, _ in self.output_spans)
            if self.output_spans and total != self.in_features:
                raise ConfigError(
                    f"GANConfig.output_spans: sizes sum to {total}, in_features is {self.in_features}"
                )
            if self.pac < 1:
                raise ConfigError("GANConfig.pac: expected >= 1")


# ---------------------------------------------------------------------- sequence players
class SequenceGenerator(nn.Module):
    """Noise [B, L, Z] (+ cond [B, D]) -> x [B, L, C] with a causal TCN or a GRU."""

    def __init__(self, c: GANConfig):
        super().__init__()
        self.arch = c.seq_arch
        c_in = c.latent_dim + c.cond_dim
        if c.seq_arch == "tcn":
            self.net = TCN(c_in, c.hidden[0], c.channels, c.length)
        else:
            self.rnn = nn.GRU(c_in, c.hidden[0], num_layers=len(c.hidden), batch_first=True)
            self.out = nn.Linear(c.hidden[0], c.channels)

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if cond is not None:
            z = torch.cat([z, cond.unsqueeze(1).expand(-1, z.shape[1], -1)], 2)
        if self.arch == "tcn":
            return self.net(z.transpose(1, 2)).transpose(1, 2)
        return self.out(self.rnn(z)[0])


class SequenceDiscriminator(nn.Module):
    """x [B, L, C] (+ cond) -> score [B]: TCN or GRU features, read out from last step and time mean."""

    def __init__(self, c: GANConfig):
        super().__init__()
        self.arch = c.seq_arch
        c_in, width = c.channels + c.cond_dim, c.hidden[0]
        if c.seq_arch == "tcn":
            self.net = TCN(c_in, width, width, c.length, norm=not c.spectral_norm)
        else:
            self.rnn = nn.GRU(c_in, width, num_layers=len(c.hidden), batch_first=True)
        self.head = nn.Sequential(nn.LeakyReLU(0.2), nn.Linear(2 * width, 1))

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if cond is not None:
            x = torch.cat([x, cond.unsqueeze(1).expand(-1, x.shape[1], -1)], 2)
        if self.arch == "tcn":
            h = self.net(x.transpose(1, 2)).transpose(1, 2)
        else:
            h = self.rnn(x)[0]
        return self.head(torch.cat([h[:, -1], h.mean(1)], 1)).squeeze(1)


# ---------------------------------------------------------------------- image players
class ImageGenerator(nn.Module):
    """z [B, Z] (+ cond) -> image [B, C, H, W] in [-1, 1] (DCGAN: linear, then transposed convs)."""

    def __init__(self, c: GANConfig):
        super().__init__()
        stride = 2 ** len(c.hidden)
        self.size = tuple(c.image_size)
        self.bottom = tuple(padded_size(s, stride) // stride for s in self.size)
        widths = tuple(reversed(c.hidden))  # widest at the bottom
        self.width0 = widths[0]
        self.inp = nn.Linear(c.latent_dim + c.cond_dim, widths[0] * math.prod(self.bottom))
        layers: list[nn.Module] = [nn.BatchNorm2d(widths[0]), nn.ReLU()]
        for w_in, w_out in zip(widths, (*widths[1:], widths[-1]), strict=True):
            layers += [
                nn.ConvTranspose2d(w_in, w_out, 4, stride=2, padding=1),
                nn.BatchNorm2d(w_out),
                nn.ReLU(),
            ]
        layers += [nn.Conv2d(widths[-1], c.channels, 3, padding=1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if cond is not None:
            z = torch.cat([z, cond], 1)
        h = self.inp(z).view(-1, self.width0, *self.bottom)
        return crop_to(self.net(h), self.size)


class ImageDiscriminator(nn.Module):
    """image [B, C, H, W] (+ cond broadcast as extra channels) -> score [B] (strided convs)."""

    def __init__(self, c: GANConfig):
        super().__init__()
        stride = 2 ** len(c.hidden)
        self.padded = tuple(padded_size(s, stride) for s in c.image_size)
        layers: list[nn.Module] = []
        w_in = c.channels + c.cond_dim
        for w_out in c.hidden:
            layers.append(nn.Conv2d(w_in, w_out, 4, stride=2, padding=1))
            if not c.spectral_norm:
                layers.append(nn.GroupNorm(1, w_out))  # layer norm over (C, H, W): per sample
            layers.append(nn.LeakyReLU(0.2))
            w_in = w_out
        flat = c.hidden[-1] * math.prod(self.padded) // stride ** 2
        self.net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(flat, 1))

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if cond is not None:
            x = torch.cat([x, cond[:, :, None, None].expand(-1, -1, *x.shape[2:])], 1)
        return self.net(pad_to(x, self.padded)).squeeze(1)


# ---------------------------------------------------------------------- tabular players
class TabularGenerator(nn.Module):
    """z [B, Z] (+ cond) -> row [B, F]; each output span gets its activation (CTGAN)."""

    def __init__(self, c: GANConfig):
        super().__init__()
        self.spans = c.output_spans or ((c.in_features, "linear"),)
        self.net = mlp(c.latent_dim + c.cond_dim, c.hidden, c.in_features, act="relu", norm="batch")

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None, hard: bool = False) -> torch.Tensor:
        return self.activate(self.logits(z, cond), hard=hard)

    def logits(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """The pre-activation output [B, F] (what a loss on a softmax span's logits needs)."""
        if cond is not None:
            z = torch.cat([z, cond], 1)
        return self.net(z)

    def activate(self, raw: torch.Tensor, hard: bool = False) -> torch.Tensor:
        """Per-span output: tanh, Gumbel-softmax (hard one-hot when ``hard``) or identity."""
        parts, start = [], 0
        for size, act in self.spans:
            part = raw[:, start : start + size]
            if act == "tanh":
                part = torch.tanh(part)
            elif act == "softmax":
                part = F.gumbel_softmax(part.float(), tau=GUMBEL_TAU, hard=hard).to(part.dtype)
            parts.append(part)
            start += size
        return torch.cat(parts, 1)


class TabularDiscriminator(nn.Module):
    """PacGAN critic: ``pac`` consecutive rows (+ their cond) are packed into one input -> [B // pac].

    ``hidden`` (default: the config's widths) and ``dropout`` let a critic's capacity be set apart
    from the generator's."""

    def __init__(self, c: GANConfig, hidden: tuple[int, ...] | None = None, dropout: float = 0.0):
        super().__init__()
        self.pac = c.pac
        self.net = mlp(
            (c.in_features + c.cond_dim) * c.pac, hidden or c.hidden, 1, act="leaky_relu", dropout=dropout
        )

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if cond is not None:
            x = torch.cat([x, cond], 1)
        if x.shape[0] % self.pac:
            raise DataError(f"GAN tabular critic: batch of {x.shape[0]} is not a multiple of pac={self.pac}")
        return self.net(x.reshape(x.shape[0] // self.pac, -1)).squeeze(1)


# ---------------------------------------------------------------------- the model
@register_model("gan")
class GAN(nn.Module):
    """A generator/discriminator pair with its adversarial losses; trained by the engine's
    adversarial loop (``n_critic`` discriminator steps per generator step).

    Subclasses customise it through :meth:`build_critic` and :meth:`extra_generator_loss` and the
    config's ``shared_noise`` (module docstring), not by replacing ``discriminator`` or the losses.
    """

    config_class = GANConfig
    family = "gan"
    PLAYERS = {
        "sequence": (SequenceGenerator, SequenceDiscriminator),
        "image": (ImageGenerator, ImageDiscriminator),
        "tabular": (TabularGenerator, TabularDiscriminator),
    }

    def __init__(self, config: GANConfig):
        super().__init__()
        self.config = c = config
        self.generator = self.PLAYERS[c.kind][0](c)
        self.discriminator = self.build_critic(c)
        if c.spectral_norm:
            apply_spectral_norm(self.discriminator)

    def build_critic(self, config: GANConfig) -> nn.Module:
        """The discriminator: a module ``(x, cond) -> score [B]`` (override to change it).

        Built after the generator; the core wraps its Linear/Conv weights in spectral norm afterwards
        when ``config.spectral_norm`` is set, and never uses BatchNorm so the gradient penalty stays
        per sample (keep it so in an override).
        """
        return self.PLAYERS[config.kind][1](config)

    # ------------------------------------------------------------------ data handling
    @property
    def data_shape(self) -> tuple[int, ...]:
        c = self.config
        if c.kind == "sequence":
            return (c.length, c.channels)
        if c.kind == "image":
            return (c.channels, *c.image_size)
        return (c.in_features,)

    def split_batch(self, batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A batch is x or (x, cond); with cond_dim=0 extra items (e.g. labels) are ignored.
        The tabular critic's PacGAN packing drops the batch's remainder modulo ``pac``."""
        x, cond = split_batch(batch, conditional=self.config.cond_dim > 0)
        x = x.float()
        c = self.config
        if c.kind == "sequence":  # any length
            shape_ok, expected = x.dim() == 3 and x.shape[2] == c.channels, f"[B, L, {c.channels}]"
        else:
            dims = ", ".join(map(str, self.data_shape))
            shape_ok, expected = tuple(x.shape[1:]) == self.data_shape, f"[B, {dims}]"
        if not shape_ok:
            raise DataError(f"GAN input ({c.kind}): expected shape {expected}, got {list(x.shape)}")
        cond = self._check_cond(cond, x.shape[0])
        keep = x.shape[0] - x.shape[0] % c.pac if c.kind == "tabular" else x.shape[0]
        if keep == 0:
            raise DataError(f"GAN input: batch of {x.shape[0]} is smaller than pac={c.pac}")
        return x[:keep], (None if cond is None else cond[:keep])

    def _check_cond(self, cond: torch.Tensor | None, n: int) -> torch.Tensor | None:
        c = self.config
        if c.cond_dim == 0:
            if cond is not None:
                raise DataError("GAN cond: this model was built with cond_dim=0 but a condition was given")
            return None
        if cond is None:
            raise DataError(f"GAN cond: this model needs a condition vector [B, {c.cond_dim}]")
        cond = cond.float()
        if cond.dim() == 1:
            cond = cond.unsqueeze(0).expand(n, -1)
        if tuple(cond.shape) != (n, c.cond_dim):
            raise DataError(f"GAN cond: expected shape [{n}, {c.cond_dim}], got {list(cond.shape)}")
        return cond

    def noise(self, n: int, length: int | None = None, device: torch.device | None = None) -> torch.Tensor:
        """Generator input: [n, Z], or [n, L, Z] for sequences (the first ``shared_noise`` dims,
        default Z // 2, constant in time)."""
        c = self.config
        device = device or next(self.parameters()).device
        if c.kind != "sequence":
            return torch.randn(n, c.latent_dim, device=device)
        length = length or c.length
        shared = c.latent_dim // 2 if c.shared_noise is None else c.shared_noise
        if shared == 0:
            return torch.randn(n, length, c.latent_dim, device=device)
        z_global = torch.randn(n, 1, shared, device=device).expand(-1, length, -1)
        z_step = torch.randn(n, length, c.latent_dim - shared, device=device)
        return torch.cat([z_global, z_step], 2)

    def generate(self, n: int, cond: torch.Tensor | None, length: int | None = None,
                 hard: bool = False) -> torch.Tensor:
        """Fake data with gradients (training-time activations unless ``hard``)."""
        z = self.noise(n, length)
        if self.config.kind == "tabular":
            return self.generator(z, cond, hard=hard)
        return self.generator(z, cond)

    @torch.no_grad()
    def sample(self, n: int, cond: torch.Tensor | None = None, length: int | None = None) -> torch.Tensor:
        """n samples in data space (generator in eval mode; tabular softmax spans as hard one-hots)."""
        device = next(self.parameters()).device
        cond = self._check_cond(None if cond is None else cond.to(device), n)
        was_training = self.generator.training
        self.generator.eval()
        try:
            return self.generate(n, cond, length, hard=True)
        finally:
            self.generator.train(was_training)

    # ------------------------------------------------------------------ losses
    def critic(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """The discriminator's score of each sample of x (cuDNN RNNs off on GPU: double backward)."""
        if self.config.kind == "sequence" and self.config.seq_arch == "gru" and x.is_cuda:
            # cuDNN RNNs have no double backward (needed by the gradient penalty).
            with torch.backends.cudnn.flags(enabled=False):
                return self.discriminator(x, cond)
        return self.discriminator(x, cond)

    def gradient_penalty(
        self, real: torch.Tensor, fake: torch.Tensor, cond: torch.Tensor | None
    ) -> torch.Tensor:
        """WGAN-GP: E[(||grad_x D(x_hat)|| - 1)^2] on random interpolates x_hat (norm per packed group)."""
        eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device)
        if self.config.kind == "tabular" and self.config.pac > 1:  # one eps per pack
            eps = eps[:: self.config.pac].repeat_interleave(self.config.pac, 0)
        x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
        score = self.critic(x_hat, cond)
        (grad,) = torch.autograd.grad(score.sum(), x_hat, create_graph=True)
        groups = grad.shape[0] // self.config.pac if self.config.kind == "tabular" else grad.shape[0]
        return (grad.float().reshape(groups, -1).norm(dim=1) - 1).pow(2).mean()

    def discriminator_loss(self, batch) -> dict[str, torch.Tensor]:
        """Critic loss on real data vs freshly generated (detached) fakes."""
        real, cond = self.split_batch(batch)
        with torch.no_grad():
            fake = self.generate(real.shape[0], cond, length=real.shape[1] if real.dim() == 3 else None)
        d_real = self.critic(real, cond).float()
        d_fake = self.critic(fake, cond).float()
        loss_kind = self.config.loss
        out: dict[str, torch.Tensor] = {}
        if loss_kind == "wgan-gp":
            gp = self.gradient_penalty(real, fake, cond)
            loss = d_fake.mean() - d_real.mean() + self.config.gp_weight * gp
            out["gp"] = gp.detach()
            out["wasserstein"] = (d_real.mean() - d_fake.mean()).detach()
        elif loss_kind == "ns":
            loss = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
        else:
            loss = F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
        out.update(loss=loss, d_real=d_real.mean().detach(), d_fake=d_fake.mean().detach())
        return out

    def generator_loss(self, batch) -> dict[str, torch.Tensor]:
        """Generator loss on as many fakes as the batch has rows, with the batch's conditions, plus
        the terms of :meth:`extra_generator_loss`."""
        real, cond = self.split_batch(batch)
        raw = None
        if self.config.kind == "tabular":
            raw = self.generator.logits(self.noise(real.shape[0]), cond)
            fake = self.generator.activate(raw)
        else:
            fake = self.generate(real.shape[0], cond, length=real.shape[1] if real.dim() == 3 else None)
        d_fake = self.critic(fake, cond).float()
        loss = F.softplus(-d_fake).mean() if self.config.loss == "ns" else -d_fake.mean()
        out = {"d_fake": d_fake.mean().detach()}
        for name, term in self.extra_generator_loss(fake, cond, raw).items():
            loss = loss + term
            out[name] = term.detach()
        out["loss"] = loss
        return out

    def extra_generator_loss(
        self, fake: torch.Tensor, cond: torch.Tensor | None, raw: torch.Tensor | None
    ) -> dict[str, torch.Tensor]:
        """Named loss terms added to the generator's adversarial loss (default: none).

        ``fake`` are the generated samples (with gradients), ``cond`` their conditions and ``raw`` the
        tabular generator's pre-activation outputs (None for other kinds).
        """
        return {}
