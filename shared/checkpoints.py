"""Model checkpoints: ``model.safetensors`` (weights) + ``config.json`` (registry name, config, extra).

Loading never unpickles anything: weights are read with safetensors (a plain header + raw bytes)
and the model is rebuilt from its JSON config through :mod:`genforge.registry`. Both files are
written atomically (temp file + rename), weights first, so a reader never sees half a file.

Loading never runs code a checkpoint names: the model class is looked up in an explicit registry, the
core's models plus the modules installed suites declare (``Suite.models``), never by importing the
``module`` field of ``config.json``. The config is checked against the weights' shapes on PyTorch's
``meta`` device (no memory) before the model is built for real, so a config with huge or negative layer
sizes cannot allocate; weights holding NaN or infinity are refused.

Tied weights (e.g. a GPT whose ``lm_head`` shares the embedding matrix) are stored once; on load a
key missing from the file is accepted when the model ties it to a key that is present.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_model
from torch import nn

from genforge import __version__, registry
from genforge.errors import GenforgeError
from genforge.io import atomic_path, write_json_atomic

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
FORMAT = "genforge"

# Registry names of the core models -> module that registers them, imported on demand by load().
_CORE_MODULES = {
    "vae": "genforge.models.vae",
    "gan": "genforge.models.gan",
    "gpt": "genforge.models.transformer",
    "diffusion": "genforge.models.diffusion",
}


class CheckpointError(GenforgeError):
    """A checkpoint that cannot be used: missing, truncated, corrupt, or for another model."""


def save(model: nn.Module, directory: str | os.PathLike[str], extra: dict[str, Any] | None = None) -> Path:
    """Write ``model.safetensors`` and ``config.json`` into ``directory`` (created); return the directory.

    ``extra`` is JSON data kept beside the config (suites store thresholds, scalers, column specs).
    """
    name = getattr(type(model), "registry_name", None)
    if name is None or not hasattr(model, "config"):
        raise CheckpointError(
            f"{type(model).__qualname__}: cannot save a model that is not registered with "
            f"@register_model and has no .config"
        )
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with atomic_path(directory / WEIGHTS) as tmp:
        # save_model drops duplicate names of shared tensors (tied weights) and makes tensors contiguous.
        save_model(model, str(tmp), metadata={"format": "pt"}, force_contiguous=True)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
    meta = {
        "format": FORMAT,
        "version": __version__,
        "model": name,
        "module": type(model).__module__,
        "config": registry.config_to_dict(model.config),
        "extra": registry.json_ready(extra or {}),
    }
    write_json_atomic(directory / CONFIG, meta)
    return directory


def read_config(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The parsed ``config.json`` of a checkpoint, validated; errors are :class:`CheckpointError`."""
    directory = _checkpoint_dir(directory)
    path = directory / CONFIG
    if not path.is_file():
        raise CheckpointError(
            f"{path}: missing; expected a genforge checkpoint folder with {CONFIG} and {WEIGHTS}"
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(
            f"{path}: invalid JSON ({exc}); expected a genforge checkpoint config"
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: field 'format' is not {FORMAT!r}; not a genforge checkpoint")
    if not isinstance(meta.get("model"), str) or not isinstance(meta.get("config"), dict):
        raise CheckpointError(f"{path}: expected a string field 'model' and an object field 'config'")
    if not isinstance(meta.get("extra", {}), dict):
        raise CheckpointError(f"{path}: field 'extra' must be an object")
    return meta


def load_extra(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``extra`` JSON data saved with a checkpoint ({} when none)."""
    return dict(read_config(directory).get("extra") or {})


def load(directory: str | os.PathLike[str], device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the model saved in ``directory`` from its config, load its weights strictly, eval mode."""
    directory = _checkpoint_dir(directory)
    meta = read_config(directory)
    check_shapes(meta, directory / CONFIG, directory / WEIGHTS)  # before any real allocation
    model = build(meta, directory / CONFIG)
    state = read_weights(directory / WEIGHTS)
    check_finite(state, directory / WEIGHTS)
    load_state(model, state, directory / WEIGHTS)
    return model.to(device).eval()


def model_modules(name: str) -> list[str]:
    """The modules that may register model ``name``: the core's own, then those suites declare."""
    from genforge.suite import suite_model_modules

    core = _CORE_MODULES.get(name)
    return ([core] if core else []) + [m for m in suite_model_modules() if m != core]


def _import_registered(name: str) -> None:
    """Import declared model modules until ``name`` is registered (never a module named in a file)."""
    for module in model_modules(name):
        if name in registry.registered_models():
            return
        try:
            importlib.import_module(module)
        except ImportError:
            pass


def build(meta: dict[str, Any], source: Path, device: str | torch.device | None = None) -> nn.Module:
    """Instantiate the registered model named in ``meta`` (on ``device``, e.g. ``"meta"``: no memory)."""
    name = meta["model"]
    if name not in registry.registered_models():
        _import_registered(name)
    try:
        if device is None:
            return registry.build_model(name, meta["config"])
        with torch.device(device):
            return registry.build_model(name, meta["config"])
    except KeyError as exc:
        raise CheckpointError(f"{source}: field 'model': {exc.args[0]}") from None
    except (TypeError, ValueError, RuntimeError, OverflowError, GenforgeError) as exc:
        detail = " ".join(str(exc).split())[:300]
        raise CheckpointError(f"{source}: field 'config' does not fit model {name!r}: {detail}") from None


def weight_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape from a safetensors header (no tensor is read)."""
    from safetensors import safe_open

    if not path.is_file():
        raise CheckpointError(f"{path}: missing; expected the weights file of a genforge checkpoint")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            return {key: tuple(f.get_slice(key).get_shape()) for key in f.keys()}
    except Exception as exc:  # safetensors raises its own error types for every kind of bad file
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path}: truncated or corrupt safetensors file ({reason})") from None


def check_shapes(meta: dict[str, Any], config_path: Path, weights_path: Path) -> None:
    """The model the config describes must have exactly the weights file's tensors and shapes.

    Built on the ``meta`` device, so a config with absurd sizes costs no memory; keys the model ties to
    another key (one tensor under two names) may be absent from the file.
    """
    shapes = weight_shapes(weights_path)
    skeleton = build(meta, config_path, device="meta")
    own = skeleton.state_dict(keep_vars=True)
    missing = []
    for key, tensor in own.items():
        if key in shapes:
            if tuple(tensor.shape) != shapes[key]:
                raise CheckpointError(
                    f"{config_path}: weights do not fit the config (shape mismatch): field 'config' gives "
                    f"{key} the shape {tuple(tensor.shape)}; {weights_path.name} has {shapes[key]}"
                )
        elif not any(other in shapes and own[other] is tensor for other in own if other != key):
            missing.append(key)
    unexpected = sorted(set(shapes) - set(own))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} key(s), e.g. {missing[0]!r}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} key(s), e.g. {unexpected[0]!r}")
        raise CheckpointError(f"{weights_path}: weights do not fit the model its config describes: "
                              f"{'; '.join(parts)}; expected the config the weights were saved with")


def check_finite(state: dict[str, torch.Tensor], source: Path) -> None:
    """Refuse weights holding NaN or infinity (a diverged or corrupted run)."""
    for key, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise CheckpointError(
                f"{source}: tensor {key!r} holds {bad} NaN/infinite value(s); expected finite weights"
            )


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of a safetensors file on the CPU; a missing/truncated/corrupt file is a CheckpointError."""
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; expected the weights file of a genforge checkpoint")
    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:  # safetensors raises its own error types for every kind of bad file
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path}: truncated or corrupt safetensors file ({reason})") from None


def load_state(model: nn.Module, state: dict[str, torch.Tensor], source: Path | str) -> None:
    """Load ``state`` into ``model`` strictly: every key must match in name and shape (ties allowed)."""
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())
        raise CheckpointError(
            f"{source}: weights do not fit the model (shape mismatch): {detail[:400]}"
        ) from None
    missing = [key for key in missing if not _tied_to_loaded(model, key, state)]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} key(s), e.g. {missing[0]!r}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} key(s), e.g. {unexpected[0]!r}")
        raise CheckpointError(f"{source}: weights do not fit the model: {'; '.join(parts)}")


def _tied_to_loaded(model: nn.Module, key: str, state: dict[str, torch.Tensor]) -> bool:
    """True when model tensor ``key`` shares storage with a model tensor that ``state`` provided."""
    own = model.state_dict(keep_vars=True)
    ptr = own[key].data_ptr()
    return any(other in state and own[other].data_ptr() == ptr for other in own if other != key)


def _checkpoint_dir(path: str | os.PathLike[str]) -> Path:
    """The checkpoint folder: ``path`` itself, or its parent when given one of the two files."""
    path = Path(path)
    if path.is_file() and path.name in (WEIGHTS, CONFIG):
        path = path.parent
    if not path.is_dir():
        raise CheckpointError(
            f"{path}: checkpoint folder not found; expected a folder with {CONFIG} and {WEIGHTS}"
        )
    return path
