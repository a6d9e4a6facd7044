"""Variational autoencoder for signals (1-D conv), images and tile grids (2-D conv) and tables (MLP).

One class, three encoder/decoder shapes, three likelihoods:

- ``kind="conv1d"``: x [B, C, L]; ``kind="conv2d"``: x [B, C, H, W]; ``kind="mlp"``: x [B, F].
  Conv models take any size: inputs are zero-padded internally to a multiple of the stride product
  (2 ** len(hidden)) and outputs are cropped back, so reconstructions match the input size exactly.
- ``likelihood="gaussian"`` (mean from the decoder, learned log-std per channel/feature, clamped to
  [LOG_SIGMA_MIN, LOG_SIGMA_MAX]), ``"bernoulli"`` (x in [0, 1], logits), ``"categorical"``
  (x = Long class indices with K = in_channels classes; logits [B, K, ...]).
- ``residual=False`` (conv kinds): plain strided convolutions without residual blocks or GroupNorm,
  several times cheaper on a CPU for small inputs such as single heartbeats.
- ``cond_dim > 0``: a conditioning vector [B, cond_dim] is concatenated to the encoder features and
  to z in the decoder (conditional VAE).

``elbo_terms`` gives per-sample negative log-likelihood ``rec`` (summed over elements, including
the Gaussian normalising constant, so it is a true NLL in nats) and ``kl``; suites score anomalies
with ``-elbo`` or ``rec``. ``training_loss`` divides by the number of elements per sample, so the
learning rate does not depend on the data size.

Public helpers that suites build on (keep them stable): ``nll(params, x)`` (per-element NLL),
``kl(mu, logvar)``, ``log_sigma`` (clamp with ``LOG_SIGMA_MIN`` / ``LOG_SIGMA_MAX``), ``to_data``,
and ``n_elements``; batches are read by :func:`genforge.models.batch.split_batch`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genforge.errors import ConfigError, DataError
from genforge.models.batch import split_batch
from genforge.models.blocks import crop_to, down_stage, group_norm, mlp, pad_to, padded_size, up_stage
from genforge.registry import register_model

LOG_SIGMA_MIN, LOG_SIGMA_MAX = -6.0, 3.0  # observation std in [0.0025, 20]
LOGVAR_MIN, LOGVAR_MAX = -30.0, 20.0  # posterior log-variance, for numerical safety only
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


@dataclass
class VAEConfig:
    kind: str = "mlp"  # "conv1d" | "conv2d" | "mlp"
    in_channels: int = 1  # conv input channels (categorical: number of classes K)
    length: int = 0  # conv1d sequence length L
    image_size: tuple[int, int] = (0, 0)  # conv2d (H, W)
    in_features: int = 0  # mlp
    latent_dim: int = 16
    hidden: tuple[int, ...] = (32, 64, 128)  # conv channels per stage / mlp widths
    likelihood: str = "gaussian"  # "gaussian" | "bernoulli" | "categorical"
    cond_dim: int = 0  # optional conditioning vector (concatenated in encoder and decoder)
    beta: float = 1.0
    learn_sigma: bool = True  # gaussian: learned observation log-std per channel/feature
    residual: bool = True  # conv kinds: residual blocks + GroupNorm per stage; False = plain strided convs
    dropout: float = 0.0

    def __post_init__(self) -> None:
        self.hidden = tuple(int(h) for h in self.hidden)
        self.image_size = tuple(int(s) for s in self.image_size)
        if self.kind not in ("conv1d", "conv2d", "mlp"):
            raise ConfigError(f"VAEConfig.kind: expected 'conv1d', 'conv2d' or 'mlp', got {self.kind!r}")
        if self.likelihood not in ("gaussian", "bernoulli", "categorical"):
            raise ConfigError(
                "VAEConfig.likelihood: expected 'gaussian', 'bernoulli' or 'categorical', "
                f"got {self.likelihood!r}"
            )
        if not self.hidden or min(self.hidden) < 1:
            raise ConfigError(f"VAEConfig.hidden: expected positive widths, got {self.hidden}")
        if self.kind == "conv1d" and self.length < 1:
            raise ConfigError("VAEConfig.length: conv1d needs the sequence length (> 0)")
        if self.kind == "conv2d" and (len(self.image_size) != 2 or min(self.image_size) < 1):
            raise ConfigError(f"VAEConfig.image_size: conv2d needs (H, W) > 0, got {self.image_size}")
        if self.kind == "mlp" and self.in_features < 1:
            raise ConfigError("VAEConfig.in_features: mlp needs the number of features (> 0)")
        if self.likelihood == "categorical" and self.in_channels < 2:
            raise ConfigError("VAEConfig.in_channels: categorical needs the number of classes K >= 2")


@register_model("vae")
class VAE(nn.Module):
    """Gaussian-latent VAE with a conv1d / conv2d / MLP encoder-decoder and a chosen likelihood."""

    config_class = VAEConfig
    family = "vae"

    def __init__(self, config: VAEConfig):
        super().__init__()
        self.config = c = config
        categorical = c.likelihood == "categorical"
        latent, cond = c.latent_dim, c.cond_dim
        if c.kind == "mlp":
            self.data_shape: tuple[int, ...] = (c.in_features,)
            width_in = c.in_features * (c.in_channels if categorical else 1)
            self.encoder = mlp(width_in + cond, c.hidden, 2 * latent, dropout=c.dropout)
            self.decoder = mlp(latent + cond, tuple(reversed(c.hidden)), width_in, dropout=c.dropout)
        else:
            dims = 1 if c.kind == "conv1d" else 2
            self.spatial = (c.length,) if dims == 1 else tuple(c.image_size)
            self.data_shape = self.spatial if categorical else (c.in_channels, *self.spatial)
            stride = 2 ** len(c.hidden)
            self.padded = tuple(padded_size(s, stride) for s in self.spatial)
            self.bottom = tuple(p // stride for p in self.padded)
            widths = (c.hidden[0], *c.hidden)
            conv = nn.Conv1d if dims == 1 else nn.Conv2d
            self.encoder = nn.Sequential(
                conv(c.in_channels, c.hidden[0], 3, padding=1),
                *(
                    down_stage(dims, widths[i], widths[i + 1], c.dropout, c.residual)
                    for i in range(len(c.hidden))
                ),
                nn.Flatten(),
            )
            flat = c.hidden[-1] * math.prod(self.bottom)
            self.enc_head = nn.Linear(flat + cond, 2 * latent)
            self.dec_head = nn.Sequential(nn.Linear(latent + cond, flat), nn.SiLU())
            stages = reversed(range(len(c.hidden)))
            self.decoder = nn.Sequential(
                *(up_stage(dims, widths[i + 1], widths[i], c.dropout, c.residual) for i in stages),
                *((group_norm(c.hidden[0]), nn.SiLU()) if c.residual else ()),
                conv(c.hidden[0], c.in_channels, 3, padding=1),
            )
        if c.likelihood == "gaussian":
            sigma_shape = (c.in_features,) if c.kind == "mlp" else (c.in_channels,) + (1,) * len(self.spatial)
            log_sigma = torch.zeros(sigma_shape)
            if c.learn_sigma:
                self.log_sigma = nn.Parameter(log_sigma)
            else:
                self.register_buffer("log_sigma", log_sigma)

    # ------------------------------------------------------------------ input handling
    @property
    def n_elements(self) -> int:
        """Elements per sample that the likelihood sums over (positions for categorical)."""
        return math.prod(self.data_shape)

    def _check_x(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        if tuple(x.shape[1:]) != self.data_shape:
            raise DataError(
                f"VAE input: expected shape [B, {', '.join(map(str, self.data_shape))}] "
                f"(kind={c.kind}, likelihood={c.likelihood}), got {list(x.shape)}"
            )
        if c.likelihood == "categorical":
            if x.is_floating_point():
                raise DataError("VAE input: categorical likelihood expects integer class indices, got floats")
            return x.long()
        return x.float()

    def _check_cond(self, cond: torch.Tensor | None, n: int) -> torch.Tensor | None:
        c = self.config
        if c.cond_dim == 0:
            if cond is not None:
                raise DataError("VAE cond: this model was built with cond_dim=0 but a condition was given")
            return None
        if cond is None:
            raise DataError(f"VAE cond: this model needs a condition vector [B, {c.cond_dim}]")
        cond = cond.float()
        if cond.dim() == 1:
            cond = cond.unsqueeze(0).expand(n, -1)
        if tuple(cond.shape) != (n, c.cond_dim):
            raise DataError(f"VAE cond: expected shape [{n}, {c.cond_dim}], got {list(cond.shape)}")
        return cond

    def _to_input(self, x: torch.Tensor) -> torch.Tensor:
        """Checked data -> the float tensor the encoder reads (one-hot for categorical)."""
        c = self.config
        if c.likelihood == "categorical":
            onehot = F.one_hot(x, c.in_channels).float()  # [B, *spatial, K] or [B, F, K]
            if c.kind == "mlp":
                return onehot.flatten(1)
            return onehot.movedim(-1, 1)
        return x

    # ------------------------------------------------------------------ networks
    def encode(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior parameters (mu, logvar), each [B, latent_dim]."""
        x = self._check_x(x)
        cond = self._check_cond(cond, x.shape[0])
        h = self._to_input(x)
        if self.config.kind == "mlp":
            out = self.encoder(h if cond is None else torch.cat([h, cond], 1))
        else:
            h = self.encoder(pad_to(h, self.padded))
            out = self.enc_head(h if cond is None else torch.cat([h, cond], 1))
        mu, logvar = out.chunk(2, dim=1)
        return mu, logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)

    def decode(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Likelihood parameters: the Gaussian mean (x's shape) or logits ([B, K, ...] for categorical)."""
        c = self.config
        cond = self._check_cond(cond, z.shape[0])
        h = z if cond is None else torch.cat([z, cond], 1)
        if c.kind == "mlp":
            out = self.decoder(h)
            if c.likelihood == "categorical":
                out = out.view(-1, c.in_features, c.in_channels).transpose(1, 2)
            return out
        h = self.dec_head(h).view(-1, c.hidden[-1], *self.bottom)
        return crop_to(self.decoder(h), self.spatial)

    def reparameterize(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        return mu + torch.randn_like(mu) * (0.5 * logvar).exp()

    # ------------------------------------------------------------------ likelihood
    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Per-element negative log-likelihood -log p(x | params), shaped like x (float32)."""
        params = params.float()
        lik = self.config.likelihood
        if lik == "gaussian":
            log_sigma = self.log_sigma.float().clamp(LOG_SIGMA_MIN, LOG_SIGMA_MAX)
            return 0.5 * ((x - params) * torch.exp(-log_sigma)) ** 2 + log_sigma + HALF_LOG_2PI
        if lik == "bernoulli":
            return F.binary_cross_entropy_with_logits(params, x.float(), reduction="none")
        return F.cross_entropy(params, x, reduction="none")

    @staticmethod
    def kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """KL(N(mu, exp(logvar)) || N(0, I)) summed over latent dims: [B]."""
        mu, logvar = mu.float(), logvar.float()
        return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)

    def elbo_terms(
        self, x: torch.Tensor, cond: torch.Tensor | None = None, n_samples: int = 1
    ) -> dict[str, torch.Tensor]:
        """Per-sample terms [B]: rec (NLL summed over elements, averaged over n_samples draws of z),
        kl (analytic), elbo = -(rec + kl)."""
        x = self._check_x(x)
        mu, logvar = self.encode(x, cond)
        cond = self._check_cond(cond, x.shape[0])
        rec = torch.zeros(x.shape[0], device=x.device)
        for _ in range(n_samples):
            params = self.decode(self.reparameterize(mu, logvar), cond)
            rec = rec + self.nll(params, x).flatten(1).sum(1)
        rec = rec / n_samples
        kl = self.kl(mu, logvar)
        return {"rec": rec, "kl": kl, "elbo": -(rec + kl)}

    def recon_error(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Per-element NLL of x under the deterministic reconstruction decode(mu), shaped like x."""
        x = self._check_x(x)
        mu, _ = self.encode(x, cond)
        return self.nll(self.decode(mu, cond), x)

    def to_data(self, params: torch.Tensor, stochastic: bool = False) -> torch.Tensor:
        """Decoder output -> data space. Deterministic: Gaussian mean, Bernoulli probabilities,
        categorical argmax. ``stochastic=True`` draws from the likelihood instead."""
        lik = self.config.likelihood
        if lik == "gaussian":
            if not stochastic:
                return params
            sigma = self.log_sigma.clamp(LOG_SIGMA_MIN, LOG_SIGMA_MAX).exp()
            return params + sigma * torch.randn_like(params)
        if lik == "bernoulli":
            probs = torch.sigmoid(params)
            return torch.bernoulli(probs) if stochastic else probs
        if not stochastic:
            return params.argmax(1)
        return torch.distributions.Categorical(logits=params.movedim(1, -1)).sample()

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Deterministic reconstruction decode(mu) in data space (call .eval() to disable dropout)."""
        mu, _ = self.encode(x, cond)
        return self.to_data(self.decode(mu, cond))

    @torch.no_grad()
    def sample(self, n: int, cond: torch.Tensor | None = None, stochastic: bool = False) -> torch.Tensor:
        """n samples in data space: z ~ N(0, I) decoded (mean / probabilities / argmax by default)."""
        device = next(self.parameters()).device
        z = torch.randn(n, self.config.latent_dim, device=device)
        if cond is not None:
            cond = cond.to(device)
        return self.to_data(self.decode(z, cond), stochastic=stochastic)

    # ------------------------------------------------------------------ training
    def training_loss(self, batch) -> dict[str, torch.Tensor]:
        """loss = mean over the batch of (rec + beta * kl) / elements per sample; logs rec and kl
        (per-sample sums, batch means)."""
        x, cond = split_batch(batch, conditional=self.config.cond_dim > 0)
        terms = self.elbo_terms(x, cond)
        rec, kl = terms["rec"].mean(), terms["kl"].mean()
        loss = (rec + self.config.beta * kl) / self.n_elements
        return {"loss": loss, "rec": rec.detach(), "kl": kl.detach()}
