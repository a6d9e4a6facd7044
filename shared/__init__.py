"""genforge: the four families of generative models (VAE, GAN, transformer, diffusion) at work
for industries. This package is the shared model core; the industry suites live in
``genforge.<suite>`` (ecg, finance, ...) and the Streamlit app in ``genforge.dashboards``.

Public names are imported lazily so that ``import genforge`` (and the CLI's start-up) stays fast.
"""

from __future__ import annotations

from genforge.lazy import lazy_getattr

__version__ = "0.1.0"

_LAZY = {
    # checkpoints
    "save": "genforge.checkpoints",
    "load": "genforge.checkpoints",
    "CheckpointError": "genforge.checkpoints",
    # training
    "Trainer": "genforge.training",
    "TrainConfig": "genforge.training",
    "TrainResult": "genforge.training",
    # devices
    "pick_device": "genforge.devices",
    "seed_everything": "genforge.devices",
    # models
    "VAE": "genforge.models.vae",
    "VAEConfig": "genforge.models.vae",
    "GAN": "genforge.models.gan",
    "GANConfig": "genforge.models.gan",
    "GPT": "genforge.models.transformer",
    "GPTConfig": "genforge.models.transformer",
    "Diffusion": "genforge.models.diffusion",
    "DiffusionConfig": "genforge.models.diffusion",
    # registry
    "register_model": "genforge.registry",
    "build_model": "genforge.registry",
}

__all__ = ["__version__", *_LAZY]


__getattr__ = lazy_getattr("genforge", _LAZY, globals())
