"""Training recipes: for each model family, a small model that fits the prepared data, the training
settings that suit it, and how to sample it and decode its samples back to data.

``genforge train``, ``genforge sample`` and ``genforge demo`` all use these, so a model trained from
the CLI is built, trained and sampled exactly as the demo's is. Data preparation (encodings, splits)
is :mod:`genforge.datasets`; measuring samples is :mod:`genforge.demo`.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genforge.datasets import Prepared
from genforge.errors import GenforgeError
from genforge.io import atomic_path, write_table_atomic, write_text_atomic

FAMILIES = ("vae", "gan", "diffusion", "transformer")
REGISTRY = {  # family -> (registry name, module that registers it)
    "vae": ("vae", "genforge.models.vae"),
    "gan": ("gan", "genforge.models.gan"),
    "diffusion": ("diffusion", "genforge.models.diffusion"),
    "transformer": ("gpt", "genforge.models.transformer"),
}


# ==================================================================================== models
def model_config(family: str, meta: dict[str, Any]) -> dict[str, Any]:
    """A small architecture for ``family`` that fits the prepared data described by ``meta``."""
    k = int(meta.get("num_classes", 0))
    if family == "transformer":
        vocab = len(meta["data"]["vocab"])
        return {"vocab_size": vocab, "block_size": int(meta["block_size"]), "n_layer": 2, "n_head": 4,
                "n_embd": 128, "dropout": 0.0}
    shape = [int(s) for s in meta["shape"]]
    features = int(np.prod(shape))
    if family == "vae":
        return {"kind": "mlp", "in_features": features, "latent_dim": 8, "hidden": [256, 128],
                "likelihood": "bernoulli" if meta["encoding"] == "unit" else "gaussian", "cond_dim": k}
    if family == "gan":
        spans = [[features, "tanh"]] if meta["encoding"] == "pm1" else []
        return {"kind": "tabular", "loss": "ns", "latent_dim": 32, "cond_dim": k, "hidden": [256, 256],
                "n_critic": 1, "in_features": features, "output_spans": spans}
    if family == "diffusion":
        return {"dims": 2, "channels": shape[0], "image_size": shape[1:], "base_channels": 16,
                "channel_mults": [1, 2], "layers_per_block": 1, "attention_levels": [],
                "attention_head_dim": 32, "norm_groups": 8, "num_classes": k,
                "cfg_dropout": 0.1 if k else 0.0, "schedule": "cosine", "prediction": "epsilon",
                "timesteps": 1000, "clip_sample": True}
    raise GenforgeError(f"family {family!r}: expected one of {', '.join(FAMILIES)}")


def train_settings(family: str) -> dict[str, Any]:
    """TrainConfig fields that suit each family's recipe (the CLI's options override them)."""
    base: dict[str, Any] = {"batch_size": 64, "lr": 2e-3, "val_every": 200, "grad_clip": 1.0}
    if family == "vae":
        base.update(batch_size=128, lr=2e-3, max_steps=1500, val_every=250)
    elif family == "gan":
        base.update(batch_size=128, lr=2e-4, betas=(0.5, 0.999), max_steps=2000, val_every=None)
    elif family == "diffusion":
        base.update(batch_size=64, lr=2e-3, max_steps=1600, ema_decay=0.995, val_every=None)
    elif family == "transformer":
        base.update(batch_size=32, lr=2e-3, max_steps=1000, val_every=250, lr_schedule="cosine",
                    warmup_steps=50)
    return base


# nanoGPT's character-model recipe (AdamW betas (0.9, 0.99), clipping at 1, warm-up then cosine decay, full
# fp32, no validation passes inside training): the content suite's GPTs and benchmarks/shakespeare_char.py
NANOGPT_SETTINGS: dict[str, Any] = {"betas": (0.9, 0.99), "grad_clip": 1.0, "lr_schedule": "cosine",
                                    "val_every": None, "precision": "fp32"}


def nanogpt_train_config(**fields: Any) -> Any:
    """A ``TrainConfig`` with :data:`NANOGPT_SETTINGS` and ``fields`` (steps, batch, lr, seed, ...) on top."""
    from genforge.training import TrainConfig

    return TrainConfig(**{**NANOGPT_SETTINGS, **fields})


def build_model(family: str, meta: dict[str, Any],
                overrides: dict[str, Any] | None = None) -> torch.nn.Module:
    """Instantiate the recipe's model through the registry (so checkpoints rebuild the same way)."""
    from genforge.registry import build_model as registry_build

    name, module = REGISTRY[family]
    importlib.import_module(module)
    config = model_config(family, meta)
    config.update(overrides or {})
    return registry_build(name, config)


def train(model: torch.nn.Module, prepared: Prepared, **settings: Any) -> Any:
    """Fit ``model`` with the shared Trainer; returns its TrainResult."""
    from genforge.training import TrainConfig, Trainer

    return Trainer(TrainConfig(**settings)).fit(model, prepared.train, prepared.val)


