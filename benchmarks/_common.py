"""Shared helpers for the benchmark scripts: fair timing, a printed table, a JSON result file.

These machines are shared and noisy, and the order of runs changes the answer, so every comparison
is timed *interleaved* (A, B, A, B, ...) and summarised by the median of the pairwise ratios.

API (kept small on purpose):

- ``interleave(fns, repeats, warmup=1) -> {name: [seconds, ...]}``: run each callable in turn,
  round after round, and return the wall time of every call.
- ``ratio_median(a_times, b_times) -> float``: median over rounds of ``b[i] / a[i]`` — how many times
  faster A is than B when both ran back to back in round ``i``.
- ``print_table(rows, columns)``: a plain aligned text table (rows are dicts).
- ``add_json_arg(parser)`` and ``write_json(path, data)``: the ``--json PATH`` option every benchmark
  has, written atomically through ``genforge.io``.
- ``add_threads_arg(parser)`` / ``set_threads(n)``: one torch thread by default (steady on shared
  cores), changeable with ``--threads``.

Import from a benchmark script run as ``python benchmarks/<name>.py`` (its folder is on ``sys.path``):
``from _common import interleave, ratio_median, print_table, add_json_arg, write_json``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from genforge.io import write_json_atomic


def interleave(fns: dict[str, Callable[[], Any]], repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """Time each of ``fns`` ``repeats`` times, alternating between them (A, B, A, B, ...).

    ``warmup`` untimed rounds run first (lazy initialisation, allocator and cache warm-up).
    Returns ``{name: [seconds of round 0, round 1, ...]}``.
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
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
    """Write ``data`` atomically to ``path`` (nothing when ``path`` is None) and say where."""
    if path is None:
        return
    write_json_atomic(path, data)
    print(f"wrote {path}")
