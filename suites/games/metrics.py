"""Level metrics that know nothing of models: element counts, tile-pattern KL, novelty, tile statistics.

All take integer tile grids (codes of a :class:`~genforge.games.data.Vocabulary`) and the vocabulary.

- :func:`element_counts`: enemies, pipes (pipe tops), gaps (runs of columns whose bottom row has nothing
  to stand on), coins — the quantities a designer asks for.
- :func:`tpkl`: the tile-pattern KL divergence of Lucas & Volz (2019) as TOAD-GAN reports it: the
  distributions of all k x k patterns in the training levels (P) and in the generated ones (Q), each
  smoothed with ``eps`` over the union of patterns, and ``w * KL(P||Q) + (1 - w) * KL(Q||P)``, w = 0.5.
- :func:`novelty`: the share of generated windows that appear nowhere among the training windows, and
  the mean Hamming distance (share of differing tiles) from each generated window to its nearest one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from genforge.games.data import Vocabulary

COUNT_NAMES = ("enemies", "pipes", "gaps", "coins")


def element_counts(grid: np.ndarray, vocab: Vocabulary) -> dict[str, int]:
    """Counts of the four designer-facing elements in one grid (codes)."""
    enemy = np.isin(grid, vocab.index("enemy"))
    pipe_top = np.isin(grid, vocab.index("top-left pipe"))
    coin = np.isin(grid, vocab.index("coin"))
    standable = vocab.index("solid") + vocab.index("solidtop")
    floor = np.isin(grid[-1], standable)
    gaps = int(np.sum(~floor[1:] & floor[:-1])) + int(not floor[0])
    return {"enemies": int(enemy.sum()), "pipes": int(pipe_top.sum()), "gaps": gaps, "coins": int(coin.sum())}


def count_matrix(grids: np.ndarray, vocab: Vocabulary) -> np.ndarray:
    """[N, 4] counts (COUNT_NAMES order) of a stack of grids."""
    return np.array([[element_counts(g, vocab)[k] for k in COUNT_NAMES] for g in grids], dtype=np.float32)


def patterns(grids: Iterable[np.ndarray], k: int) -> Counter:
    """Counts of every k x k pattern (as bytes) over the grids."""
    counter: Counter = Counter()
    for g in grids:
        g = np.asarray(g, dtype=np.uint8)
        rows, cols = g.shape
        if rows < k or cols < k:
            continue
        view = np.lib.stride_tricks.sliding_window_view(g, (k, k)).reshape(-1, k * k)
        counter.update(bytes(row) for row in view)
    return counter


def tpkl(real: Sequence[np.ndarray], fake: Sequence[np.ndarray], k: int = 2, w: float = 0.5,
         eps: float = 1e-5) -> float:
    """Tile-pattern KL divergence (lower is closer to the training levels)."""
    p_counts, q_counts = patterns(real, k), patterns(fake, k)
    keys = list(set(p_counts) | set(q_counts))
    p = np.array([p_counts.get(key, 0) for key in keys], dtype=np.float64)
    q = np.array([q_counts.get(key, 0) for key in keys], dtype=np.float64)
    p = (p / max(p.sum(), 1.0)) + eps
    q = (q / max(q.sum(), 1.0)) + eps
    p, q = p / p.sum(), q / q.sum()
    kl_pq = float(np.sum(p * np.log(p / q)))
    kl_qp = float(np.sum(q * np.log(q / p)))
    return w * kl_pq + (1.0 - w) * kl_qp


def all_windows(grids: Iterable[np.ndarray], width: int = 16, stride: int = 1) -> np.ndarray:
    """Every ``width``-column window of the grids, stacked [N, rows, width]."""
    out = [g[:, c:c + width] for g in grids for c in range(0, g.shape[1] - width + 1, stride)]
    return np.stack(out) if out else np.zeros((0, 0, width), dtype=np.int64)


def novelty(generated: np.ndarray, training: np.ndarray, max_compare: int = 2000,
            seed: int = 0) -> tuple[float, float]:
    """(share of generated windows absent from training, mean nearest-neighbour Hamming share).

    The share is exact (hash lookup); the distance uses up to ``max_compare`` generated windows."""
    train_set = {w.astype(np.uint8).tobytes() for w in training}
    novel = float(np.mean([w.astype(np.uint8).tobytes() not in train_set for w in generated]))
    rng = np.random.default_rng(seed)
    pick = generated if len(generated) <= max_compare else generated[rng.choice(len(generated), max_compare,
                                                                                replace=False)]
    flat_t = training.reshape(len(training), -1).astype(np.int16)
    dists = []
    for chunk in np.array_split(pick.reshape(len(pick), -1).astype(np.int16), max(1, len(pick) // 128)):
        diff = (chunk[:, None, :] != flat_t[None, :, :]).mean(2)
        dists.append(diff.min(1))
    return novel, float(np.concatenate(dists).mean())


def tile_distribution(grids: Iterable[np.ndarray], n_tiles: int) -> np.ndarray:
    """The share of each tile over the grids."""
    counts = np.zeros(n_tiles, dtype=np.float64)
    for g in grids:
        counts += np.bincount(np.asarray(g).ravel(), minlength=n_tiles)[:n_tiles]
    return counts / max(counts.sum(), 1.0)
