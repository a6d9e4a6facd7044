"""How every model reads a training batch: ``x``, or ``(x, cond, ...)``.

One rule for all families, so a suite can hand any model the tuples its data loader yields: the
first item is the data; the second is the condition (class labels or a vector) and is used only by
a conditional model; further items, and a condition given to an unconditional model (e.g. the
labels of a labelled data set), are ignored. (The GPT's ``(x, y)`` pairs are inputs and targets, not
a condition, and it reads them itself.)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def split_batch(
    batch: torch.Tensor | Sequence[torch.Tensor], conditional: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(x, cond)`` of a batch; ``cond`` is None unless ``conditional`` and the batch carries one."""
    if isinstance(batch, torch.Tensor):
        return batch, None
    if not isinstance(batch, Sequence) or len(batch) == 0:
        raise TypeError(f"a batch is a Tensor or a tuple (x, cond, ...); got {type(batch).__name__}")
    cond = batch[1] if conditional and len(batch) > 1 else None
    return batch[0], cond
