"""Sprites and avatars: class-conditional sprite generators on the core, palette-quantised hard-alpha output.

Data: the Kenney CC0 sprites bundled in ``arcade`` (``resources/assets/images``: characters = the animated
characters and the alien, enemies, items, tiles), or a user's folder of PNGs with one sub-folder per class.
Each sprite is fitted into a square (centred, transparent padding), resized to ``size`` x ``size`` and kept
as RGBA in [0, 1].

:class:`SpriteDiffusion` (the default) — the core :class:`genforge.Diffusion` (a UNet on RGBA in [-1, 1]),
class labels with classifier-free guidance, classes balanced in training; see its docstring.

:class:`SpriteVAE` — the core :class:`genforge.VAE` (``kind="conv2d"``, Bernoulli likelihood over the RGBA
values, conditioned on the class one-hot). Samples are made game-ready: alpha thresholded to 0 / 1 (hard
edges) and colours snapped to a palette of ``palette_size`` colours learned from the opaque pixels of the
training sprites (k-means), so the output is pixel art in the data's own colours (both models). The VAE's
decoder learned to ignore its class condition (31% class accuracy, docs/results/games.md), which is why
diffusion with guidance was built. :func:`sprite_sheet` lays sprites out on a grid PNG;
:func:`load_sprite_model` reads either kind.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from PIL import Image

from genforge.errors import DataError
from genforge.estimator import Example, SuiteEstimator, to_numpy

KENNEY_CLASSES = {
    "characters": ("animated_characters/*/*.png", "alien/*.png"),
    "enemies": ("enemies/*.png",),
    "items": ("items/*.png",),
    "tiles": ("tiles/*.png",),
}
PALETTE_FILE = "sprite_palette.safetensors"


def _to_square(img: Image.Image, size: int) -> np.ndarray:
    img = img.convert("RGBA")
    side = max(img.size)
    canvas = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    canvas.paste(img, ((side - img.size[0]) // 2, side - img.size[1]))  # feet on the bottom edge
    arr = np.asarray(canvas.resize((size, size), Image.BOX), dtype=np.float32) / 255.0
    arr[..., :3] *= arr[..., 3:] > 0  # no colour where fully transparent
    return arr.transpose(2, 0, 1)


def kenney_sprites(
    size: int = 32, classes: Sequence[str] | None = None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(images [N, 4, size, size] in [0, 1], labels [N], class names) from arcade's Kenney sprites."""
    from genforge.games.render import kenney_root

    root = kenney_root()
    if root is None:
        raise DataError("arcade: its Kenney images were not found; expected the arcade package installed")
    names = list(classes or KENNEY_CLASSES)
    images, labels = [], []
    for label, name in enumerate(names):
        if name not in KENNEY_CLASSES:
            raise DataError(f"class {name!r}: expected one of {', '.join(KENNEY_CLASSES)}")
        for pattern in KENNEY_CLASSES[name]:
            for path in sorted(root.glob(pattern)):
                images.append(_to_square(Image.open(path), size))
                labels.append(label)
    return np.stack(images), np.asarray(labels, dtype=np.int64), names


