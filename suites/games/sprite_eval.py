"""Measuring sprite generators: Fréchet distance in a feature space trained here, class accuracy, copies.

No downloaded Inception weights: :class:`SpriteClassifier` (a small CNN trained by the core engine on the
real sprites' classes) supplies both the features (its penultimate layer) for the Fréchet distance
(:func:`genforge.metrics.frechet_distance`) and the class accuracy of conditional samples. The copy check
is the RMS pixel distance (RGBA) from each generated sprite to its nearest training sprite, beside the
same distance between real sprites (leave-one-out) for scale; a sample under ``COPY_THRESHOLD`` counts as
a copy. The baseline is the core GAN with the same widths, class-conditional, trained for the same steps.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

COPY_THRESHOLD = 0.02  # RMS over RGBA values in [0, 1]


class SpriteClassifier(nn.Module):
    """Conv features -> class logits; ``features`` is the 64-d penultimate layer."""

    family = "classifier"

    def __init__(self, n_classes: int, size: int = 32):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(4, 16, 3, padding=1), nn.SiLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.SiLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.SiLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Linear(64, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def training_loss(self, batch) -> dict[str, torch.Tensor]:
        x, y = batch
        # flips keep the class: a little augmentation for a small data set
        flip = torch.rand(x.shape[0], device=x.device) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
        return {"loss": F.cross_entropy(self(x), y)}


def train_classifier(images: np.ndarray, labels: np.ndarray, steps: int = 600,
                     seed: int = 0) -> SpriteClassifier:
    from genforge.training import TrainConfig, Trainer

    torch.manual_seed(seed)
    clf = SpriteClassifier(int(labels.max()) + 1, images.shape[-1])
    cfg = TrainConfig(max_steps=steps, batch_size=32, lr=2e-3, val_every=None, seed=seed, progress=False,
                      device="cpu", precision="fp32")
    Trainer(cfg).fit(clf, (torch.from_numpy(images), torch.from_numpy(labels)))
    return clf.eval()


@torch.no_grad()
def _features(clf: SpriteClassifier, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = torch.from_numpy(np.asarray(images, np.float32))
    feats = clf.features(x)
    return feats.numpy(), clf.head(feats).argmax(1).numpy()


def sprite_metrics(clf: SpriteClassifier, real: np.ndarray, fake: np.ndarray, fake_labels: np.ndarray
                   ) -> dict[str, float]:
    from genforge.metrics import frechet_distance

    real_f, _ = _features(clf, real)
    fake_f, pred = _features(clf, fake)
    flat_r = real.reshape(len(real), -1)
    flat_f = fake.reshape(len(fake), -1)
    d2 = ((flat_f ** 2).sum(1)[:, None] + (flat_r ** 2).sum(1)[None] - 2 * flat_f @ flat_r.T).clip(0)
    nn_fake = np.sqrt(d2.min(1) / flat_r.shape[1])
    return {"fd": frechet_distance(real_f, fake_f), "class_accuracy": float(np.mean(pred == fake_labels)),
            "nn_rms_min": float(nn_fake.min()), "nn_rms_mean": float(nn_fake.mean()),
            "copies": int(np.sum(nn_fake < COPY_THRESHOLD))}


def real_nn_rms(real: np.ndarray) -> float:
    """Mean leave-one-out nearest-neighbour RMS distance between real sprites (the scale of 'different')."""
    flat = real.reshape(len(real), -1)
    d2 = ((flat ** 2).sum(1)[:, None] + (flat ** 2).sum(1)[None] - 2 * flat @ flat.T).clip(0)
    np.fill_diagonal(d2, np.inf)
    return float(np.sqrt(d2.min(1) / flat.shape[1]).mean())


def _split(labels: np.ndarray, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A stratified split of indices: ``share`` of every class in the first part."""
    rng = np.random.default_rng(seed)
    first, second = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = max(1, int(round(share * len(idx))))
        first.append(idx[:k])
        second.append(idx[k:])
    return np.concatenate(first), np.concatenate(second)


def choose_guidance(model: Any, val_clf: SpriteClassifier, n_classes: int, grid: tuple[float, ...],
                    n_per_class: int = 16, seed: int = 10_000, tolerance: float = 0.02
                    ) -> tuple[float, dict[str, float]]:
    """The guidance scale for ``model``: the smallest w in ``grid`` whose class accuracy, judged by a
    *validation* classifier (not the evaluation one) on samples of validation seeds (not the evaluation
    seeds), is within ``tolerance`` of the best. Smaller w keeps more diversity (lower FD)."""
    labels = np.repeat(np.arange(n_classes), n_per_class)
    acc = {}
    for w in grid:
        fake = np.concatenate([model.sample(n_per_class, c, seed=seed + c, guidance_scale=w)
                               for c in range(n_classes)])
        acc[str(w)] = float(np.mean(_features(val_clf, fake)[1] == labels))
    best = max(acc.values())
    return min(w for w in grid if acc[str(w)] >= best - tolerance), acc


