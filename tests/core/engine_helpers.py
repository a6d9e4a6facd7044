"""Tiny registered models and data for the engine/checkpoint tests, and a script for subprocess runs.

Imported by tests/core/test_*.py (pytest puts this folder on sys.path) and run as a script by the
distributed test (under torchrun) and the kill-and-resume test:

    python tests/core/engine_helpers.py train OUT_DIR --steps 60 --checkpoint-every 5 [--delay 0.05]
    torchrun --standalone --nproc_per_node=2 tests/core/engine_helpers.py ddp OUT_ROOT
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from genforge.registry import register_model, registered_models


@dataclass
class TinyMLPConfig:
    in_features: int = 4
    hidden: int = 16


class TinyMLP(nn.Module):
    """A small regressor: ``training_loss((x, y))`` is the mean squared error of ``net(x)`` vs ``y``."""

    family = "vae"  # any likelihood family: the engine only needs training_loss
    config_class = TinyMLPConfig

    def __init__(self, config: TinyMLPConfig) -> None:
        super().__init__()
        self.config = config
        self.net = nn.Sequential(
            nn.Linear(config.in_features, config.hidden), nn.Tanh(), nn.Linear(config.hidden, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)

    def training_loss(self, batch):
        x, y = batch
        mse = F.mse_loss(self(x), y)
        return {"loss": mse, "mse": mse.detach()}


@dataclass
class TiedConfig:
    vocab: int = 11
    width: int = 8


class TinyTied(nn.Module):
    """Embedding and output head share one matrix, like a GPT with tied weights."""

    family = "transformer"
    config_class = TiedConfig

    def __init__(self, config: TiedConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab, config.width)
        self.head = nn.Linear(config.width, config.vocab, bias=False)
        self.head.weight = self.embed.weight

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.embed(idx)))

    def training_loss(self, batch):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        return {"loss": loss}


@dataclass
class TinyGANConfig:
    latent_dim: int = 4
    features: int = 2
    hidden: int = 32
    n_critic: int = 2


class TinyGAN(nn.Module):
    """A 2-D non-saturating GAN: learns to put its samples where the data is."""

    family = "gan"
    config_class = TinyGANConfig

    def __init__(self, config: TinyGANConfig) -> None:
        super().__init__()
        self.config = config
        h = config.hidden
        self.generator = nn.Sequential(  # batch norm: its statistics must stay identical across ranks
            nn.Linear(config.latent_dim, h), nn.BatchNorm1d(h), nn.ReLU(), nn.Linear(h, config.features)
        )
        self.discriminator = nn.Sequential(nn.Linear(config.features, h), nn.LeakyReLU(0.2), nn.Linear(h, 1))

    def sample(self, n: int) -> torch.Tensor:
        z = torch.randn(n, self.config.latent_dim, device=next(self.parameters()).device)
        return self.generator(z)

    def discriminator_loss(self, batch):
        real = batch
        fake = self.sample(len(real)).detach()
        loss = F.softplus(-self.discriminator(real)).mean() + F.softplus(self.discriminator(fake)).mean()
        return {"loss": loss}

    def generator_loss(self, batch):
        loss = F.softplus(-self.discriminator(self.sample(len(batch)))).mean()
        return {"loss": loss}


for _name, _cls in (("test-mlp", TinyMLP), ("test-tied", TinyTied), ("test-gan", TinyGAN)):
    if _name not in registered_models():
        register_model(_name)(_cls)


def regression_data(n: int = 256, seed: int = 0, sign: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``y = sign * tanh(x @ w)`` plus a little noise, a fixed target an MLP learns in a few hundred steps."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    w = torch.tensor([1.0, -2.0, 0.5, 1.5])
    y = sign * torch.tanh(x @ w) + 0.05 * torch.randn(n, generator=g)
    return x, y


def gan_data(n: int = 512, seed: int = 0) -> torch.Tensor:
    """2-D points around (3, -2): a GAN that learns moves its sample mean there."""
    g = torch.Generator().manual_seed(seed)
    return torch.tensor([3.0, -2.0]) + 0.5 * torch.randn(n, 2, generator=g)


def weights_hash(model: nn.Module) -> str:
    h = hashlib.sha256()
    for key, value in sorted(model.state_dict().items()):
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def train_regressor(out: str | Path, steps: int = 60, checkpoint_every: int = 5, delay: float = 0.0) -> None:
    """One resumable regression fit into ``out`` (+ result.json); ``delay`` slows each step so a test
    can kill it mid-run."""
    from genforge.devices import seed_everything
    from genforge.training import TrainConfig, Trainer

    seed_everything(0)
    model = TinyMLP(TinyMLPConfig())
    if delay:
        loss_fn = model.training_loss

        def slow(batch):
            time.sleep(delay)
            return loss_fn(batch)

        model.training_loss = slow
    cfg = TrainConfig(
        max_steps=steps,
        batch_size=32,
        lr=1e-2,
        checkpoint_every=checkpoint_every,
        out_dir=out,
        progress=False,
        device="cpu",
        val_every=10,
        lr_schedule="cosine",
        warmup_steps=5,
    )
    x, y = regression_data()
    result = Trainer(cfg).fit(model, (x[:192], y[:192]), val_data=(x[192:], y[192:]))
    summary = {"steps": result.steps, "history": result.history, "hash": weights_hash(model)}
    Path(out, "result.json").write_text(json.dumps(summary))


def _ddp(args: argparse.Namespace) -> None:
    """Under torchrun: fit a regressor (DDP path) and a GAN (manual all-reduce path) on every rank."""
    from genforge.devices import seed_everything
    from genforge.training import TrainConfig, Trainer, distributed

    root = Path(args.out)
    rank = distributed.rank()
    x, y = regression_data(n=256)
    seed_everything(rank + 100)  # different initial weights per rank: the engine must broadcast rank 0's
    mlp = TinyMLP(TinyMLPConfig())
    cfg = TrainConfig(max_steps=40, batch_size=16, lr=1e-2, progress=False, device="cpu", val_every=20)
    mlp_result = Trainer(cfg, out_dir=root / "mlp").fit(mlp, (x[:192], y[:192]), val_data=(x[192:], y[192:]))
    gan = TinyGAN(TinyGANConfig())
    Trainer(cfg, max_steps=20, out_dir=None).fit(gan, gan_data())
    resumed, uninterrupted = _ddp_resume(root, rank)
    report = {
        "resumed": resumed,
        "uninterrupted": uninterrupted,
        "world_size": distributed.world_size(),
        "mlp": weights_hash(mlp),
        "gan": weights_hash(gan),
        "best_val_loss": mlp_result.best_val_loss,
        "mlp_state": {k: v.tolist() for k, v in mlp.state_dict().items()},
    }
    Path(root, f"rank{rank}.json").write_text(json.dumps(report))


class _Interrupted(Exception):
    pass


def _noisy_regressor(rank: int, stop_at: int | None = None) -> TinyMLP:
    """A regressor whose loss draws from each rank's global RNG (input noise, as a VAE or dropout
    would), so a resumed run matches an uninterrupted one only if every rank's stream is restored.
    With ``stop_at`` it raises on that step on every rank, as a job killed after a checkpoint."""
    from genforge.devices import seed_everything

    seed_everything(rank + 200)
    model = TinyMLP(TinyMLPConfig())
    calls = [0]

    def noisy(batch):
        calls[0] += 1
        if stop_at is not None and calls[0] == stop_at:
            raise _Interrupted
        x, y = batch
        return TinyMLP.training_loss(model, (x + 0.3 * torch.randn_like(x), y))

    model.training_loss = noisy
    return model


def _ddp_resume(root: Path, rank: int) -> tuple[str, str]:
    """Under torchrun: weights of a run interrupted after its step-10 checkpoint and resumed, and of
    the same run uninterrupted (each rank's hash)."""
    from genforge.training import TrainConfig, Trainer

    x, y = regression_data(n=256)
    cfg = TrainConfig(
        max_steps=20, batch_size=16, lr=1e-2, progress=False, device="cpu", checkpoint_every=5, seed=3
    )
    clean = _noisy_regressor(rank)
    Trainer(cfg, out_dir=root / "clean").fit(clean, (x, y))
    try:
        Trainer(cfg, out_dir=root / "resumed").fit(_noisy_regressor(rank, stop_at=13), (x, y))
        raise AssertionError("the run was not interrupted")
    except _Interrupted:
        pass
    resumed = _noisy_regressor(rank)
    Trainer(cfg, out_dir=root / "resumed").fit(resumed, (x, y))
    return weights_hash(resumed), weights_hash(clean)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["train", "ddp"])
    parser.add_argument("out")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--checkpoint-every", type=int, default=5)
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.mode == "train":
        train_regressor(args.out, args.steps, args.checkpoint_every, args.delay)
    else:
        _ddp(args)


if __name__ == "__main__":
    main()
