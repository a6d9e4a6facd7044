"""The base class of every suite estimator: scikit-learn's API, one device policy, one save/load.

A suite estimator (a detector, a forecaster, a generator) subclasses :class:`SuiteEstimator` and gets:

- scikit-learn behaviour from ``sklearn.base.BaseEstimator``: ``get_params`` / ``set_params`` read the
  ``__init__`` signature, ``sklearn.base.clone`` works, and an unfitted estimator raises
  ``sklearn.exceptions.NotFittedError`` through :meth:`_check_fitted`. As in scikit-learn, ``__init__``
  only stores its arguments; fitted attributes end in ``_``; ``fit`` returns ``self``.
- the device policy in one place: ``device="auto"`` (CUDA when present, else the CPU), inputs moved to
  the model's device with :meth:`_tensor`, results brought back to NumPy with :func:`to_numpy`.
- one persistence format: :meth:`save` writes the main network (``model_``) with the core's
  safetensors + JSON checkpoint and the estimator's fitted numbers as JSON (``extra.state``), plus any
  arrays in safetensors files; :meth:`load` rebuilds it. Each class has one ``state_version``; a
  checkpoint from a newer version, or from an older one below ``min_state_version``, is refused with a
  message that says what to do. Nothing is ever unpickled.

Subclasses implement ``fit`` and their prediction methods, and for persistence
``_get_state() -> dict`` (JSON-ready numbers) and ``_set_state(state, directory)``; arrays too large for
JSON go through :meth:`_save_arrays` / :meth:`_load_arrays`.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from genforge.checkpoints import CheckpointError
from genforge.registry import json_ready


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """A tensor on any device as a NumPy array (detached, on the CPU)."""
    return tensor.detach().cpu().numpy()


@dataclass
class Example:
    """A tiny, quick configuration of an estimator on embedded data (never downloads).

    The suite contract test fits it, clones it and checks that ``probe`` (a deterministic output of the
    fitted estimator, e.g. ``lambda est: est.score_samples(beats)``) is the same after a save/load round
    trip; ``benchmarks/gpu_check.py`` fits and probes it on a GPU.
    """

    params: dict[str, Any]
    fit_args: tuple[Any, ...]
    probe: Callable[[Any], Any]
    fit_kwargs: dict[str, Any] = field(default_factory=dict)


class SuiteEstimator(BaseEstimator):
    """Base of every suite estimator (see the module docstring)."""

    state_version: ClassVar[int] = 1
    min_state_version: ClassVar[int] = 1
    # other values of ``extra.estimator`` this class reads (names older checkpoints were written under)
    checkpoint_names: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def example(cls) -> Example:
        """A configuration that fits in seconds on embedded data (for the contract test and gpu_check)."""
        raise NotImplementedError(f"{cls.__name__}.example() is not defined")

    # ------------------------------------------------------------------ fitted state
    def __sklearn_is_fitted__(self) -> bool:
        return getattr(self, "model_", None) is not None

    def _check_fitted(self) -> None:
        """Raise ``NotFittedError`` (scikit-learn's) naming what to call first."""
        name = type(self).__name__
        check_is_fitted(self, msg=f"This {name} is not fitted yet: call fit(...) or {name}.load(dir).")

    # ------------------------------------------------------------------ devices
    def _device(self) -> torch.device:
        """Where the model lives once fitted; before that, the device ``self.device`` asks for."""
        model = getattr(self, "model_", None)
        if model is not None:
            for tensor in model.parameters():
                return tensor.device
        from genforge.devices import pick_device

        return pick_device(getattr(self, "device", "auto"))

    def _tensor(self, array: Any, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``array`` as a tensor on the model's device."""
        return torch.as_tensor(np.asarray(array), dtype=dtype).to(self._device())

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> dict[str, Any]:
        """Fitted numbers other than the network weights, as JSON-ready data."""
        return {}

    def _set_state(self, state: dict[str, Any], directory: Path) -> None:
        """Restore what :meth:`_get_state` returned (and any arrays saved beside the model)."""

    @classmethod
    def _upgrade(cls, version: int, extra: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """(params, state) of a checkpoint written at ``version`` (override to read older versions)."""
        return dict(extra.get("params") or {}), dict(extra.get("state") or {})

    @classmethod
    def _checkpoint_estimator(cls, extra: dict[str, Any]) -> str | None:
        """The estimator class a checkpoint's ``extra`` names (override to recognise an older layout
        that named it otherwise; such a checkpoint has no ``state_version`` and is read as version 1)."""
        return extra.get("estimator")

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the estimator to ``directory``: ``model.safetensors`` + ``config.json`` (+ array files)."""
        import genforge

        self._check_fitted()
        extra = {
            "estimator": type(self).__name__,
            "state_version": type(self).state_version,
            "params": json_ready(self.get_params(deep=False)),
            "state": json_ready(self._get_state()),
        }
        out = genforge.save(self.model_, directory, extra=extra)
        self._save_files(Path(directory))
        return out

    def _save_files(self, directory: Path) -> None:
        """Write files beside the checkpoint (default: nothing)."""

    @classmethod
    def load(cls, directory: str | os.PathLike[str], device: str | None = None) -> Any:
        """Rebuild an estimator written by :meth:`save`; ``device`` overrides the saved choice."""
        import genforge
        from genforge.checkpoints import load_extra

        directory = Path(directory)
        extra = load_extra(directory)
        name = cls._checkpoint_estimator(extra)
        if name != cls.__name__ and name not in cls.checkpoint_names:
            raise CheckpointError(
                f"{directory}: field 'extra.estimator' is {name!r}; expected a {cls.__name__} checkpoint"
            )
        version = int(extra.get("state_version", 1))
        if version > cls.state_version:
            raise CheckpointError(
                f"{directory}: state version {version} was written by a newer genforge (this one reads "
                f"{cls.min_state_version}..{cls.state_version}); upgrade genforge"
            )
        if version < cls.min_state_version:
            raise CheckpointError(
                f"{directory}: state version {version} is no longer read (this genforge reads "
                f"{cls.min_state_version}..{cls.state_version}); fit and save the {cls.__name__} again"
            )
        params, state = cls._upgrade(version, extra)
        params = _params_from_json(cls, params)
        if device is not None:
            params["device"] = device
        est = cls(**params)
        est.model_ = genforge.load(directory, device=est._device()).eval()
        est._set_state(state, directory)
        return est

    # ------------------------------------------------------------------ array files
    @staticmethod
    def _save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
        """Write NumPy arrays to a safetensors file, atomically."""
        from safetensors.numpy import save_file

        from genforge.io import atomic_path

        with atomic_path(path) as tmp:
            save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(tmp))

    @staticmethod
    def _load_arrays(path: Path) -> dict[str, np.ndarray]:
        """Read a safetensors file of arrays; a missing or corrupt file is a ``CheckpointError``."""
        from safetensors.numpy import load_file

        if not path.is_file():
            raise CheckpointError(f"{path}: missing; save the estimator again")
        try:
            return load_file(str(path))
        except Exception as exc:  # safetensors raises its own error types for every kind of bad file
            raise CheckpointError(f"{path}: truncated or corrupt safetensors file ({exc})") from None


def _params_from_json(cls: type, params: dict[str, Any]) -> dict[str, Any]:
    """Constructor arguments from JSON: unknown names dropped, lists back to tuples where declared."""
    signature = inspect.signature(cls.__init__)
    out = {}
    for name, value in params.items():
        parameter = signature.parameters.get(name)
        if parameter is None:
            continue
        wants_tuple = isinstance(parameter.default, tuple) or "tuple" in str(parameter.annotation)
        if isinstance(value, list) and wants_tuple:
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        out[name] = value
    return out