def evaluate_sprites(size: int = 32, steps: int = 1000, n_per_class: int = 64, seed: int = 0,
                     beta: float = 4.0, diffusion_steps: int = 1500, diffusion_batch: int = 16,
                     guidance_grid: tuple[float, ...] = (1.0, 2.0, 3.0, 5.0), model_dir: str | None = None,
                     echo=print) -> dict[str, Any]:
    """Sprite diffusion (CFG) vs the sprite VAE and the conditional GAN (same widths), on Kenney's sprites.

    The guidance scale is chosen by :func:`choose_guidance` with a validation classifier trained on 80% of
    the sprites (its accuracy on the other 20% is reported); every figure of the result comes from the
    evaluation classifier (all sprites, another seed) on samples of other seeds. ``model_dir``: where to
    save the fitted diffusion model (with its chosen guidance scale).
    """
    from genforge import GAN, GANConfig
    from genforge.games.sprites import SpriteDiffusion, SpriteVAE, kenney_sprites, quantise
    from genforge.training import TrainConfig, Trainer

    def n_params(module: torch.nn.Module) -> int:
        return int(sum(p.numel() for p in module.parameters()))

    images, labels, names = kenney_sprites(size)
    echo(f"{len(images)} Kenney sprites, classes {names}; training the feature classifier ...")
    clf = train_classifier(images, labels, seed=seed)
    _, pred_real = _features(clf, images)
    fit_idx, held_idx = _split(labels, 0.8, seed + 1)
    val_clf = train_classifier(images[fit_idx], labels[fit_idx], seed=seed + 1)
    val_held_acc = float(np.mean(_features(val_clf, images[held_idx])[1] == labels[held_idx]))
    echo(f"validation classifier: {val_held_acc:.3f} on its {len(held_idx)} held-out sprites")
    hidden = (16, 32, 64)
    fake_labels = np.repeat(np.arange(len(names)), n_per_class)

    echo(f"training the sprite diffusion model ({diffusion_steps} steps of {diffusion_batch}) ...")
    diff = SpriteDiffusion(size=size, base_channels=hidden[0], channel_mults=(1, 2, 4),
                           max_steps=diffusion_steps, batch_size=diffusion_batch, seed=seed)
    diff.fit(images, labels, names)
    w, val_acc = choose_guidance(diff, val_clf, len(names), guidance_grid)
    diff.guidance_scale = w
    if model_dir is not None:
        diff.save(model_dir)
    echo(f"guidance scale {w} (validation accuracy by w: {val_acc})")
    diff_fake = np.concatenate([diff.sample(n_per_class, i, seed=seed + i) for i in range(len(names))])
    echo(f"training the sprite VAE ({steps} steps) ...")
    vae = SpriteVAE(size=size, hidden=hidden, beta=beta, max_steps=steps, seed=seed)
    vae.fit(images, labels, names)
    vae_fake = np.concatenate([vae.sample(n_per_class, i, seed=seed + i) for i in range(len(names))])
    echo(f"training the GAN baseline ({steps} steps, same widths) ...")
    torch.manual_seed(seed)
    gan = GAN(GANConfig(kind="image", loss="ns", latent_dim=32, hidden=hidden, channels=4,
                        image_size=(size, size), cond_dim=len(names), n_critic=1, spectral_norm=True))
    cond = np.eye(len(names), dtype=np.float32)[labels]
    Trainer(TrainConfig(max_steps=steps, batch_size=32, lr=2e-4, betas=(0.5, 0.999), val_every=None,
                        seed=seed, progress=False, device="cpu", precision="fp32")).fit(
        gan, (torch.from_numpy(images * 2 - 1), torch.from_numpy(cond)))
    gan_cond = torch.from_numpy(np.eye(len(names), dtype=np.float32)[fake_labels])
    gan_fake = quantise((gan.sample(len(fake_labels), gan_cond).numpy() + 1) / 2, vae.palette_)
    diffusion = sprite_metrics(clf, images, diff_fake, fake_labels)
    diffusion.update(guidance_scale=w, validation_accuracy_by_w=val_acc, params=n_params(diff.model_),
                     steps=diffusion_steps, batch_size=diffusion_batch,
                     train_seconds=float(diff.train_result_.seconds))
    vae_metrics = sprite_metrics(clf, images, vae_fake, fake_labels)
    vae_metrics.update(params=n_params(vae.model_), steps=steps, batch_size=32)
    gan_metrics = sprite_metrics(clf, images, gan_fake, fake_labels)
    gan_metrics.update(params=n_params(gan.generator), steps=steps, batch_size=32)
    per_class = {names[c]: float(np.mean(_features(clf, diff_fake[fake_labels == c])[1] == c))
                 for c in range(len(names))}
    diffusion["class_accuracy_by_class"] = per_class
    return {
        "sprites": len(images), "classes": names, "size": size, "beta": beta,
        "classifier_train_accuracy": float(np.mean(pred_real == labels)),
        "validation_classifier_held_out_accuracy": val_held_acc,
        "real_nn_rms": real_nn_rms(images), "copy_threshold": COPY_THRESHOLD,
        "diffusion": diffusion,
        "baselines": {"vae": vae_metrics, "gan": gan_metrics},
        "note": "the evaluation classifier is trained on all real sprites (286: no held-out split); the "
                "guidance scale is chosen with a second classifier on validation seeds",
    }
