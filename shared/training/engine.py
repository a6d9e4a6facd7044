"""One training engine for every model family.

* likelihood loop (vae, transformer, diffusion, anything with ``training_loss``): one AdamW step on
  ``training_loss(batch)["loss"]`` per step;
* adversarial loop (any model with ``discriminator_loss``, e.g. the GAN): per step ``n_critic``
  (from the model's config) discriminator updates on ``discriminator_loss`` (a fresh batch each),
  then one generator update on ``generator_loss`` (reusing the last batch, for its size and
  conditioning); two Adam optimizers (``lr``, ``lr_d``).

Around the loops: device and bf16 autocast policy (:mod:`genforge.devices`), gradient clipping, an
optional EMA of the weights (validated on, copied in at the end), constant or cosine learning rate
with linear warm-up, validation every ``val_every`` steps with early stopping that restores the best
weights, a progress bar (also shown in log files: :mod:`genforge.training.progress`), a history of
averaged loss terms, and resumable checkpoints in ``out_dir``.

Data order is a pure function of ``(seed, epoch, position)``: each epoch is shuffled by a
DistributedSampler seeded with ``seed`` and the epoch number, so a resumed run skips exactly the
batches it had consumed and sees the same batches an uninterrupted run would.

Distributed (torchrun, WORLD_SIZE > 1): likelihood models are wrapped in DistributedDataParallel
through a tiny module whose ``forward`` calls ``training_loss`` (so DDP averages gradients during
backward). GANs call ``discriminator_loss`` / ``generator_loss`` on the model, which use the
generator and discriminator inside in ways DDP's forward hook cannot see, so for them the engine
averages each player's gradients itself after ``backward`` (one all-reduce over a flat buffer),
broadcasts rank 0's weights at the start and rank 0's buffers (batch-norm statistics) after every
step: what DDP does. Validation is sharded over ranks and its sums all-reduced, so every rank makes
the same early-stopping decision. Only rank 0 writes files; every rank reads the trainer state on
resume (a shared file system is assumed). Every rank's RNG state is saved (gathered to rank 0), so a
resumed run continues each rank's random stream where it stopped: on the CPU a resumed multi-rank run
is bitwise the same as an uninterrupted one (tested under torchrun with Gloo), as a single process is.

Resume: ``out_dir/trainer_state.safetensors`` holds, in one atomically replaced file, the live
weights, optimizer and EMA state, best weights, RNG states, counters and history (no pickle:
:mod:`genforge.training.state`). ``model.safetensors`` + ``config.json`` beside it hold the weights a
user should get (EMA when kept; at the end the best validated weights), loadable by
``genforge.load``.
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler, Subset, TensorDataset

from genforge import checkpoints
from genforge.devices import autocast, autocast_dtype, pick_device, seed_everything
from genforge.errors import ConfigError, DataError, GenforgeError
from genforge.training import distributed as dist_utils
from genforge.training.ema import EMA
from genforge.training.progress import progress_bar
from genforge.training.state import read_trainer_state, write_trainer_state

STATE_FILE = "trainer_state.safetensors"
SCHEDULES = ("constant", "cosine", "linear")
OPTIMIZERS = ("adamw", "muon")


@dataclass
class TrainConfig:
    """Everything the engine needs; the defaults suit small models on a CPU."""

    max_steps: int = 1000
    epochs: int | None = None  # when set, overrides max_steps (GAN: batches / n_critic per epoch)
    batch_size: int = 64
    lr: float = 2e-4
    lr_d: float | None = None  # discriminator learning rate (GAN); None = lr
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    grad_clip: float | None = 1.0
    ema_decay: float | None = None
    lr_schedule: str = "constant"  # "constant" | "cosine" | "linear" (both to zero at the last step)
    warmup_steps: int = 0
    # "adamw" (every parameter) | "muon": torch.optim.Muon (lr ``muon_lr``, momentum ``muon_momentum``) on
    # the 2-D weights of nn.Linear layers that are not an embedding (a tied head stays with AdamW), AdamW
    # (``lr``) on the rest, as modded-nanogpt; not on the adversarial (GAN) path. The schedule scales both.
    optimizer: str = "adamw"
    muon_lr: float = 0.02
    muon_momentum: float = 0.95
    val_every: int | None = 200  # also validated once at the end when val_data is given
    patience: int | None = None  # early stopping: validations without improvement
    seed: int = 0
    out_dir: str | Path | None = None
    checkpoint_every: int | None = None  # plus one checkpoint at the end whenever out_dir is set
    checkpoint_seconds: float | None = None  # also checkpoint once this much training time has passed
    resume: bool = True
    progress: bool = True
    device: str = "auto"
    precision: str = "auto"  # "auto" (bf16 autocast on CUDA) | "fp32" | "bf16"
    num_workers: int = 0
    drop_last: bool = True

    def __post_init__(self) -> None:
        _check_config(self)


@dataclass
class TrainResult:
    """What ``fit`` returns; the model itself is trained in place.

    ``history`` has one row every ``max(1, min(100, total_steps // 100))`` steps and at every
    validation, checkpoint and the last step: ``step``, ``lr`` and the mean of each scalar loss term
    since the previous row (GAN terms prefixed ``d_`` / ``g_``), plus ``val_loss`` where validated.
    """

    history: list[dict[str, float]] = field(default_factory=list)
    best_val_loss: float | None = None
    steps: int = 0
    seconds: float = 0.0
    stopped_early: bool = False


def _check_config(cfg: TrainConfig) -> None:
    def positive(name: str, allow_none: bool = False) -> None:
        value = getattr(cfg, name)
        if value is None and allow_none:
            return
        if not isinstance(value, int | float) or value <= 0:
            raise ConfigError(f"TrainConfig.{name}={value!r}: expected a positive number")

    positive("batch_size")
    positive("lr")
    positive("lr_d", allow_none=True)
    positive("epochs", allow_none=True)
    positive("checkpoint_seconds", allow_none=True)
    if cfg.epochs is None:
        positive("max_steps")
    positive("muon_lr")
    if cfg.optimizer not in OPTIMIZERS:
        raise ConfigError(f"TrainConfig.optimizer={cfg.optimizer!r}: expected one of {', '.join(OPTIMIZERS)}")
    if not 0.0 <= cfg.muon_momentum < 1.0:
        raise ConfigError(f"TrainConfig.muon_momentum={cfg.muon_momentum!r}: expected a number in [0, 1)")
    if cfg.lr_schedule not in SCHEDULES:
        raise ConfigError(
            f"TrainConfig.lr_schedule={cfg.lr_schedule!r}: expected one of {', '.join(SCHEDULES)}"
        )
    if cfg.ema_decay is not None and not 0.0 < cfg.ema_decay < 1.0:
        raise ConfigError(f"TrainConfig.ema_decay={cfg.ema_decay!r}: expected a number in (0, 1)")
    if cfg.patience is not None and cfg.patience < 1:
        raise ConfigError(f"TrainConfig.patience={cfg.patience!r}: expected a positive integer or None")
    if cfg.warmup_steps < 0:
        raise ConfigError(f"TrainConfig.warmup_steps={cfg.warmup_steps!r}: expected 0 or more")
    autocast_dtype(torch.device("cpu"), cfg.precision)  # validates the name


# --------------------------------------------------------------------------------------------- data


def as_dataset(data: Any, name: str) -> Dataset:
    """A Dataset from a Dataset, a Tensor / ndarray, or a tuple of them (x, or x and cond)."""
    if isinstance(data, np.ndarray):
        data = torch.from_numpy(data)
    if isinstance(data, torch.Tensor):
        data = (data,)
    if isinstance(data, tuple | list):
        tensors = [torch.from_numpy(t) if isinstance(t, np.ndarray) else t for t in data]
        if not tensors or not all(isinstance(t, torch.Tensor) for t in tensors):
            raise DataError(f"{name}: expected a Dataset, a Tensor or a tuple of Tensors")
        sizes = {len(t) for t in tensors}
        if len(sizes) != 1:
            raise DataError(
                f"{name}: tensors have different first dimensions {sorted(sizes)}; expected equal"
            )
        data = TensorDataset(*tensors)
    if not isinstance(data, Dataset):
        raise DataError(
            f"{name}: got {type(data).__name__}; expected a Dataset, a Tensor or a tuple of Tensors"
        )
    if len(data) == 0:  # type: ignore[arg-type]
        raise DataError(f"{name}: the dataset is empty")
    return data


def _unwrap(batch: Any) -> Any:
    """TensorDataset yields lists: a 1-list becomes the tensor, longer lists become tuples."""
    if isinstance(batch, list | tuple):
        return batch[0] if len(batch) == 1 else tuple(batch)
    return batch


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, tuple | list):
        return type(batch)(_to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    return batch


def _batch_len(batch: Any) -> int:
    first = batch[0] if isinstance(batch, tuple | list) else batch
    return len(first) if hasattr(first, "__len__") else 1


class _Skip(Sampler[int]):
    """The indices of ``sampler`` after the first ``skip`` (to resume mid-epoch)."""

    def __init__(self, sampler: Sampler[int], skip: int) -> None:
        self.sampler, self.skip = sampler, skip

    def __iter__(self) -> Iterator[int]:
        it = iter(self.sampler)
        for _ in range(self.skip):
            next(it, None)
        return it

    def __len__(self) -> int:
        return max(0, len(self.sampler) - self.skip)  # type: ignore[arg-type]


class BatchStream:
    """An endless, resumable stream of shuffled training batches for this rank."""

    def __init__(self, dataset: Dataset, cfg: TrainConfig, device: torch.device, consumed: int = 0) -> None:
        self.dataset, self.cfg, self.device = dataset, cfg, device
        self.sampler = DistributedSampler(
            dataset, num_replicas=dist_utils.world_size(), rank=dist_utils.rank(), shuffle=True, seed=cfg.seed
        )
        n = len(self.sampler)
        self.per_epoch = n // cfg.batch_size if cfg.drop_last else math.ceil(n / cfg.batch_size)
        if self.per_epoch == 0:
            raise DataError(
                f"train_data: {len(dataset)} samples give no full batch of batch_size={cfg.batch_size} "  # type: ignore[arg-type]
                f"per process; expected at least batch_size samples (or drop_last=False)"
            )
        self.consumed = consumed
        self._it: Iterator[Any] | None = None
        self._left = 0

    def _start_epoch(self) -> None:
        epoch, offset = divmod(self.consumed, self.per_epoch)
        self.sampler.set_epoch(epoch)
        loader = DataLoader(
            self.dataset,
            batch_size=self.cfg.batch_size,
            sampler=_Skip(self.sampler, offset * self.cfg.batch_size),
            drop_last=self.cfg.drop_last,
            num_workers=self.cfg.num_workers,
            pin_memory=self.device.type == "cuda",
            generator=torch.Generator().manual_seed(self.cfg.seed + 1000 * epoch),
        )
        self._it, self._left = iter(loader), self.per_epoch - offset

    def next(self) -> Any:
        if self._it is None:
            self._start_epoch()
        assert self._it is not None
        batch = next(self._it)
        self.consumed += 1
        self._left -= 1
        if self._left <= 0:
            self._it = None
        return _to_device(_unwrap(batch), self.device)


# ------------------------------------------------------------------------------------------ helpers


class _LossModule(nn.Module):
    """Lets DDP drive ``training_loss``: DDP only hooks ``forward``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: Any) -> dict[str, torch.Tensor]:
        return self.model.training_loss(batch)


def _muon_params(model: nn.Module) -> list[nn.Parameter]:
    """The hidden matrices Muon updates: 2-D weights of nn.Linear layers that are no embedding's weight."""
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    return [
        m.weight
        for m in model.modules()
        if isinstance(m, nn.Linear) and m.weight.requires_grad and id(m.weight) not in embeddings
    ]


def _likelihood_optimizers(
    model: nn.Module, cfg: TrainConfig
) -> tuple[list[torch.optim.Optimizer], list[float]]:
    """AdamW alone, or (optimizer "muon") AdamW on the rest and Muon on the hidden matrices; base lrs."""
    if cfg.optimizer != "muon":
        return [_adamw(model, cfg)], [cfg.lr]
    hidden = _muon_params(model)
    if not hidden:
        raise ConfigError("TrainConfig.optimizer='muon': the model has no nn.Linear weights for Muon")
    skip = {id(p) for p in hidden}
    muon = torch.optim.Muon(hidden, lr=cfg.muon_lr, weight_decay=cfg.weight_decay, momentum=cfg.muon_momentum)
    return [_adamw(model, cfg, skip), muon], [cfg.lr, cfg.muon_lr]


def _adamw(model: nn.Module, cfg: TrainConfig, skip: set[int] | None = None) -> torch.optim.Optimizer:
    """AdamW; weight decay only on matrices/kernels (not biases, norms), as is usual."""
    params = [p for p in _trainable(model) if id(p) not in (skip or set())]
    decay = [p for p in params if p.ndim >= 2]
    other = [p for p in params if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": other, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.lr, betas=tuple(cfg.betas))


def _adam(params: list[nn.Parameter], lr: float, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam for one GAN player."""
    return torch.optim.Adam(params, lr=lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)


def _trainable(module: nn.Module) -> list[nn.Parameter]:
    return [p for p in module.parameters() if p.requires_grad]


def _check_model(model: nn.Module, adversarial: bool) -> None:
    """The methods each loop calls must exist (a clear error instead of an AttributeError mid-run)."""
    needed = (
        ("generator", "discriminator", "generator_loss", "discriminator_loss")
        if adversarial
        else ("training_loss",)
    )
    missing = [name for name in needed if not hasattr(model, name)]
    if missing:
        family = getattr(model, "family", None)
        raise GenforgeError(
            f"{type(model).__name__} (family {family!r}): missing .{missing[0]}; see genforge.models"
        )
    if not _trainable(model):
        raise GenforgeError(f"{type(model).__name__}: the model has no trainable parameters")


def _lr_factor(step: int, total: int, cfg: TrainConfig) -> float:
    """Multiplier of the base learning rate for 0-based update ``step``."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.lr_schedule == "cosine":
        progress = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    if cfg.lr_schedule == "linear":
        return 1.0 - min(1.0, (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps))
    return 1.0


def _sync_grads(params: list[nn.Parameter]) -> None:
    """Average gradients across ranks (GAN path); missing grads count as zeros so layouts match."""
    if dist_utils.world_size() <= 1:
        return
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    dist_utils.all_reduce_mean([p.grad for p in params])


def _cpu_copy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}


def _rng_state(device: torch.device) -> dict[str, Any]:
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


# ------------------------------------------------------------------------------------------ trainer


class Trainer:
    """``Trainer(TrainConfig(...)).fit(model, train_data, val_data=None) -> TrainResult``.

    Keyword overrides are applied on top of the config: ``Trainer(cfg, max_steps=10)``.
    """

    def __init__(self, config: TrainConfig | None = None, **overrides: Any) -> None:
        self.config = dataclasses.replace(config or TrainConfig(), **overrides)  # validated in __post_init__

    def fit(self, model: nn.Module, train_data: Any, val_data: Any = None) -> TrainResult:
        """Train ``model`` in place (resuming from ``out_dir`` when asked) and return the result."""
        return _Run(self.config, model, train_data, val_data).train()


class _Run:
    """The state of one ``fit``: model, data stream, optimizers, EMA, counters, history."""

    def __init__(self, cfg: TrainConfig, model: nn.Module, train_data: Any, val_data: Any) -> None:
        self.cfg, self.model = cfg, model
        self.started = time.perf_counter()
        self.last_checkpoint = time.monotonic()
        device = pick_device(cfg.device)
        self.distributed = dist_utils.init(device)
        if self.distributed and device.type == "cuda":
            device = torch.device("cuda", dist_utils.local_rank())
        if device.type == "cuda":
            torch.set_float32_matmul_precision("high")
        self.device, self.rank, self.main = device, dist_utils.rank(), dist_utils.is_main()
        seed_everything(cfg.seed + self.rank)

        # The loop follows what the model can do, not its family name: a suite's own adversarial model
        # only has to offer discriminator_loss / generator_loss.
        self.adversarial = hasattr(model, "discriminator_loss")
        _check_model(model, self.adversarial)
        n_critic = getattr(getattr(model, "config", None), "n_critic", 1)
        self.n_critic = max(1, int(n_critic)) if self.adversarial else 1
        model.to(device).train()

        self.stream = BatchStream(as_dataset(train_data, "train_data"), cfg, device)
        self.val_set = as_dataset(val_data, "val_data") if val_data is not None else None
        self.can_validate = self.val_set is not None and hasattr(model, "training_loss")
        per_epoch = self.stream.per_epoch // self.n_critic
        self.total = cfg.max_steps if cfg.epochs is None else max(1, cfg.epochs * per_epoch)

        if self.adversarial:
            self.players = [_trainable(model.generator), _trainable(model.discriminator)]
            self.base_lrs = [cfg.lr, cfg.lr_d or cfg.lr]
            self.optimizers = [_adam(p, lr, cfg) for p, lr in zip(self.players, self.base_lrs, strict=True)]
        else:
            self.players = [_trainable(model)]
            self.optimizers, self.base_lrs = _likelihood_optimizers(model, cfg)
        self.ema = EMA(model, cfg.ema_decay) if cfg.ema_decay else None

        self.step, self.history = 0, []
        self.best_val: float | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.bad_validations, self.stopped = 0, False
        self.out_dir = Path(cfg.out_dir) if cfg.out_dir is not None else None
        if self.out_dir is not None and cfg.resume and (self.out_dir / STATE_FILE).is_file():
            self._restore(self.out_dir / STATE_FILE)

        self.ddp: nn.Module | None = None
        if self.distributed:
            dist_utils.broadcast_module(model)  # every rank starts from rank 0's weights
            if not self.adversarial:
                self.ddp = DistributedDataParallel(
                    _LossModule(model),
                    device_ids=[device.index] if device.type == "cuda" else None,
                    find_unused_parameters=True,  # safe for models that skip a branch on some batches
                )

    # ------------------------------------------------------------------------------- the loop

    def train(self) -> TrainResult:
        cfg = self.cfg
        log_every = max(1, min(100, self.total // 100))
        sums: dict[str, torch.Tensor] = {}
        n_summed = 0
        name = getattr(type(self.model), "registry_name", type(self.model).__name__)
        bar = progress_bar(self.total, f"train {name}", enabled=cfg.progress and self.main, initial=self.step)
        try:
            while self.step < self.total and not self.stopped:
                terms = self._adversarial_step() if self.adversarial else self._likelihood_step()
                if self.ema is not None:
                    self.ema.update(self.model)
                self.step += 1
                bar.update(1)
                for key, value in terms.items():
                    if isinstance(value, int | float):
                        value = torch.tensor(float(value))
                    if isinstance(value, torch.Tensor) and value.numel() == 1:
                        value = value.detach().float().reshape(())
                        sums[key] = sums[key] + value if key in sums else value
                n_summed += 1

                last = self.step == self.total
                validate = self.can_validate and (
                    last or bool(cfg.val_every and self.step % cfg.val_every == 0)
                )
                checkpoint = self.out_dir is not None and (
                    bool(cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0)
                    or self._checkpoint_due()
                )
                if self.step % log_every == 0 or last or validate or checkpoint:
                    entry = self._entry(sums, n_summed)
                    sums, n_summed = {}, 0
                    if validate:
                        entry["val_loss"] = self._validate()
                    self.history.append(entry)
                    bar.set_postfix(
                        {k: f"{v:.4g}" for k, v in entry.items() if k.endswith("loss")}, refresh=False
                    )
                if checkpoint and not last and not self.stopped:
                    self._save_state()
                    self._save_model(final=False)
                    self.last_checkpoint = time.monotonic()
        finally:
            bar.close()
        return self._finish()

    def _checkpoint_due(self) -> bool:
        """``checkpoint_seconds`` of training since the last checkpoint (rank 0's clock decides for all).

        Under DDP the ranks agree through one small all-reduce every 10 steps, so a crash loses at most
        ``checkpoint_seconds`` plus ten steps.
        """
        seconds = self.cfg.checkpoint_seconds
        if not seconds:
            return False
        if not self.distributed:
            return time.monotonic() - self.last_checkpoint >= seconds
        if self.step % 10:
            return False
        due = float(self.main and time.monotonic() - self.last_checkpoint >= seconds)
        return dist_utils.all_reduce_sum([due], self.device)[0] > 0

    def _likelihood_step(self) -> dict[str, torch.Tensor]:
        self._set_lr()
        batch = self.stream.next()
        with autocast(self.device, self.cfg.precision):
            out = self.ddp(batch) if self.ddp is not None else self.model.training_loss(batch)
        self._update(out["loss"], 0)
        return out

    def _adversarial_step(self) -> dict[str, torch.Tensor]:
        """n_critic discriminator updates (a fresh batch each), then one generator update."""
        self._set_lr()
        for _ in range(self.n_critic):
            batch = self.stream.next()
            with autocast(self.device, self.cfg.precision):
                d_out = self.model.discriminator_loss(batch)
            self._update(d_out["loss"], 1)
        with autocast(self.device, self.cfg.precision):
            g_out = self.model.generator_loss(batch)
        self._update(g_out["loss"], 0)
        if self.distributed:
            dist_utils.broadcast_buffers(self.model)  # keep batch-norm statistics identical, as DDP does
        return {**{f"d_{k}": v for k, v in d_out.items()}, **{f"g_{k}": v for k, v in g_out.items()}}

    def _set_lr(self) -> None:
        factor = _lr_factor(self.step, self.total, self.cfg)
        for opt, base in zip(self.optimizers, self.base_lrs, strict=True):
            for group in opt.param_groups:
                group["lr"] = base * factor

    def _update(self, loss: torch.Tensor, player: int) -> None:
        """Backward, gradient averaging across ranks (GAN path), clipping, optimizer step."""
        params = self.players[player]
        # the likelihood path may hold two optimizers (AdamW + Muon) over one parameter list
        opts = [self.optimizers[player]] if self.adversarial else self.optimizers
        for opt in opts:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.adversarial:
            _sync_grads(params)
        if self.cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
        for opt in opts:
            opt.step()

    def _entry(self, sums: dict[str, torch.Tensor], n: int) -> dict[str, float]:
        """A history row: step, lr and the mean of each logged term since the previous row."""
        entry: dict[str, float] = {"step": self.step, "lr": self.optimizers[0].param_groups[0]["lr"]}
        entry.update({k: float(v) / max(n, 1) for k, v in sums.items()})
        bad = [k for k, v in entry.items() if not math.isfinite(v)]
        if bad:
            raise GenforgeError(
                f"training diverged: {bad[0]} is {entry[bad[0]]} at step {self.step}; "
                f"expected finite losses (try a lower lr or grad_clip)"
            )
        return entry

    # ------------------------------------------------------------------------- validation

    def _validate(self) -> float:
        """Validation loss (of the EMA weights when kept); tracks the best weights and early stopping."""
        if self.ema is not None:
            with self.ema.swapped(self.model):
                val_loss = self._evaluate()
        else:
            val_loss = self._evaluate()
        if self.best_val is None or val_loss < self.best_val:
            self.best_val, self.bad_validations = val_loss, 0
            self.best_state = _cpu_copy(self._served_weights())
        else:
            self.bad_validations += 1
            self.stopped = self.cfg.patience is not None and self.bad_validations >= self.cfg.patience
        return val_loss

    def _evaluate(self) -> float:
        """Mean ``training_loss`` "loss" over all of val_data (sharded over ranks, then summed)."""
        assert self.val_set is not None
        indices = list(range(len(self.val_set)))[self.rank :: dist_utils.world_size()]  # type: ignore[arg-type]
        loader = DataLoader(Subset(self.val_set, indices), batch_size=self.cfg.batch_size)
        total, count = 0.0, 0
        self.model.eval()
        # A fixed seed in a forked RNG: stochastic losses (VAE, diffusion) are compared on the same
        # noise at every validation, and validating does not change the training run's random stream.
        cuda = self.device.type == "cuda"
        forked = torch.random.fork_rng(devices=[self.device.index or 0] if cuda else [])
        with forked, torch.no_grad(), autocast(self.device, self.cfg.precision):
            torch.manual_seed(self.cfg.seed + 99991 + self.rank)
            for raw in loader:
                batch = _to_device(_unwrap(raw), self.device)
                n = _batch_len(batch)
                total += float(self.model.training_loss(batch)["loss"]) * n
                count += n
        self.model.train()
        total, count = dist_utils.all_reduce_sum([total, count], self.device)
        return total / max(count, 1)

    def _served_weights(self) -> dict[str, torch.Tensor]:
        """The weights a user should get now: the EMA weights when kept, else the live ones."""
        return self.ema.state_dict() if self.ema is not None else self.model.state_dict()

    # ------------------------------------------------------------------- checkpoints, resume

    def _save_state(self) -> None:
        """Everything needed to continue, in one atomic file (written by rank 0; every rank calls it)."""
        if self.out_dir is None:
            return
        rng_by_rank = dist_utils.gather_to_main(_rng_state(self.device))  # collective: before the rank check
        if not self.main:
            return
        write_trainer_state(
            self.out_dir / STATE_FILE,
            {
                "format": "genforge-trainer",
                "step": self.step,
                "batches": self.stream.consumed,
                "history": self.history,
                "best_val_loss": self.best_val,
                "best_state": self.best_state,
                "bad_validations": self.bad_validations,
                "stopped_early": self.stopped,
                "model": self.model.state_dict(),
                "optimizers": [opt.state_dict() for opt in self.optimizers],
                "ema": self.ema.state_dict() if self.ema is not None else None,
                "rng": rng_by_rank[0],
                "rng_by_rank": rng_by_rank,
            },
        )

    def _save_model(self, final: bool) -> None:
        """``model.safetensors`` + ``config.json`` of the served weights (rank 0 only)."""
        if self.out_dir is None or not self.main:
            return
        extra = {"trainer": {"step": self.step, "final": final, "best_val_loss": self.best_val}}
        if final or self.ema is None:  # at the end the best/EMA weights are already in the model
            checkpoints.save(self.model, self.out_dir, extra=extra)
        else:
            with self.ema.swapped(self.model):
                checkpoints.save(self.model, self.out_dir, extra=extra)

    def _restore(self, path: Path) -> None:
        saved = read_trainer_state(path)
        try:
            self.model.load_state_dict(saved["model"])
            for opt, opt_state in zip(self.optimizers, saved["optimizers"], strict=True):
                opt.load_state_dict(opt_state)
            if self.ema is not None and saved.get("ema") is not None:
                self.ema.load_state_dict(saved["ema"])
        except (RuntimeError, KeyError, ValueError) as exc:
            detail = " ".join(str(exc).split())[:300]
            raise checkpoints.CheckpointError(
                f"{path}: trainer state does not fit this model/config ({detail}); "
                f"use another out_dir or resume=False"
            ) from None
        self.step, self.history = int(saved["step"]), list(saved["history"])
        self.stream.consumed = int(saved["batches"])
        self.best_val, self.best_state = saved.get("best_val_loss"), saved.get("best_state")
        self.bad_validations, self.stopped = int(saved["bad_validations"]), bool(saved["stopped_early"])
        by_rank = saved.get("rng_by_rank")
        if by_rank is not None and len(by_rank) == dist_utils.world_size():
            _set_rng_state(by_rank[self.rank], self.device)
        elif self.rank == 0:
            _set_rng_state(saved["rng"], self.device)
        else:  # saved by another world size (or before per-rank states): a fresh, step-dependent stream
            seed_everything(self.cfg.seed + self.rank + 7919 * self.step)

    def _finish(self) -> TrainResult:
        """Save the resumable state, put the best (or EMA) weights in, write the model, sync ranks."""
        self._save_state()  # live weights + optimizers: a rerun with resume=True just finishes
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        elif self.ema is not None:
            self.ema.copy_to(self.model)
        self._save_model(final=True)
        dist_utils.barrier()  # when fit returns on any rank, the checkpoint is complete
        self.model.train()
        return TrainResult(
            history=self.history,
            best_val_loss=self.best_val,
            steps=self.step,
            seconds=time.perf_counter() - self.started,
            stopped_early=self.stopped,
        )
