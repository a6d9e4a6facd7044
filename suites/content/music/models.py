"""``MusicGenerator``: the core GPT over the four-voice event vocabulary of ``music.data`` (one token =
one voice's pitch-or-rest at one sixteenth step), trained by the core Trainer on windows of the pieces;
it scores pieces (NLL per event), continues an opening and generates new pieces.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genforge.errors import DataError, GenforgeError
from genforge.estimator import Example, SuiteEstimator


def _token_lists(X: Any) -> list[list[int]]:
    from genforge.content.music.data import Piece, encode

    if isinstance(X, Piece):
        X = [X]
    out = []
    for item in X:
        if isinstance(item, Piece):
            out.append(encode(item.grid))
        else:
            out.append([int(t) for t in item])
    if not out or not any(out):
        raise DataError("MusicGenerator.fit: expected a non-empty list of pieces (or token lists)")
    return out


class MusicGenerator(SuiteEstimator):
    """GPT language model over music events.

    Defaults chosen on the validation chorales at a 200-step budget (docs/results/content.md, 2026-12-06):
    learned + rotary positions, windows aligned to quarter notes of the grid (``align_steps=4``), Muon
    on the hidden matrices; transposition augmentation (``transpose``) lost at that budget and is off.
    ``position="learned", align_steps=0, optimizer="adamw"`` is the earlier plain model."""

    def __init__(
        self,
        block_size: int = 256,
        n_layer: int = 4,
        n_head: int = 4,
        n_embd: int = 128,
        dropout: float = 0.1,
        max_steps: int = 3000,
        batch_size: int = 16,
        lr: float = 1e-3,
        warmup_steps: int = 100,
        weight_decay: float = 0.1,
        position: str = "learned+rope",
        align_steps: int = 4,
        transpose: bool = False,
        optimizer: str = "muon",
        muon_lr: float = 0.02,
        seed: int = 0,
        progress: bool = True,
        device: str = "auto",
    ) -> None:
        self.block_size = block_size
        self.n_layer = n_layer
        self.n_head = n_head
        self.n_embd = n_embd
        self.dropout = dropout
        self.max_steps = max_steps
        self.batch_size = batch_size
        self.lr = lr
        self.warmup_steps = warmup_steps
        self.weight_decay = weight_decay
        self.position = position  # core GPT positions: "learned" | "rope" | "learned+rope"
        # > 0: windows start on BOS or on the soprano token of every align_steps-th grid step (training,
        # and the same grid in scoring and generation), so learned positions encode voice (and beat)
        self.align_steps = align_steps
        self.transpose = transpose  # train on the 12 transpositions -5..+6 that stay in the vocabulary
        self.optimizer = optimizer  # "adamw" | "muon" (Muon on the hidden matrices, AdamW on the rest)
        self.muon_lr = muon_lr
        self.seed = seed
        self.progress = progress
        self.device = device

    @classmethod
    def example(cls) -> Example:
        from genforge.content.music.data import Piece, encode

        rng = np.random.default_rng(0)  # a scale-wise random walk: quick, and needs no corpus parsing
        grid = (60 + np.cumsum(rng.integers(-2, 3, size=(64, 4)), axis=0) // 2).astype(np.int16) - [
            0,
            5,
            12,
            24,
        ]
        pieces = [Piece("walk", grid)]
        return Example(
            params=dict(
                block_size=32,
                n_layer=1,
                n_head=2,
                n_embd=32,
                max_steps=20,
                batch_size=8,
                dropout=0.0,
                progress=False,
                device="cpu",
            ),
            fit_args=(pieces,),
            probe=lambda est: est.nll(encode(grid))[0],
        )

    def fit(self, X: Sequence[Any], y: None = None) -> MusicGenerator:
        """Train on pieces (``music.data.Piece``) or token lists."""
        from genforge.content.gpt import train_gpt
        from genforge.content.music.data import VOCAB_SIZE, Piece, VoiceWindows, decode, transpositions

        if self.transpose:
            items = [X] if isinstance(X, Piece) else list(X)
            items = [
                p if isinstance(p, Piece) else Piece("tokens", decode([int(t) for t in p])) for p in items
            ]
            X = [t for p in items for t in transpositions(p)]
        seqs = _token_lists(X)
        ids = torch.tensor([t for s in seqs for t in s], dtype=torch.long)
        if len(ids) <= self.block_size + 1:
            raise DataError(
                f"the pieces hold {len(ids)} events; expected more than the context of {self.block_size + 1}"
            )
        dataset = VoiceWindows(seqs, self.block_size, self.align_steps) if self.align_steps > 0 else None
        self.model_, result = train_gpt(self, VOCAB_SIZE, ids, dataset=dataset)
        self.history_ = result.history[-20:]
        return self

    @torch.no_grad()
    def nll(self, tokens: Sequence[int], skip_first: int = 1) -> tuple[float, int]:
        """Total NLL (nats) of ``tokens[skip_first:]`` and their count: a sliding window of
        ``block_size`` moved by half a window, each token scored once with at least half a window of
        context (all of it near the start). With ``align_steps`` every later window starts on a
        soprano token of that grid (``tokens[0]`` is BOS), as in training."""
        self._check_fitted()
        toks = torch.tensor([int(t) for t in tokens], dtype=torch.long)
        block = self.model_.config.block_size
        half = max(1, block // 2)
        total, count, scored_to, start = 0.0, 0, max(1, skip_first), 0  # scored_to: next target position
        while scored_to < len(toks):
            y = toks[start + 1 : start + block + 1]
            x = toks[start : start + len(y)]
            logits = self.model_(self._tensor(x[None], torch.long))[0].float()
            logp = torch.log_softmax(logits, -1).gather(1, self._tensor(y[:, None], torch.long))[:, 0]
            first = scored_to - start - 1  # index in y of target position scored_to
            total -= float(logp[first:].sum())
            count += len(y) - first
            scored_to = start + len(y) + 1
            start = max(start + 1, scored_to - 1 - half)
            if getattr(self, "align_steps", 0) > 0:
                from genforge.content.music.data import VOICES

                aligned = start + (-(start - 1) % (VOICES * self.align_steps))  # next aligned soprano
                start = aligned if aligned <= scored_to - 1 else start
        return total, count

    def generate_tokens(
        self,
        opening: Sequence[int],
        n_events: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = 0,
        chunk: int = 32,
    ) -> list[int]:
        """Continue ``opening`` (starting with BOS) by ``n_events`` tokens with the core ``GPT.generate``."""
        self._check_fitted()
        if not opening:
            raise GenforgeError("generate: the opening is empty; expected at least the BOS token")
        generator = torch.Generator(device=self._device())
        if seed is not None:
            generator.manual_seed(seed)
        block = self.model_.config.block_size
        chunk = max(1, min(chunk, block // 2))
        ids = [int(t) for t in opening]
        target = len(ids) + n_events
        while len(ids) < target:
            step = min(chunk, target - len(ids))
            first = max(0, len(ids) - (block - step))
            if first and getattr(self, "align_steps", 0) > 0:  # the context starts on an aligned soprano
                from genforge.content.music.data import VOICES

                first += -(first - 1) % (VOICES * self.align_steps)
            context = self._tensor([ids[first:]], torch.long)
            out = self.model_.generate(
                context, step, temperature=temperature, top_k=top_k, top_p=top_p, generator=generator
            )
            ids += out[0, context.shape[1] :].tolist()
        return ids

    def generate(
        self,
        seconds: float = 20.0,
        bpm: float = 90.0,
        opening: Any = None,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = 0,
    ) -> Any:
        """A new piece of about ``seconds`` at ``bpm`` (a ``music.data.Piece``), continuing ``opening``
        (a Piece) when given."""
        from genforge.content.music.data import BOS, STEPS_PER_QUARTER, VOICES, Piece, decode, encode

        if seconds <= 0 or bpm <= 0:
            raise GenforgeError(f"generate: seconds = {seconds}, bpm = {bpm}; expected positive numbers")
        steps = int(math.ceil(seconds * bpm / 60.0 * STEPS_PER_QUARTER))
        start = encode(opening.grid) if opening is not None else [BOS]
        done_steps = (len(start) - 1) // VOICES
        start = start[: 1 + done_steps * VOICES]
        tokens = self.generate_tokens(
            start, max(0, steps - done_steps) * VOICES, temperature, top_k, top_p, seed
        )
        name = f"continuation of {opening.name}" if opening is not None else "generated"
        return Piece(name, decode(tokens), bpm)

    def _get_state(self) -> dict[str, Any]:
        return {"history": self.history_}

    def _set_state(self, state: dict[str, Any], directory: Path) -> None:
        self.history_ = list(state.get("history", []))
