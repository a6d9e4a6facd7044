"""Name -> model class registry, so a checkpoint's JSON config can rebuild any model without pickle.

Every core model class registers itself under a stable name (``@register_model("vae")``). A
checkpoint stores that name and the model's dataclass config as plain JSON; ``build_model`` turns
them back into a module. Suites may register their own ``nn.Module`` subclasses the same way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

_MODELS: dict[str, type] = {}


def register_model(name: str) -> Callable[[type], type]:
    """Class decorator: make ``cls`` rebuildable from ``(name, config dict)``.

    The class must define ``config_class`` (a dataclass) and take an instance of it as the only
    positional argument of ``__init__``, keeping it as ``self.config``.
    """

    def decorate(cls: type) -> type:
        if name in _MODELS and _MODELS[name] is not cls:
            raise ValueError(f"model name {name!r} is already registered to {_MODELS[name].__qualname__}")
        if not dataclasses.is_dataclass(getattr(cls, "config_class", None)):
            raise TypeError(f"{cls.__qualname__} needs a dataclass `config_class` to be registered")
        cls.registry_name = name
        _MODELS[name] = cls
        return cls

    return decorate


def registered_models() -> dict[str, type]:
    """A copy of the registry: name -> class."""
    return dict(_MODELS)


def model_class(name: str) -> type:
    """The class registered under ``name``; a clear error lists the known names."""
    try:
        return _MODELS[name]
    except KeyError:
        known = ", ".join(sorted(_MODELS)) or "none"
        raise KeyError(f"unknown model type {name!r}; known: {known}") from None


def config_to_dict(config: Any) -> dict[str, Any]:
    """A dataclass config as JSON-ready data (tuples become lists)."""
    return json_ready(dataclasses.asdict(config))


def json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    return value


def config_from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild ``cls.config_class`` from JSON data; unknown keys are an error, not silently dropped."""
    config_class = cls.config_class
    names = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"config for {cls.registry_name!r} has unknown field(s): {', '.join(unknown)}")
    kwargs = {}
    for field in dataclasses.fields(config_class):
        if field.name in data:
            value = data[field.name]
            if isinstance(value, list) and "tuple" in str(field.type):
                value = tuple(value)
            kwargs[field.name] = value
    return config_class(**kwargs)


def build_model(name: str, config: dict[str, Any]) -> Any:
    """Instantiate the registered class ``name`` from a config dict."""
    cls = model_class(name)
    return cls(config_from_dict(cls, config))
