"""Trainer state for resume, stored in ONE safetensors file without pickle.

Nested Python data (optimizer state dicts, RNG states, history, counters) is split into tensors,
stored as safetensors entries, and a JSON skeleton, stored in the file's metadata with the tensors
replaced by references. One file means one atomic rename: the model weights, optimizer moments and
step counter inside it always belong together, even when training is killed while writing.

JSON cannot tell tuples from lists or keep non-string dict keys (optimizer state is keyed by int),
so those are tagged in the skeleton; NumPy arrays (NumPy's RNG state) are tagged as well.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from genforge.checkpoints import CheckpointError
from genforge.io import atomic_path

_META_KEY = "genforge_state"


def pack(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """JSON skeleton of ``obj``; its tensors are added to ``tensors`` (as contiguous CPU copies)."""
    if isinstance(obj, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = obj.detach().to("cpu", copy=True).contiguous()
        return {"__tensor__": key}
    if isinstance(obj, np.ndarray):
        return {"__ndarray__": obj.tolist(), "dtype": str(obj.dtype)}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: pack(v, tensors) for k, v in obj.items()}
        return {"__items__": [[pack(k, tensors), pack(v, tensors)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [pack(v, tensors) for v in obj]}
    if isinstance(obj, list):
        return [pack(v, tensors) for v in obj]
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    raise TypeError(f"cannot store a {type(obj).__name__} in trainer state")


def unpack(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`pack`."""
    if isinstance(skeleton, list):
        return [unpack(v, tensors) for v in skeleton]
    if not isinstance(skeleton, dict):
        return skeleton
    if "__tensor__" in skeleton:
        return tensors[skeleton["__tensor__"]]
    if "__ndarray__" in skeleton:
        return np.asarray(skeleton["__ndarray__"], dtype=skeleton["dtype"])
    if "__tuple__" in skeleton:
        return tuple(unpack(v, tensors) for v in skeleton["__tuple__"])
    if "__items__" in skeleton:
        return {_hashable(unpack(k, tensors)): unpack(v, tensors) for k, v in skeleton["__items__"]}
    return {k: unpack(v, tensors) for k, v in skeleton.items()}


def _hashable(key: Any) -> Any:
    return tuple(key) if isinstance(key, list) else key


def write_trainer_state(path: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Write ``state`` (nested dicts/lists of tensors and JSON values) atomically to ``path``."""
    tensors: dict[str, torch.Tensor] = {}
    skeleton = pack(state, tensors)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={_META_KEY: json.dumps(skeleton)})
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
    return Path(path)


def read_trainer_state(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a state written by :func:`write_trainer_state`; a bad file is a :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: trainer state file missing")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in f.keys()}
        skeleton = json.loads(metadata[_META_KEY])
        return unpack(skeleton, tensors)
    except Exception as exc:  # any malformed file, header or skeleton
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path}: truncated or corrupt trainer state ({reason})") from None
