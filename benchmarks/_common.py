"""Shared helpers for the benchmark scripts: fair timing, a printed table, a JSON result file.

These machines are shared and noisy, and the order of runs changes the answer, so every comparison
is timed *interleaved* (A, B, A, B, ...) and summarised by the median of the pairwise ratios.

API (kept small on purpose):

- ``interleave(fns, repeats, warmup=1, cpu_times=None) -> {name: [seconds, ...]}``: run each callable
  in turn, round after round, and return the wall time of every call (and, into ``cpu_times``, the
  calling thread's CPU time of every call).
- ``ratio_median(a_times, b_times) -> float``: median over rounds of ``b[i] / a[i]`` — how many times
  faster A is than B when both ran back to back in round ``i``.
- ``print_table(rows, columns)``: a plain aligned text table (rows are dicts).
- ``add_json_arg(parser)`` and ``write_json(path, data)``: the ``--json PATH`` option every benchmark
  has, written atomically through ``genforge.io``.
- ``add_threads_arg(parser)`` / ``set_threads(n)``: one torch thread by default (steady on shared
  cores), changeable with ``--threads``.
- ``environment()``: what a figure was measured with — torch's and every imported peer library's
  version, torch threads, the machine (``platform``, CPU model, CPU count), Python, the date.
  ``write_json`` adds it to every result file under ``"environment"``, so no script can forget it.
- ``check_peer_versions()``: prints one line for each imported peer library whose version differs
  from ``README_PEER_VERSIONS`` (the versions the README's figures were measured with); scripts
  call it before timing, and ``write_json`` records the differences as ``peer_version_changes``.

Import from a benchmark script run as ``python benchmarks/<name>.py`` (its folder is on ``sys.path``):
``from _common import interleave, ratio_median, print_table, add_json_arg, write_json``.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from genforge.io import write_json_atomic

# Libraries a benchmark compares against or builds on; their versions go into every result file.
PEER_LIBRARIES = ("transformers", "diffusers", "neurokit2")
# The version each README figure was measured with (update it together with the figure). A peer
# missing here (neurokit2: the ECG figure predates this record) is recorded but not compared.
README_PEER_VERSIONS: dict[str, str] = {
    "transformers": "5.25.0",  # benchmarks/generate.py, gpu_check.py
    "diffusers": "0.42.1",  # benchmarks/ddim.py, gpu_check.py
}
README_TORCH_VERSION = "2.11.0"


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    """The CPU's marketing name (from /proc/cpuinfo on Linux; ``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def peer_versions() -> dict[str, str]:
    """Versions of the peer libraries this process has imported (so: the ones it compared with)."""
    return {
        name: version
        for name in PEER_LIBRARIES
        if name in sys.modules and (version := _version(name)) is not None
    }


def environment() -> dict[str, Any]:
    """What the figures were measured with: library versions, threads, machine, date (UTC)."""
    import torch

    env: dict[str, Any] = {
        "torch": torch.__version__,
        "peers": peer_versions(),
        "threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if torch.cuda.is_available():
        env["cuda_device"] = torch.cuda.get_device_name()
        env["cuda"] = torch.version.cuda
    try:
        env["load_average"] = list(os.getloadavg())  # how busy the shared machine was
    except OSError:
        pass
    return env


def version_changes() -> dict[str, dict[str, str]]:
    """``{library: {"readme": v0, "now": v1}}`` for imported peers (and torch) that differ from
    the versions the README's figures were measured with."""
    import torch

    changes = {
        name: {"readme": README_PEER_VERSIONS[name], "now": now}
        for name, now in peer_versions().items()
        if name in README_PEER_VERSIONS and now != README_PEER_VERSIONS[name]
    }
    torch_now = torch.__version__.split("+")[0]
    if torch_now != README_TORCH_VERSION:
        changes["torch"] = {"readme": README_TORCH_VERSION, "now": torch_now}
    return changes


def check_peer_versions() -> dict[str, dict[str, str]]:
    """Print one line per library whose version differs from the README's figure; return them."""
    changes = version_changes()
    for name, v in changes.items():
        print(f"note: {name} {v['now']} here; the README figure was measured with {name} {v['readme']}")
    return changes


def interleave(
    fns: dict[str, Callable[[], Any]],
    repeats: int,
    warmup: int = 1,
    cpu_times: dict[str, list[float]] | None = None,
) -> dict[str, list[float]]:
    """Time each of ``fns`` ``repeats`` times, alternating between them (A, B, A, B, ...).

    ``warmup`` untimed rounds run first (lazy initialisation, allocator and cache warm-up).
    Returns ``{name: [seconds of round 0, round 1, ...]}`` (wall clock). If ``cpu_times`` is given,
    it is filled with the same rounds' CPU time of the calling thread (``time.thread_time``): for a
    one-thread run on shared cores that leaves out the time spent waiting for a core, which the wall
    clock counts for whichever side happened to be waiting.
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    if cpu_times is not None:
        cpu_times.update({name: [] for name in fns})
    for _ in range(repeats):
        for name, fn in fns.items():
            cpu_start, start = time.thread_time(), time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
            if cpu_times is not None:
                cpu_times[name].append(time.thread_time() - cpu_start)
    return times


def ratio_median(a_times: Sequence[float], b_times: Sequence[float]) -> float:
    """Median of the per-round ratios ``b / a``: > 1 means A is faster than B."""
    if len(a_times) != len(b_times) or not a_times:
        raise ValueError("ratio_median needs two equally long, non-empty lists of times")
    return statistics.median(b / a for a, b in zip(a_times, b_times, strict=True))


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    """Print ``rows`` as an aligned text table with the given column order (floats to 3 significant
    decimals)."""

    def fmt(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.3f}" if abs(value) < 1000 else f"{value:.0f}"
        return str(value)

    cells = [[fmt(row.get(col, "")) for col in columns] for row in rows]
    widths = [max(len(col), *(len(r[i]) for r in cells)) for i, col in enumerate(columns)]
    print("  ".join(col.ljust(w) for col, w in zip(columns, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for r in cells:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)))


def add_json_arg(parser: argparse.ArgumentParser) -> None:
    """Add the common ``--json PATH`` option (write the figures there as JSON)."""
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="write the figures as JSON")


def add_threads_arg(parser: argparse.ArgumentParser, default: int = 1) -> None:
    """Add ``--threads N`` (torch intra-op threads; 1 by default, steady on shared cores)."""
    parser.add_argument("--threads", type=int, default=default, help=f"torch threads (default {default})")


def set_threads(n: int) -> None:
    """Set torch's intra-op thread count (call before any timing)."""
    import torch

    torch.set_num_threads(n)


def write_json(path: str | Path | None, data: dict[str, Any]) -> None:
    """Write ``data`` plus ``environment()`` and ``peer_version_changes`` atomically to ``path``
    (nothing when ``path`` is None) and say where."""
    if path is None:
        return
    data = {**data, "environment": environment(), "peer_version_changes": version_changes()}
    write_json_atomic(path, data)
    print(f"wrote {path}")
