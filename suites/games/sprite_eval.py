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


def evaluate_sprites(size: int = 32, steps: int = 1500, n_per_class: int = 64, seed: int = 0,
                     beta: float = 4.0, echo=print) -> dict[str, Any]:
    """SpriteVAE vs the same-size conditional GAN, on Kenney's sprites, measured as the module says."""
    from genforge import GAN, GANConfig
    from genforge.games.sprites import SpriteVAE, kenney_sprites, quantise
    from genforge.training import TrainConfig, Trainer

    images, labels, names = kenney_sprites(size)
    echo(f"{len(images)} Kenney sprites, classes {names}; training the feature classifier ...")
    clf = train_classifier(images, labels, seed=seed)
    _, pred_real = _features(clf, images)
    hidden = (16, 32, 64)
    echo(f"training the sprite VAE ({steps} steps) ...")
    vae = SpriteVAE(size=size, hidden=hidden, beta=beta, max_steps=steps, seed=seed)
    vae.fit(images, labels, names)
    fake_labels = np.repeat(np.arange(len(names)), n_per_class)
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
    return {
        "sprites": len(images), "classes": names, "size": size, "steps": steps, "beta": beta,
        "classifier_train_accuracy": float(np.mean(pred_real == labels)),
        "real_nn_rms": real_nn_rms(images), "copy_threshold": COPY_THRESHOLD,
        "vae": sprite_metrics(clf, images, vae_fake, fake_labels),
        "baselines": {"gan": sprite_metrics(clf, images, gan_fake, fake_labels)},
        "note": "the classifier is trained on all real sprites (no held-out split: 286 sprites)",
    }
