"""An interpolated n-gram language model over integer tokens: the baseline beside every GPT in this suite.

Witten-Bell interpolation (Witten & Bell 1991; Chen & Goodman 1998): the probability of a token after a
context mixes the maximum-likelihood estimate of that context with the estimate of the context one token
shorter, weighted by how many distinct tokens the context has been followed by; the recursion ends in an
add-one unigram, so every token of the vocabulary has a probability above zero. No parameter is tuned, so
nothing is fitted on validation or test data. Used for characters (text) and music events (music).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence


class NGramLM:
    """Witten-Bell interpolated n-gram model of ``order`` (1 = unigram) over ids ``0..vocab_size-1``."""

    def __init__(self, order: int = 5, vocab_size: int = 256) -> None:
        self.order = order
        self.vocab_size = vocab_size

    def fit(self, sequences: Sequence[Sequence[int]]) -> NGramLM:
        """Count every n-gram up to ``order`` inside each sequence (no n-gram crosses two sequences)."""
        self.counts_: list[dict[tuple[int, ...], Counter]] = [defaultdict(Counter) for _ in range(self.order)]
        for seq in sequences:
            seq = [int(t) for t in seq]
            for i, tok in enumerate(seq):
                for n in range(self.order):  # context length n
                    if i - n < 0:
                        break
                    self.counts_[n][tuple(seq[i - n : i])][tok] += 1
        self.totals_ = [{ctx: sum(c.values()) for ctx, c in level.items()} for level in self.counts_]
        return self

    def prob(self, context: Sequence[int], token: int) -> float:
        """P(token | the last ``order - 1`` tokens of context)."""
        unigram = self.counts_[0][()]
        total = self.totals_[0].get((), 0)
        p = (unigram[token] + 1) / (total + self.vocab_size)
        context = tuple(int(t) for t in context)
        for n in range(1, self.order):
            if len(context) < n:
                break
            ctx = context[len(context) - n :]
            counts = self.counts_[n].get(ctx)
            if not counts:
                break
            seen_total = self.totals_[n][ctx]
            distinct = len(counts)
            lam = seen_total / (seen_total + distinct)
            p = lam * counts[token] / seen_total + (1 - lam) * p
        return p

    def nll(self, sequences: Sequence[Sequence[int]], skip_first: int = 1) -> tuple[float, int]:
        """Total negative log-likelihood (nats) and token count, scoring each sequence from position
        ``skip_first`` on (the GPT is scored on the same positions)."""
        total, n = 0.0, 0
        for seq in sequences:
            seq = [int(t) for t in seq]
            for i in range(skip_first, len(seq)):
                total -= math.log(self.prob(seq[max(0, i - self.order + 1) : i], seq[i]))
                n += 1
        return total, n
