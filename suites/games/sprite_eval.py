"""Measuring sprite generators: Fréchet distance in a feature space trained here, class accuracy, copies.

No downloaded Inception weights: the judge is an ensemble of small CNNs (:class:`SpriteClassifier`,
trained by the core engine on the real sprites' classes) that supplies both the features (each member's
penultimate layer; the Fréchet distance, :func:`genforge.metrics.frechet_distance`, is the mean over the
members' feature spaces) and the class accuracy of conditional samples (the members' mean probability).

The judge is cross-fitted (:func:`train_judge`): the real sprites are split into stratified folds, and
every member is trained without one fold, so each real sprite is also classified by members that never
saw it. That held-out accuracy on REAL sprites, per class, is reported beside the class accuracy of the
samples: a judge that cannot recognise real enemies cannot grade generated ones. The members see
augmented sprites in training (flips, shifts of up to 2 pixels, colour gains) and keep where things are
(a 4 x 4 grid of pooled features, not one global average: characters stand tall, tiles fill the square);
that design was chosen on real sprites only (held-out accuracy, docs/results/games.md).

The copy check is the RMS pixel distance (RGBA) from each generated sprite to its nearest training sprite,
beside the same distance between real sprites (leave-one-out) for scale; a sample under
``COPY_THRESHOLD`` counts as a copy. The baselines are the sprite VAE and the core GAN with the same
widths, class-conditional. The guidance scale of the diffusion model (one per class) is chosen with a
second judge (other folds, other seeds) on samples of validation seeds, never with the evaluation judge
or samples.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

COPY_THRESHOLD = 0.02  # RMS over RGBA values in [0, 1]


def augment(x: torch.Tensor, shift: int = 2, gain: float = 0.25) -> torch.Tensor:
    """Class-keeping variations of sprites [B, 4, H, W] in [0, 1]: a horizontal flip (p = 0.5), a shift of
    up to ``shift`` pixels each way (transparent fill) and per-channel colour gains in 1 ± ``gain``."""
    b, _, h, w = x.shape
    flip = torch.rand(b, device=x.device) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    if shift:
        padded = F.pad(x, (shift, shift, shift, shift))
        dx, dy = torch.randint(0, 2 * shift + 1, (2, b)).tolist()
        x = torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(b)])
    if gain:
        g = 1 + gain * (2 * torch.rand(b, 3, 1, 1, device=x.device) - 1)
        x = torch.cat([(x[:, :3] * g).clamp(0, 1), x[:, 3:]], 1)
    return x


class SpriteClassifier(nn.Module):
    """Conv features -> class logits; ``features`` is the 64-d penultimate layer.

    ``spatial``: three conv blocks (GroupNorm) whose 4 x 4 pooled grid feeds a 64-d layer (keeps where
    things are); otherwise the first design (global average pool). ``augmented``: :func:`augment` in
    training; otherwise flips only."""

    family = "classifier"

    def __init__(self, n_classes: int, size: int = 32, spatial: bool = True, augmented: bool = True):
        super().__init__()
        self.spatial = spatial
        self.augmented = augmented
        if spatial:

            def block(cin: int, cout: int) -> list[nn.Module]:
                return [nn.Conv2d(cin, cout, 3, padding=1), nn.GroupNorm(8, cout), nn.SiLU(), nn.MaxPool2d(2)]

            self.body = nn.Sequential(
                *block(4, 16),
                *block(16, 32),
                *block(32, 32),
                nn.AdaptiveAvgPool2d(4),
                nn.Flatten(),
                nn.Linear(32 * 16, 64),
                nn.SiLU(),
            )
        else:
            self.body = nn.Sequential(
                nn.Conv2d(4, 16, 3, padding=1),
                nn.SiLU(),
                nn.MaxPool2d(2),
                nn.Conv2d(16, 32, 3, padding=1),
                nn.SiLU(),
                nn.MaxPool2d(2),
                nn.Conv2d(32, 64, 3, padding=1),
                nn.SiLU(),
                nn.AdaptiveAvgPool2d(1),
                nn.Flatten(),
            )
        self.head = nn.Linear(64, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def training_loss(self, batch) -> dict[str, torch.Tensor]:
        x, y = batch
        if self.augmented:
            x = augment(x)
        else:  # flips keep the class
            flip = torch.rand(x.shape[0], device=x.device) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
        return {"loss": F.cross_entropy(self(x), y)}


def train_classifier(
    images: np.ndarray,
    labels: np.ndarray,
    steps: int = 600,
    seed: int = 0,
    n_classes: int | None = None,
    spatial: bool = True,
    augmented: bool = True,
) -> SpriteClassifier:
    from genforge.training import TrainConfig, Trainer

    torch.manual_seed(seed)
    clf = SpriteClassifier(n_classes or int(labels.max()) + 1, images.shape[-1], spatial, augmented)
    cfg = TrainConfig(
        max_steps=steps,
        batch_size=min(32, len(images)),
        lr=2e-3,
        lr_schedule="cosine",
        val_every=None,
        seed=seed,
        progress=False,
        device="cpu",
        precision="fp32",
    )
    Trainer(cfg).fit(clf, (torch.from_numpy(images), torch.from_numpy(labels)))
    return clf.eval()


class SpriteJudge:
    """An ensemble of :class:`SpriteClassifier` members: class = argmax of their mean probability;
    ``held_out`` (from :func:`train_judge`) holds the out-of-fold accuracy on the real sprites."""

    def __init__(self, members: Sequence[SpriteClassifier], held_out: dict[str, Any] | None = None):
        self.members = list(members)
        self.held_out = held_out or {}


def _members(judge: SpriteJudge | SpriteClassifier) -> list[SpriteClassifier]:
    return judge.members if isinstance(judge, SpriteJudge) else [judge]


@torch.no_grad()
def _proba(members: Sequence[SpriteClassifier], images: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(np.asarray(images, np.float32))
    return np.mean([F.softmax(m(x), 1).numpy() for m in members], axis=0)


def predict(judge: SpriteJudge | SpriteClassifier, images: np.ndarray) -> np.ndarray:
    """Class indices of sprites [N, 4, H, W] in [0, 1] (the members' mean probability)."""
    return _proba(_members(judge), images).argmax(1)


@torch.no_grad()
def _features(clf: SpriteClassifier, images: np.ndarray) -> np.ndarray:
    return clf.features(torch.from_numpy(np.asarray(images, np.float32))).numpy()


def folds_of(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """A stratified fold index per sprite: every class dealt round-robin over ``k`` folds after a shuffle."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(labels), np.int64)
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        fold[idx] = (np.arange(len(idx)) + rng.integers(k)) % k
    return fold


def per_class_accuracy(pred: np.ndarray, labels: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    return {
        name: float(np.mean(pred[labels == c] == c)) for c, name in enumerate(names) if (labels == c).any()
    }


def train_judge(
    images: np.ndarray,
    labels: np.ndarray,
    names: Sequence[str],
    folds: int = 4,
    seeds: int = 2,
    steps: int = 600,
    seed: int = 0,
    spatial: bool = True,
    augmented: bool = True,
    echo: Callable[[str], Any] | None = None,
) -> SpriteJudge:
    """A cross-fitted judge: ``folds`` stratified folds x ``seeds`` members each trained without its fold.
    ``held_out``: accuracy (overall and per class) of each real sprite by the members that did not see it."""
    fold = folds_of(labels, folds, seed)
    members, oof = [], np.zeros((len(labels), len(names)))
    for k in range(folds):
        fit = fold != k
        mine = [
            train_classifier(
                images[fit],
                labels[fit],
                steps,
                seed=seed * 100 + k * 10 + s,
                n_classes=len(names),
                spatial=spatial,
                augmented=augmented,
            )
            for s in range(seeds)
        ]
        oof[~fit] = _proba(mine, images[~fit])
        members += mine
        if echo:
            hit = np.mean(oof[~fit].argmax(1) == labels[~fit])
            echo(f"judge fold {k + 1}/{folds}: held-out accuracy {hit:.3f}")
    pred = oof.argmax(1)
    held = {
        "accuracy": float(np.mean(pred == labels)),
        "by_class": per_class_accuracy(pred, labels, names),
        "folds": folds,
        "members": len(members),
        "steps": steps,
    }
    return SpriteJudge(members, held)


def sprite_metrics(
    judge: SpriteJudge | SpriteClassifier,
    real: np.ndarray,
    fake: np.ndarray,
    fake_labels: np.ndarray,
    names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """FD (mean over the judge's members' feature spaces), class accuracy (and by class with ``names``),
    nearest-neighbour RMS distance to the real sprites and the number of copies."""
    from genforge.metrics import frechet_distance

    members = _members(judge)
    fd = float(np.mean([frechet_distance(_features(m, real), _features(m, fake)) for m in members]))
    pred = _proba(members, fake).argmax(1)
    flat_r = real.reshape(len(real), -1)
    flat_f = fake.reshape(len(fake), -1)
    d2 = ((flat_f**2).sum(1)[:, None] + (flat_r**2).sum(1)[None] - 2 * flat_f @ flat_r.T).clip(0)
    nn_fake = np.sqrt(d2.min(1) / flat_r.shape[1])
    out: dict[str, Any] = {
        "fd": fd,
        "class_accuracy": float(np.mean(pred == fake_labels)),
        "nn_rms_min": float(nn_fake.min()),
        "nn_rms_mean": float(nn_fake.mean()),
        "copies": int(np.sum(nn_fake < COPY_THRESHOLD)),
    }
    if names is not None:
        out["class_accuracy_by_class"] = per_class_accuracy(pred, fake_labels, names)
    return out


def real_nn_rms(real: np.ndarray) -> float:
    """Mean leave-one-out nearest-neighbour RMS distance between real sprites (the scale of 'different')."""
    flat = real.reshape(len(real), -1)
    d2 = ((flat**2).sum(1)[:, None] + (flat**2).sum(1)[None] - 2 * flat @ flat.T).clip(0)
    np.fill_diagonal(d2, np.inf)
    return float(np.sqrt(d2.min(1) / flat.shape[1]).mean())


def choose_guidance(
    model: Any,
    val_judge: SpriteJudge | SpriteClassifier,
    n_classes: int,
    grid: tuple[float, ...],
    n_per_class: int = 16,
    seed: int = 10_000,
    tolerance: float = 0.02,
) -> tuple[float, dict[str, float]]:
    """The guidance scale for ``model``: the smallest w in ``grid`` whose class accuracy, judged by a
    *validation* judge (not the evaluation one) on samples of validation seeds (not the evaluation
    seeds), is within ``tolerance`` of the best. Smaller w keeps more diversity (lower FD)."""
    w, acc, _, _ = choose_guidance_by_class(model, val_judge, n_classes, grid, n_per_class, seed, tolerance)
    return w, acc


def choose_guidance_by_class(
    model: Any,
    val_judge: SpriteJudge | SpriteClassifier,
    n_classes: int,
    grid: tuple[float, ...],
    n_per_class: int = 16,
    seed: int = 10_000,
    tolerance: float = 0.02,
) -> tuple[float, dict[str, float], dict[str, list[float]], tuple[float, ...]]:
    """:func:`choose_guidance` that also returns the validation accuracy of every class at every w and
    the scale per class by the same rule on that class's samples alone."""
    labels = np.repeat(np.arange(n_classes), n_per_class)
    acc, by_class = {}, {}
    for w in grid:
        fake = np.concatenate(
            [model.sample(n_per_class, c, seed=seed + c, guidance_scale=w) for c in range(n_classes)]
        )
        hit = predict(val_judge, fake) == labels
        acc[str(w)] = float(np.mean(hit))
        by_class[str(w)] = [float(np.mean(hit[labels == c])) for c in range(n_classes)]
    best = max(acc.values())
    per_class = tuple(
        min(w for w in grid if by_class[str(w)][c] >= max(by_class[str(v)][c] for v in grid) - tolerance)
        for c in range(n_classes)
    )
    return min(w for w in grid if acc[str(w)] >= best - tolerance), acc, by_class, per_class


def evaluate_sprites(
    size: int = 32,
    steps: int = 1000,
    n_per_class: int = 64,
    seed: int = 0,
    beta: float = 4.0,
    diffusion_steps: int | None = None,
    diffusion_batch: int | None = None,
    guidance_grid: tuple[float, ...] = (1.0, 2.0, 3.0, 5.0),
    model_dir: str | None = None,
    judge_folds: int = 4,
    judge_seeds: int = 2,
    echo: Callable[[str], Any] = print,
) -> dict[str, Any]:
    """Sprite diffusion (CFG) vs the sprite VAE and the conditional GAN (same widths), on Kenney's sprites.

    Two cross-fitted judges (:func:`train_judge`) on other folds and seeds: the validation judge chooses
    the guidance scale of each class (:func:`choose_guidance_by_class`, 32 samples per class and scale,
    validation seeds); every figure of the result
    comes from the evaluation judge on samples of other seeds, beside that judge's held-out accuracy on
    the real sprites by class. ``diffusion_steps`` / ``diffusion_batch``: None = SpriteDiffusion's
    defaults. ``model_dir``: where to save the fitted diffusion model (with its chosen guidance scale).
    """
    from genforge import GAN, GANConfig
    from genforge.games.sprites import SpriteDiffusion, SpriteVAE, kenney_sprites, quantise
    from genforge.training import TrainConfig, Trainer

    def n_params(module: torch.nn.Module) -> int:
        return int(sum(p.numel() for p in module.parameters()))

    images, labels, names = kenney_sprites(size)
    echo(
        f"{len(images)} Kenney sprites, classes {names}; training the evaluation judge "
        f"({judge_folds} folds x {judge_seeds} seeds) ..."
    )
    judge = train_judge(images, labels, names, judge_folds, judge_seeds, seed=seed, echo=echo)
    echo(f"evaluation judge, held-out accuracy on real sprites: {judge.held_out}")
    val_judge = train_judge(images, labels, names, judge_folds, 1, seed=seed + 1000)
    echo(f"validation judge, held-out accuracy on real sprites: {val_judge.held_out}")
    hidden = (16, 32, 64)
    fake_labels = np.repeat(np.arange(len(names)), n_per_class)

    extra = {
        k: v for k, v in (("max_steps", diffusion_steps), ("batch_size", diffusion_batch)) if v is not None
    }
    diff = SpriteDiffusion(size=size, base_channels=hidden[0], channel_mults=(1, 2, 4), seed=seed, **extra)
    echo(f"training the sprite diffusion model ({diff.max_steps} steps of {diff.batch_size}) ...")
    diff.fit(images, labels, names)
    w_all, val_acc, val_by_class, w = choose_guidance_by_class(
        diff, val_judge, len(names), guidance_grid, n_per_class=32
    )
    diff.guidance_scale = w
    if model_dir is not None:
        diff.save(model_dir)
    echo(
        f"guidance scale by class {w} (one for all: {w_all}; validation accuracy by w: {val_acc}; "
        f"by w and class: {val_by_class})"
    )
    diff_fake = np.concatenate([diff.sample(n_per_class, i, seed=seed + i) for i in range(len(names))])
    echo(f"training the sprite VAE ({steps} steps) ...")
    vae = SpriteVAE(size=size, hidden=hidden, beta=beta, max_steps=steps, seed=seed)
    vae.fit(images, labels, names)
    vae_fake = np.concatenate([vae.sample(n_per_class, i, seed=seed + i) for i in range(len(names))])
    echo(f"training the GAN baseline ({steps} steps, same widths) ...")
    torch.manual_seed(seed)
    gan = GAN(
        GANConfig(
            kind="image",
            loss="ns",
            latent_dim=32,
            hidden=hidden,
            channels=4,
            image_size=(size, size),
            cond_dim=len(names),
            n_critic=1,
            spectral_norm=True,
        )
    )
    cond = np.eye(len(names), dtype=np.float32)[labels]
    Trainer(
        TrainConfig(
            max_steps=steps,
            batch_size=32,
            lr=2e-4,
            betas=(0.5, 0.999),
            val_every=None,
            seed=seed,
            progress=False,
            device="cpu",
            precision="fp32",
        )
    ).fit(gan, (torch.from_numpy(images * 2 - 1), torch.from_numpy(cond)))
    gan_cond = torch.from_numpy(np.eye(len(names), dtype=np.float32)[fake_labels])
    gan_fake = quantise((gan.sample(len(fake_labels), gan_cond).numpy() + 1) / 2, vae.palette_)
    diffusion = sprite_metrics(judge, images, diff_fake, fake_labels, names)
    diffusion.update(
        guidance_scale=dict(zip(names, w, strict=True)),
        guidance_scale_one_for_all=w_all,
        validation_accuracy_by_w=val_acc,
        validation_accuracy_by_w_and_class=val_by_class,
        params=n_params(diff.model_),
        steps=diff.max_steps,
        batch_size=diff.batch_size,
        train_seconds=float(diff.train_result_.seconds),
    )
    vae_metrics = sprite_metrics(judge, images, vae_fake, fake_labels, names)
    vae_metrics.update(params=n_params(vae.model_), steps=steps, batch_size=32)
    gan_metrics = sprite_metrics(judge, images, gan_fake, fake_labels, names)
    gan_metrics.update(params=n_params(gan.generator), steps=steps, batch_size=32)
    return {
        "sprites": len(images),
        "classes": names,
        "size": size,
        "beta": beta,
        "class_counts": {n: int((labels == c).sum()) for c, n in enumerate(names)},
        "judge_held_out": judge.held_out,
        "validation_judge_held_out": val_judge.held_out,
        "real_vs_generated_by_class": {
            n: {
                "real_held_out": judge.held_out["by_class"][n],
                "diffusion": diffusion["class_accuracy_by_class"][n],
            }
            for n in names
        },
        "real_nn_rms": real_nn_rms(images),
        "copy_threshold": COPY_THRESHOLD,
        "diffusion": diffusion,
        "baselines": {"vae": vae_metrics, "gan": gan_metrics},
        "note": "judges are cross-fitted ensembles: real-sprite accuracy is out-of-fold; the guidance scale "
        "is chosen by the validation judge on validation sample seeds",
    }
