"""The training engine: one Trainer for likelihood models and GANs, EMA, resumable checkpoints, DDP.

``from genforge.training import Trainer, TrainConfig, TrainResult``; see :mod:`genforge.training.engine`.
"""

from genforge.training.engine import TrainConfig, Trainer, TrainResult

__all__ = ["Trainer", "TrainConfig", "TrainResult"]
