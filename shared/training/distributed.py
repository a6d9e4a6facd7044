"""Helpers for ``torchrun`` runs: who am I, split work, wait for the others, sum gradients.

Outside ``torchrun`` (no WORLD_SIZE, or WORLD_SIZE=1) everything degrades to a single process:
``world_size() == 1``, ``rank() == 0``, ``barrier()`` does nothing. ``init()`` creates the process
group from torchrun's environment variables (NCCL when CUDA is used, Gloo on the CPU) and
registers ``cleanup()`` to run at exit.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Iterable, Sequence
from typing import Any

import torch
import torch.distributed as dist


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    """Number of processes in the job (1 outside torchrun)."""
    return dist.get_world_size() if is_initialized() else max(1, _env_int("WORLD_SIZE", 1))


def rank() -> int:
    """This process's global rank (0 outside torchrun)."""
    return dist.get_rank() if is_initialized() else _env_int("RANK", 0)


def local_rank() -> int:
    """This process's rank on its machine (picks the CUDA device)."""
    return _env_int("LOCAL_RANK", 0)


def is_main() -> bool:
    """True on rank 0, the only process that writes files."""
    return rank() == 0


def shard(items: Sequence[Any]) -> Sequence[Any]:
    """This rank's share of ``items``: ``items[rank::world_size]``."""
    return items[rank() :: world_size()]


def init(device: torch.device | None = None) -> bool:
    """Create the process group from torchrun's env vars if WORLD_SIZE > 1; True when distributed."""
    if world_size() <= 1:
        return False
    if is_initialized():
        return True
    use_cuda = (device is None or device.type == "cuda") and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(local_rank())
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    atexit.register(cleanup)
    return True


def cleanup() -> None:
    """Destroy the process group (safe to call twice or when none exists)."""
    if is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for every rank (no-op when not distributed)."""
    if is_initialized() and dist.get_world_size() > 1:
        dist.barrier()


def gather_to_main(obj: Any) -> list[Any] | None:
    """Every rank's ``obj`` (small, picklable) as a list by rank on rank 0, ``None`` on the others;
    ``[obj]`` when not distributed. Used to checkpoint per-rank state such as RNG streams."""
    if not is_initialized() or dist.get_world_size() == 1:
        return [obj]
    out: list[Any] | None = [None] * dist.get_world_size() if dist.get_rank() == 0 else None
    dist.gather_object(obj, out, dst=0)
    return out


def all_reduce_mean(tensors: Iterable[torch.Tensor]) -> None:
    """Average ``tensors`` across ranks in place, with one collective over a flat buffer."""
    tensors = list(tensors)
    if not tensors or not is_initialized() or dist.get_world_size() == 1:
        return
    flat = torch.cat([t.reshape(-1).float() for t in tensors])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for t in tensors:
        n = t.numel()
        t.copy_(flat[offset : offset + n].view_as(t))
        offset += n


def all_reduce_sum(values: Sequence[float], device: torch.device) -> list[float]:
    """Sum a few floats across ranks (used for validation losses)."""
    t = torch.tensor(
        list(values), dtype=torch.float64 if device.type != "mps" else torch.float32, device=device
    )
    if is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(t)
    return t.tolist()


def broadcast_module(module: torch.nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every rank (so all start identical)."""
    if not is_initialized() or dist.get_world_size() == 1:
        return
    with torch.no_grad():
        for tensor in module.state_dict().values():
            dist.broadcast(tensor, src=0)


def broadcast_buffers(module: torch.nn.Module) -> None:
    """Copy rank 0's buffers (e.g. batch-norm statistics) to every rank, as DDP does before a forward."""
    if not is_initialized() or dist.get_world_size() == 1:
        return
    with torch.no_grad():
        for buffer in module.buffers():
            dist.broadcast(buffer, src=0)
