"""The image part of ``genforge content demo``: a small class-conditional diffusion model on scikit-learn's
8x8 digits and a grid with one row per class (DDIM, classifier-free guidance)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def image_demo(out_dir: Path, quick: bool) -> dict[str, Any]:
    from genforge.content.image.data import save_grid, sklearn_digits
    from genforge.content.image.models import ImageGenerator

    digits = sklearn_digits()
    size = (
        dict(base_channels=8, channel_mults=(1, 2), attention=False)
        if quick
        else dict(base_channels=32, channel_mults=(1, 2))
    )
    est = ImageGenerator(
        max_steps=40 if quick else 2000,
        batch_size=32 if quick else 64,
        progress=not quick,
        device="cpu",
        **size,
    ).fit(digits.x, digits.y)
    est.save(out_dir / "model")
    per_class = 2 if quick else 8
    images = np.concatenate(
        [est.sample(per_class, label=c, steps=10 if quick else 50, seed=c) for c in range(10)]
    )
    save_grid(images, out_dir / "grid.png", nrow=per_class, scale=4)
    return {"image_samples": int(len(images)), "image_final_loss": round(float(est.history_[-1]["loss"]), 4)}