# ============================================================================== sampling
@dataclass
class Samples:
    """What a model generated, decoded to data space: one of images / table / texts is set."""

    kind: str
    images: torch.Tensor | None = None  # [n, C, H, W] in [0, 1]
    labels: torch.Tensor | None = None  # intended classes of conditional samples
    table: np.ndarray | None = None
    texts: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)  # table column names


def _decode(x: torch.Tensor, meta: dict[str, Any]) -> torch.Tensor | np.ndarray:
    data = meta["data"]
    if meta["encoding"] == "standard":
        return x.double().numpy() * np.asarray(data["std"]) + np.asarray(data["mean"])
    x = x.float()
    if meta["encoding"] == "pm1":
        x = (x + 1) / 2
    return x.clamp(0, 1).reshape(x.shape[0], *meta["shape"])


def class_labels(n: int, num_classes: int) -> torch.Tensor:
    """0, 1, ..., K-1, 0, 1, ...: every class drawn equally often."""
    return torch.arange(n) % num_classes


@torch.no_grad()
def draw_samples(model: torch.nn.Module, meta: dict[str, Any], n: int, *, steps: int = 50,
                 guidance_scale: float = 2.0, prompt: str | None = None, max_new_tokens: int = 300,
                 temperature: float = 0.8, top_k: int | None = None, top_p: float | None = None,
                 seed: int = 0) -> Samples:
    """Generate ``n`` samples from a trained recipe model and decode them to data space."""
    if n < 1:
        raise GenforgeError(f"-n = {n}; expected at least 1 sample")
    torch.manual_seed(seed)
    model.eval()
    family = meta["family"]
    if family == "transformer":
        vocab = meta["data"]["vocab"]
        text = prompt if prompt else "\n"
        unknown = sorted(set(text) - set(vocab))
        if unknown:
            raise GenforgeError(f"--prompt: characters {unknown[:5]!r} are not in the model's vocabulary")
        index = {ch: i for i, ch in enumerate(vocab)}
        block = int(model.config.block_size)
        idx = torch.tensor([[index[ch] for ch in text[-block:]]] * n, dtype=torch.long)
        gen = torch.Generator().manual_seed(seed)
        out = model.generate(idx, max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                             generator=gen)
        start = idx.shape[1]
        return Samples("text", texts=[text + "".join(vocab[int(i)] for i in row[start:]) for row in out])

    labels = class_labels(n, int(meta["num_classes"])) if meta.get("conditional") else None
    if family == "diffusion":
        x = model.sample(n, steps=steps, guidance_scale=guidance_scale if labels is not None else 1.0,
                         cond=labels)
    else:
        cond = None
        if labels is not None:
            cond = torch.nn.functional.one_hot(labels, int(meta["num_classes"])).float()
        x = model.sample(n, cond=cond)
    decoded = _decode(x, meta)
    if isinstance(decoded, np.ndarray):
        names = meta["data"].get("columns") or [f"x{i}" for i in range(decoded.shape[1])]
        return Samples("table", table=decoded, columns=list(names))
    return Samples("image", images=decoded, labels=labels)


def image_grid(images: torch.Tensor, ncol: int, scale: int = 4, pad: int = 1) -> Any:
    """A PIL image of ``images`` ([n, C, H, W] in [0, 1]) tiled ``ncol`` per row, upscaled ``scale``x."""
    from PIL import Image

    n, c, h, w = images.shape
    nrow = math.ceil(n / ncol)
    canvas = np.ones((nrow * (h + pad) + pad, ncol * (w + pad) + pad, c), dtype=np.float32)
    for i in range(n):
        r, col = divmod(i, ncol)
        y0, x0 = pad + r * (h + pad), pad + col * (w + pad)
        canvas[y0:y0 + h, x0:x0 + w] = images[i].permute(1, 2, 0).numpy()
    pixels = (canvas * 255).round().astype(np.uint8)
    img = Image.fromarray(pixels[..., 0] if c == 1 else pixels[..., :3])
    return img.resize((img.width * scale, img.height * scale), Image.NEAREST)


def save_samples(samples: Samples, path: Path, ncol: int = 10) -> Path:
    """Write samples atomically: images as a PNG grid, tables as CSV, texts as .txt."""
    if samples.kind == "image":
        assert samples.images is not None
        path = path.with_suffix(".png")
        with atomic_path(path) as tmp:
            image_grid(samples.images, ncol=min(ncol, len(samples.images))).save(tmp, format="PNG")
        return path
    if samples.kind == "table":
        import pandas as pd

        path = path.with_suffix(".csv")
        assert samples.table is not None
        return write_table_atomic(path, pd.DataFrame(samples.table, columns=samples.columns))
    path = path.with_suffix(".txt")
    sep = "\n\n" + "-" * 40 + "\n\n"
    return write_text_atomic(path, sep.join(samples.texts) + "\n")