def read_sprite_folder(
    folder: str | os.PathLike[str], size: int = 32
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A user's sprites: ``folder/<class>/*.png`` with an alpha channel."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder; expected one sub-folder of PNG sprites per class")
    names = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if not names:
        raise DataError(f"{folder}: no class sub-folders; expected folder/<class>/*.png")
    images, labels = [], []
    for label, name in enumerate(names):
        files = sorted((folder / name).glob("*.png"))
        if not files:
            raise DataError(f"{folder / name}: no PNG files; expected sprites with alpha")
        for path in files:
            try:
                img = Image.open(path)
                img.load()
            except Exception as exc:  # PIL raises several types for bad files
                raise DataError(
                    f"{path}: not a readable PNG ({type(exc).__name__}); expected a sprite"
                ) from None
            if "A" not in img.getbands() and "transparency" not in img.info:
                raise DataError(f"{path}: mode {img.mode} has no alpha channel; expected RGBA sprites")
            images.append(_to_square(img, size))
            labels.append(label)
    return np.stack(images), np.asarray(labels, dtype=np.int64), names


def learn_palette(images: np.ndarray, k: int = 32, seed: int = 0) -> np.ndarray:
    """``k`` RGB colours (k-means over the opaque pixels)."""
    from sklearn.cluster import KMeans

    rgb = images[:, :3].transpose(0, 2, 3, 1).reshape(-1, 3)
    opaque = images[:, 3].reshape(-1) > 0.5
    pixels = rgb[opaque]
    rng = np.random.default_rng(seed)
    if len(pixels) > 20000:
        pixels = pixels[rng.choice(len(pixels), 20000, replace=False)]
    k = min(k, len(np.unique(pixels, axis=0)))
    return KMeans(k, n_init=3, random_state=seed).fit(pixels).cluster_centers_.astype(np.float32)


def quantise(images: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Hard alpha (0 or 1) and every opaque pixel snapped to its nearest palette colour."""
    out = images.copy()
    alpha = (images[:, 3] > 0.5).astype(np.float32)
    rgb = images[:, :3].transpose(0, 2, 3, 1)
    nearest = ((rgb[..., None, :] - palette) ** 2).sum(-1).argmin(-1)
    out[:, :3] = palette[nearest].transpose(0, 3, 1, 2) * alpha[:, None]
    out[:, 3] = alpha
    return out


def sprite_sheet(images: np.ndarray, columns: int = 8, scale: int = 2) -> Image.Image:
    """Sprites [N, 4, H, W] in [0, 1] on a transparent grid, each scaled up ``scale`` times (nearest)."""
    n, _, h, w = images.shape
    rows = -(-n // columns)
    sheet = Image.new("RGBA", (columns * w * scale, rows * h * scale), (0, 0, 0, 0))
    for i, img in enumerate(images):
        tile = Image.fromarray((img.transpose(1, 2, 0) * 255).round().astype(np.uint8))
        tile = tile.resize((w * scale, h * scale), Image.NEAREST)
        sheet.paste(tile, ((i % columns) * w * scale, (i // columns) * h * scale))
    return sheet


def load_sprite_model(directory: str | os.PathLike[str]) -> SpriteDiffusion | SpriteVAE:
    """A saved sprite model of either kind (the checkpoint names its estimator)."""
    from genforge.checkpoints import load_extra

    name = load_extra(Path(directory)).get("estimator")
    return SpriteVAE.load(directory) if name == "SpriteVAE" else SpriteDiffusion.load(directory)


class _SpriteEstimator(SuiteEstimator):
    """What every sprite generator shares: the input checks, class names, the learned palette and
    its checkpoint file. Subclasses set ``size``, ``palette_size`` and ``seed``."""

    def _prepare(
        self, images: np.ndarray, labels: np.ndarray, class_names: Sequence[str] | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Checked float images and integer labels; sets ``classes_`` and ``palette_``."""
        images = np.asarray(images, np.float32)
        labels = np.asarray(labels, np.int64)
        if images.ndim != 4 or images.shape[1:] != (4, self.size, self.size):
            raise DataError(
                f"images: shape {list(images.shape)}; expected [N, 4, {self.size}, {self.size}] RGBA"
            )
        if len(labels) != len(images):
            raise DataError(f"labels: {len(labels)} given for {len(images)} images; expected one per image")
        n_classes = int(labels.max()) + 1
        self.classes_ = list(class_names) if class_names else [str(i) for i in range(n_classes)]
        if len(self.classes_) < n_classes:
            raise DataError(f"class_names: {len(self.classes_)} names for {n_classes} classes")
        self.palette_ = learn_palette(images, self.palette_size, self.seed)
        return images, labels

    def _class_index(self, name: str | int) -> int:
        if isinstance(name, int | np.integer):
            if not 0 <= int(name) < len(self.classes_):
                raise DataError(f"class {name}: expected an index below {len(self.classes_)}")
            return int(name)
        if name not in self.classes_:
            raise DataError(f"class {name!r}: expected one of {', '.join(self.classes_)}")
        return self.classes_.index(name)

    def _get_state(self) -> dict[str, Any]:
        return {"classes": self.classes_}

    def _set_state(self, state: dict[str, Any], directory: Path) -> None:
        self.classes_ = list(state["classes"])
        self.palette_ = self._load_arrays(Path(directory) / PALETTE_FILE)["palette"]

    def _save_files(self, directory: Path) -> None:
        self._save_arrays(directory / PALETTE_FILE, {"palette": self.palette_})


class SpriteVAE(_SpriteEstimator):
    """Class-conditional sprite generator on the core VAE (see the module docstring)."""

    state_version: ClassVar[int] = 1

    def __init__(
        self,
        size: int = 32,
        latent_dim: int = 32,
        hidden: tuple[int, ...] = (32, 64, 128),
        beta: float = 4.0,
        palette_size: int = 32,
        max_steps: int = 2000,
        batch_size: int = 32,
        lr: float = 1e-3,
        seed: int = 0,
        progress: bool = False,
        device: str = "auto",
    ):
        self.size = size
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.beta = beta
        self.palette_size = palette_size
        self.max_steps = max_steps
        self.batch_size = batch_size
        self.lr = lr
        self.seed = seed
        self.progress = progress
        self.device = device

    @classmethod
    def example(cls) -> Example:
        images, labels, names = kenney_sprites(16, ["enemies", "items"])
        params = {"size": 16, "max_steps": 10, "hidden": (8, 16), "latent_dim": 4, "palette_size": 8}
        return Example(
            params=params,
            fit_args=(images, labels),
            fit_kwargs={"class_names": names},
            probe=lambda est: est.sample(4, "enemies", seed=0),
        )

    def fit(
        self, images: np.ndarray, labels: np.ndarray, class_names: Sequence[str] | None = None
    ) -> SpriteVAE:
        """Train on sprites [N, 4, size, size] in [0, 1] with integer class labels."""
        from genforge import VAE, VAEConfig
        from genforge.devices import pick_device
        from genforge.training import TrainConfig, Trainer

        images, labels = self._prepare(images, labels, class_names)
        device = pick_device(self.device)
        torch.manual_seed(self.seed)
        model = VAE(
            VAEConfig(
                kind="conv2d",
                in_channels=4,
                image_size=(self.size, self.size),
                latent_dim=self.latent_dim,
                hidden=tuple(self.hidden),
                likelihood="bernoulli",
                cond_dim=len(self.classes_),
                beta=self.beta,
                residual=False,
            )
        )
        cond = np.eye(len(self.classes_), dtype=np.float32)[labels]
        tcfg = TrainConfig(
            max_steps=self.max_steps,
            batch_size=min(self.batch_size, len(images)),
            lr=self.lr,
            lr_schedule="cosine",
            val_every=None,
            seed=self.seed,
            progress=self.progress,
            device=str(device),
            precision="fp32",
        )
        self.train_result_ = Trainer(tcfg).fit(model, (torch.from_numpy(images), torch.from_numpy(cond)))
        self.model_ = model.to(device).eval()
        return self

    @torch.no_grad()
    def sample(self, n: int, class_name: str | int, seed: int = 0, raw: bool = False) -> np.ndarray:
        """``n`` sprites [n, 4, size, size] of a class: palette-quantised with hard alpha (``raw``: not)."""
        self._check_fitted()
        idx = self._class_index(class_name)
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.latent_dim, generator=g).to(self._device())
        cond = torch.zeros(n, len(self.classes_), device=self._device())
        cond[:, idx] = 1.0
        images = to_numpy(torch.sigmoid(self.model_.decode(z, cond)))
        return images if raw else quantise(images, self.palette_)


def balanced_indices(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """Indices that repeat every class up to the largest class's count (shuffled), so rare classes
    (Kenney: 19 enemies beside 150 tiles) are seen as often as common ones in training."""
    rng = np.random.default_rng(seed)
    counts = np.bincount(labels)
    top = counts.max()
    parts = [
        np.resize(rng.permutation(np.flatnonzero(labels == c)), top) for c in range(len(counts)) if counts[c]
    ]
    return rng.permutation(np.concatenate(parts))


class SpriteDiffusion(_SpriteEstimator):
    """Class-conditional sprite diffusion with classifier-free guidance (core :class:`genforge.Diffusion`).

    The UNet sees RGBA scaled to [-1, 1]; the class is a label embedding, dropped with probability
    ``cfg_dropout`` in training so that sampling can guide: out = u + w (c - u), w = ``guidance_scale``
    (one number, or one per class: a rare class may need stronger guidance than a common one).
    Classes are balanced in training by repetition (:func:`balanced_indices`). Samples are DDIM
    (``sample_steps``), then palette-quantised with hard alpha as :class:`SpriteVAE`'s. Defaults from
    docs/results/games.md (Kenney's sprites, w chosen on validation samples): after 1,500 steps of 16
    guidance did not help (w = 1); after 700 more steps w = 2 did. ``evaluate-sprites`` chooses w per
    class on validation. Samples have the right silhouettes but patchy, speckled colours (undertrained
    for colour detail at this size and step count: see the results doc).
    """

    state_version: ClassVar[int] = 1

    def __init__(
        self,
        size: int = 32,
        base_channels: int = 32,
        channel_mults: tuple[int, ...] = (1, 2, 2),
        cfg_dropout: float = 0.15,
        guidance_scale: float | tuple[float, ...] = 2.0,
        sample_steps: int = 25,
        palette_size: int = 32,
        max_steps: int = 2200,
        batch_size: int = 16,
        lr: float = 1e-3,
        ema_decay: float | None = 0.995,
        balance: bool = True,
        seed: int = 0,
        progress: bool = False,
        device: str = "auto",
    ):
        self.size = size
        self.base_channels = base_channels
        self.channel_mults = channel_mults
        self.cfg_dropout = cfg_dropout
        self.guidance_scale = guidance_scale
        self.sample_steps = sample_steps
        self.palette_size = palette_size
        self.max_steps = max_steps
        self.batch_size = batch_size
        self.lr = lr
        self.ema_decay = ema_decay
        self.balance = balance
        self.seed = seed
        self.progress = progress
        self.device = device

    @classmethod
    def example(cls) -> Example:
        images, labels, names = kenney_sprites(16, ["enemies", "items"])
        params = {
            "size": 16,
            "max_steps": 4,
            "base_channels": 8,
            "channel_mults": (1, 2),
            "sample_steps": 3,
            "palette_size": 8,
            "ema_decay": None,
        }
        return Example(
            params=params,
            fit_args=(images, labels),
            fit_kwargs={"class_names": names},
            probe=lambda est: est.sample(2, "enemies", seed=0),
        )

    def fit(
        self, images: np.ndarray, labels: np.ndarray, class_names: Sequence[str] | None = None
    ) -> SpriteDiffusion:
        """Train on sprites [N, 4, size, size] in [0, 1] with integer class labels."""
        from genforge import Diffusion, DiffusionConfig
        from genforge.devices import pick_device
        from genforge.training import TrainConfig, Trainer

        images, labels = self._prepare(images, labels, class_names)
        device = pick_device(self.device)
        torch.manual_seed(self.seed)
        groups = min(8, self.base_channels)
        model = Diffusion(
            DiffusionConfig(
                dims=2,
                channels=4,
                image_size=(self.size, self.size),
                base_channels=self.base_channels,
                channel_mults=tuple(self.channel_mults),
                layers_per_block=1,
                attention_levels=(),
                mid_attention=False,
                norm_groups=groups,
                schedule="cosine",
                prediction="v",
                clip_sample=True,
                num_classes=len(self.classes_),
                cfg_dropout=self.cfg_dropout,
            )
        )
        idx = balanced_indices(labels, self.seed) if self.balance else np.arange(len(labels))
        x = torch.from_numpy(images[idx] * 2 - 1)
        y = torch.from_numpy(labels[idx])
        tcfg = TrainConfig(
            max_steps=self.max_steps,
            batch_size=min(self.batch_size, len(idx)),
            lr=self.lr,
            lr_schedule="cosine",
            warmup_steps=min(100, self.max_steps // 10),
            ema_decay=self.ema_decay,
            val_every=None,
            seed=self.seed,
            progress=self.progress,
            device=str(device),
            precision="fp32",
        )
        self.train_result_ = Trainer(tcfg).fit(model, (x, y))
        self.model_ = model.to(device).eval()
        return self

    def guidance_for(self, class_name: str | int) -> float:
        """The guidance scale that sampling uses for a class (``guidance_scale``, or its entry)."""
        w = self.guidance_scale
        if isinstance(w, int | float):
            return float(w)
        if len(w) != len(self.classes_):
            raise DataError(
                f"guidance_scale: {len(w)} values for {len(self.classes_)} classes; "
                "expected one number or one per class"
            )
        return float(w[self._class_index(class_name)])

    @torch.no_grad()
    def sample(
        self,
        n: int,
        class_name: str | int,
        seed: int = 0,
        raw: bool = False,
        guidance_scale: float | None = None,
    ) -> np.ndarray:
        """``n`` sprites [n, 4, size, size] of a class: palette-quantised with hard alpha (``raw``: not).

        ``guidance_scale`` overrides the fitted default (1 = no guidance)."""
        self._check_fitted()
        idx = self._class_index(class_name)
        w = self.guidance_for(idx) if guidance_scale is None else float(guidance_scale)
        g = torch.Generator().manual_seed(seed)
        cond = torch.full((n,), idx, dtype=torch.long)
        x = self.model_.sample(n, steps=self.sample_steps, guidance_scale=w, cond=cond, generator=g)
        images = np.clip((to_numpy(x) + 1) / 2, 0.0, 1.0)
        return images if raw else quantise(images, self.palette_)
