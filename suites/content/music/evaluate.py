"""Music evaluation on Bach chorales: NLL per event on test beside an n-gram baseline, and statistics of
generated pieces against the test pieces.

Split: the JSB chorales of the literature (Boulanger-Lewandowski et al. 2012; 229 train / 76 valid /
77 test) are distributed as piano rolls without BWV numbers, and that file is not available offline
here, so the pieces cannot be matched one by one. We build a split of the same sizes from music21's
corpus instead: every four-part chorale in ``bach/`` (duplicates with an identical grid kept once),
sorted by file name, shuffled with ``numpy.random.default_rng(0)``, then the first 229 / next 76 / next
77. Figures are therefore comparable in kind, not piece for piece, to published JSB numbers.

Tokenisation: ``music.data.TOKENISATION``. Metrics:

- ``nll_test``: mean NLL (nats) per event over every test token after BOS (sliding-window context);
- baseline ``ngram``: Witten-Bell interpolated event n-gram (order 9: two full grid steps of context;
  nothing tuned) on the same tokens;
- for ``n_generated`` pieces sampled from BOS: total-variation distance of the pitch-class histogram
  and of the note-duration histogram (sixteenths, 1..16 and longer) to those of the test pieces, and
  the share of generated notes in the key of their piece (Krumhansl-Kessler key finding; minor keys
  allow the raised sixth and seventh); the test pieces' own share is shown beside it.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

SPLIT = (229, 76, 77)
NGRAM_ORDER = 9
ANCHOR = {"transformer_valid": 0.914, "relative_attention_valid": 0.502}
GOAL = 0.50
MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 9, 10, 11)  # natural minor + raised 6th and 7th


def split_chorales(pieces: list[Any], seed: int = 0) -> tuple[list[Any], list[Any], list[Any]]:
    """229 / 76 / 77 pieces (see the module docstring); fewer pieces shrink the three parts in proportion."""
    ordered = sorted(pieces, key=lambda p: p.name)
    order = np.random.default_rng(seed).permutation(len(ordered))
    total = sum(SPLIT)
    scale = min(1.0, len(ordered) / total)
    n_train, n_valid = int(SPLIT[0] * scale), int(SPLIT[1] * scale)
    n_test = min(int(SPLIT[2] * scale), len(ordered) - n_train - n_valid)
    picked = [ordered[i] for i in order]
    return (
        picked[:n_train],
        picked[n_train : n_train + n_valid],
        picked[n_train + n_valid : n_train + n_valid + n_test],
    )


def pitch_class_histogram(pieces: list[Any]) -> np.ndarray:
    """Share of sounding sixteenths per pitch class, over all voices of all pieces."""
    counts = np.zeros(12)
    for p in pieces:
        cells = p.grid[p.grid >= 0]
        counts += np.bincount(cells % 12, minlength=12)
    return counts / max(1.0, counts.sum())


def duration_histogram(pieces: list[Any]) -> np.ndarray:
    """Share of notes lasting 1..16 sixteenths, and longer (17th bin)."""
    from genforge.content.music.data import grid_to_notes

    counts = np.zeros(17)
    for p in pieces:
        step = 60.0 / p.bpm / 4
        for _, start, end, _ in grid_to_notes(p.grid, p.bpm):
            counts[min(16, int(round((end - start) / step))) - 1] += 1
    return counts / max(1.0, counts.sum())


def total_variation(a: np.ndarray, b: np.ndarray) -> float:
    return float(0.5 * np.abs(a - b).sum())


def estimate_key(piece: Any) -> tuple[int, str]:
    """(tonic pitch class, "major" | "minor") by Krumhansl-Kessler profile correlation."""
    hist = pitch_class_histogram([piece])
    best = (-2.0, 0, "major")
    for tonic in range(12):
        for mode, profile in (("major", MAJOR), ("minor", MINOR)):
            r = float(np.corrcoef(hist, np.roll(profile, tonic))[0, 1]) if hist.std() > 0 else 0.0
            if r > best[0]:
                best = (r, tonic, mode)
    return best[1], best[2]


def in_key_share(pieces: list[Any]) -> float:
    """Share of notes (over all pieces) whose pitch class is in the estimated key of their piece."""
    from genforge.content.music.data import grid_to_notes

    inside = total = 0
    for p in pieces:
        tonic, mode = estimate_key(p)
        scale = {(tonic + d) % 12 for d in (MAJOR_SCALE if mode == "major" else MINOR_SCALE)}
        for pitch, *_ in grid_to_notes(p.grid, p.bpm):
            inside += (pitch % 12) in scale
            total += 1
    return inside / max(1, total)


def sample_statistics(generated: list[Any], reference: list[Any]) -> dict[str, float]:
    return {
        "pitch_class_tv": total_variation(pitch_class_histogram(generated), pitch_class_histogram(reference)),
        "duration_tv": total_variation(duration_histogram(generated), duration_histogram(reference)),
        "in_key_share": in_key_share(generated),
        "in_key_share_test": in_key_share(reference),
    }


def evaluate_music(
    steps: int = 3000,
    seed: int = 0,
    threads: int = 1,
    n_generated: int = 10,
    seconds: float = 32.0,
    block_size: int = 192,
    progress: bool = True,
    pieces: list[Any] | None = None,
) -> dict[str, Any]:
    """The protocol above; returns the JSON-ready result (``nll_test``, ``tokenisation``, ``baselines``)."""
    import torch

    from genforge.content.music.data import TOKENISATION, VOCAB_SIZE, cached_chorales, encode
    from genforge.content.music.models import MusicGenerator
    from genforge.content.ngram import NGramLM

    torch.set_num_threads(threads)
    pieces = pieces if pieces is not None else cached_chorales(progress=progress)
    train, valid, test = split_chorales(pieces)
    train_tokens = [encode(p.grid) for p in train]
    test_tokens = [encode(p.grid) for p in test]
    valid_tokens = [encode(p.grid) for p in valid]

    ngram = NGramLM(order=NGRAM_ORDER, vocab_size=VOCAB_SIZE).fit(train_tokens)
    ng_total, ng_count = ngram.nll(test_tokens)
    started = time.perf_counter()
    est = MusicGenerator(
        max_steps=steps, seed=seed, block_size=block_size, progress=progress, device="cpu"
    ).fit(train)
    train_seconds = time.perf_counter() - started

    def mean_nll(seqs: list[list[int]]) -> float:
        pairs = [est.nll(s) for s in seqs]
        return sum(t for t, _ in pairs) / sum(n for _, n in pairs)

    nll_test, nll_valid = mean_nll(test_tokens), mean_nll(valid_tokens)
    generated = [est.generate(seconds=seconds, seed=seed + i) for i in range(n_generated)]
    return {
        "nll_test": nll_test,
        "nll_valid": nll_valid,
        "tokenisation": TOKENISATION,
        "baselines": {"ngram": {"nll_test": ng_total / ng_count, "order": NGRAM_ORDER}},
        "anchor": ANCHOR,
        "goal": {"nll_test_max": GOAL, "met": bool(nll_test <= GOAL)},
        "generated": sample_statistics(generated, test),
        "split": {
            "train": len(train),
            "valid": len(valid),
            "test": len(test),
            "pieces": len(pieces),
            "test_names": [p.name for p in test],
        },
        "config": {
            "n_layer": est.n_layer,
            "n_head": est.n_head,
            "n_embd": est.n_embd,
            "block_size": block_size,
            "batch_size": est.batch_size,
            "steps": steps,
            "lr": est.lr,
            "dropout": est.dropout,
            "position": est.position,
            "align_steps": est.align_steps,
            "transpose": est.transpose,
            "optimizer": est.optimizer,
            "muon_lr": est.muon_lr,
            "seed": seed,
            "threads": threads,
            "n_generated": n_generated,
            "seconds": seconds,
        },
        "train_seconds": train_seconds,
    }


def format_music_table(result: dict[str, Any]) -> str:
    g = result["generated"]
    lines = [
        f"{'model':36s} {'NLL/event test':>15s}",
        f"{'genforge GPT (MusicGenerator)':36s} {result['nll_test']:15.4f}",
        f"{'event ' + str(result['baselines']['ngram']['order']) + '-gram (Witten-Bell)':36s} "
        f"{result['baselines']['ngram']['nll_test']:15.4f}",
        f"{'anchor: transformer / relative (valid)':36s} {ANCHOR['transformer_valid']:7.3f} / "
        f"{ANCHOR['relative_attention_valid']:.3f}",
        f"tokenisation: {result['tokenisation']}",
        f"generated vs test: pitch-class TV {g['pitch_class_tv']:.3f}, duration TV {g['duration_tv']:.3f}, "
        f"in-key {g['in_key_share']:.3f} (test pieces {g['in_key_share_test']:.3f})",
        f"goal NLL <= {GOAL} on test: {'met' if result['goal']['met'] else 'NOT met'}",
    ]
    return "\n".join(lines)
