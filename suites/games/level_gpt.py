"""LevelGPT: the core GPT over column-serialised levels (as MarioGPT, Sudhakaran et al. 2023).

A level of ``height`` rows is read column by column, each column **bottom to top**, one token per tile
(vocabulary = the levels' tile classes, merged across games as :class:`~genforge.games.data.Vocabulary`
does; no separator token). The model is the core :class:`genforge.models.transformer.GPT` trained by the
core Trainer (nanoGPT's recipe) on every window of ``context`` whole columns of every training level
(windows stay inside one level: a window across two levels would teach a jump from a castle to the next
level's start that no level contains). Every window begins at a column boundary, so token position ``p``
is always row ``p % height``: the model knows which row it is writing from its absolute position.

Generation (:meth:`LevelGPT.generate`): a segment begins with the first ``start_columns`` columns of a
training level of the first game (as the level VAE's start prompt), then grows in chunks: the last
``context - chunk`` columns are the prompt and the core KV-cache ``generate`` (``temperature``, ``top_k``,
``top_p``) writes the next columns, exactly ``height`` tokens each, many segments in one batch. A
malformed column cannot occur: every window starts at a column boundary, exactly ``chunk * height``
tokens are drawn and every token is a tile. ``playable=True`` (a product option, like the VAE's A*
latent search) checks each new chunk with the A* agent over the last ``check_columns`` columns and draws
that chunk again (up to ``retries`` times) for the segments where it fails; the last draw is kept when
none passes. ``playable=False`` is the raw model that ``evaluate`` measures.

What it does not do (the level VAE serves these requests): element-count conditioning, blending two
games, latent interpolation. :meth:`nll` is the mean next-token cross-entropy of levels' windows.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from genforge.errors import DataError
from genforge.estimator import Example, SuiteEstimator, to_numpy
from genforge.games.data import Level, Vocabulary, empty_char, level_slices
from genforge.games.models import LevelVocabularyMixin, check_levels
from genforge.games.playability import astar

ARRAYS_FILE = "level_gpt_arrays.safetensors"


def serialise(codes: np.ndarray) -> np.ndarray:
    """Tile codes ``[height, width]`` (row 0 at the top) as a token stream: column by column, each column
    bottom to top (``height * width`` tokens)."""
    return np.ascontiguousarray(np.asarray(codes)[::-1].T).reshape(-1)


def deserialise(tokens: np.ndarray, height: int) -> np.ndarray:
    """The inverse of :func:`serialise`: ``height * width`` tokens back to codes ``[height, width]``."""
    tokens = np.asarray(tokens)
    if tokens.size % height:
        raise DataError(f"{tokens.size} tokens are not whole columns of height {height}")
    return np.ascontiguousarray(tokens.reshape(-1, height).T[::-1])


def level_codes(levels: Sequence[Level], vocab: Vocabulary, height: int, context: int) -> list[np.ndarray]:
    """Each level as codes ``[height, >= context]``: cut/padded to ``height`` rows by the suite's rule
    (:func:`~genforge.games.data.level_slices`), narrower ones padded on the right with empty columns."""
    out = []
    for level in levels:
        empty = vocab.chars.index(vocab.aliases.get(empty_char(level.legend), vocab.chars[0]))
        for grid in level_slices(level, height):
            codes = vocab.encode(grid, level.name)
            if codes.shape[1] < context:
                codes = np.hstack([codes, np.full((height, context - codes.shape[1]), empty)])
            out.append(codes)
    return out


def column_windows(codes: Sequence[np.ndarray], context: int, stride: int = 1) -> np.ndarray:
    """Serialised windows ``[N, context * height]`` of every ``context`` whole columns of each level."""
    out = [
        serialise(g[:, c : c + context]) for g in codes for c in range(0, g.shape[1] - context + 1, stride)
    ]
    if not out:
        raise DataError("levels: no windows could be cut; expected at least one level")
    return np.stack(out).astype(np.int64)


class LevelGPT(LevelVocabularyMixin, SuiteEstimator):
    """Level generator on the core GPT (see the module docstring)."""

    state_version: ClassVar[int] = 1

    def __init__(
        self,
        height: int = 14,
        context: int = 32,
        n_layer: int = 4,
        n_head: int = 4,
        n_embd: int = 128,
        dropout: float = 0.1,
        max_steps: int = 800,
        batch_size: int = 8,
        lr: float = 1e-3,
        weight_decay: float = 0.1,
        warmup_steps: int = 100,
        chunk: int = 16,
        start_columns: int = 2,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        check_columns: int = 48,
        retries: int = 8,
        generate_batch: int = 64,
        seed: int = 0,
        progress: bool = False,
        device: str = "auto",
    ):
        self.height = height
        self.context = context
        self.n_layer = n_layer
        self.n_head = n_head
        self.n_embd = n_embd
        self.dropout = dropout
        self.max_steps = max_steps
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.warmup_steps = warmup_steps
        self.chunk = chunk
        self.start_columns = start_columns
        self.temperature = temperature
        self.top_k = top_k
        self.top_p = top_p
        self.check_columns = check_columns
        self.retries = retries
        self.generate_batch = generate_batch
        self.seed = seed
        self.progress = progress
        self.device = device

    @classmethod
    def example(cls) -> Example:
        from genforge.games.rules import rule_levels

        levels = rule_levels(3, width=48, seed=7)

        def probe(est: LevelGPT) -> np.ndarray:
            est._check_fitted()
            return est.nll(levels[:1], per_window=True)[:8]

        return Example(
            params={
                "context": 8,
                "chunk": 4,
                "n_layer": 1,
                "n_head": 2,
                "n_embd": 16,
                "max_steps": 10,
                "batch_size": 8,
                "warmup_steps": 2,
            },
            fit_args=(levels,),
            probe=probe,
        )

    # ------------------------------------------------------------------ fit
    def _check_params(self) -> None:
        if not 1 <= self.chunk < self.context:
            raise DataError(f"chunk={self.chunk}: expected 1 <= chunk < context ({self.context})")
        if not 1 <= self.start_columns < self.context:
            raise DataError(f"start_columns={self.start_columns}: expected 1 <= start_columns < context")
        if self.height < 1:
            raise DataError(f"height={self.height}: expected a positive number of rows")

    def fit(self, levels: Sequence[Level], y: Any = None) -> LevelGPT:
        """Train on every ``context``-column window of ``levels`` (serialised column by column)."""
        from genforge.devices import pick_device
        from genforge.models.transformer import GPT, GPTConfig
        from genforge.recipes import nanogpt_train_config
        from genforge.training import Trainer

        levels = check_levels(levels)
        self._check_params()
        vocab = self._fit_vocabulary(levels)
        codes = level_codes(levels, vocab, self.height, self.context)
        windows = column_windows(codes, self.context)
        device = pick_device(self.device)
        torch.manual_seed(self.seed)
        model = GPT(
            GPTConfig(
                vocab_size=len(vocab.chars),
                block_size=self.context * self.height,
                n_layer=self.n_layer,
                n_head=self.n_head,
                n_embd=self.n_embd,
                dropout=self.dropout,
                bias=False,
            )
        )
        cfg = nanogpt_train_config(
            max_steps=self.max_steps,
            batch_size=min(self.batch_size, len(windows)),
            lr=self.lr,
            weight_decay=self.weight_decay,
            warmup_steps=min(self.warmup_steps, max(self.max_steps - 1, 0)),
            seed=self.seed,
            progress=self.progress,
            device=str(device),
            drop_last=len(windows) > self.batch_size,
        )
        self.train_result_ = Trainer(cfg).fit(model, torch.from_numpy(windows))
        self.model_ = model.to(device).eval()
        firsts = [
            g[:, : self.start_columns]
            for g, lv in zip(codes, _slice_owners(levels, self.height), strict=True)
            if lv.game == self.games_[0]
        ]
        self.start_columns_ = np.stack(firsts).astype(np.int64)
        self.n_windows_ = int(len(windows))
        return self

    # ------------------------------------------------------------------ scoring
    @torch.no_grad()
    def nll(self, levels: Sequence[Level], per_window: bool = False, batch: int = 64) -> Any:
        """Mean next-token cross-entropy (nats) over the ``context``-column windows of ``levels``
        (``per_window``: one value per window)."""
        import torch.nn.functional as F

        self._check_fitted()
        windows = column_windows(
            level_codes(check_levels(levels), self.vocab_, self.height, self.context), self.context
        )
        out = []
        for i in range(0, len(windows), batch):
            x = self._tensor(windows[i : i + batch], torch.long)
            logits = self.model_(x[:, :-1])
            loss = F.cross_entropy(logits.transpose(1, 2), x[:, 1:], reduction="none").mean(1)
            out.append(to_numpy(loss))
        values = np.concatenate(out).astype(np.float64)
        return values if per_window else float(values.mean())

    # ------------------------------------------------------------------ generation
    def generate(self, n: int = 1, width: int = 150, seed: int = 0, playable: bool = True) -> list[Level]:
        """``n`` segments ``width`` columns wide (see the module docstring); deterministic in
        (``n``, ``width``, ``seed``) on one device."""
        self._check_fitted()
        if n < 1:
            raise DataError(f"n={n}: expected 1 or more levels")
        if width < self.start_columns + 1:
            raise DataError(f"width={width}: expected more than the {self.start_columns} start columns")
        rng = np.random.default_rng(seed)
        gen = torch.Generator(device=self._device()).manual_seed(int(seed))
        out: list[Level] = []
        for b in range(0, n, self.generate_batch):
            m = min(self.generate_batch, n - b)
            starts = self.start_columns_[rng.integers(len(self.start_columns_), size=m)]
            grids = self._grow(starts, width, gen, playable)
            out += [self.to_level(g, f"gpt-{seed}-{b + i}") for i, g in enumerate(grids)]
        return out

    def _draw(self, prompt: np.ndarray, columns: int, gen: torch.Generator) -> np.ndarray:
        """``columns`` new columns after each prompt ``[B, height, p]`` -> codes ``[B, height, columns]``."""
        h = self.height
        idx = self._tensor(np.stack([serialise(p) for p in prompt]), torch.long)
        toks = self.model_.generate(
            idx,
            columns * h,
            temperature=self.temperature,
            top_k=self.top_k,
            top_p=self.top_p,
            generator=gen,
        )
        new = to_numpy(toks[:, idx.size(1) :])
        return np.stack([deserialise(t, h) for t in new])

    def _grow(self, starts: np.ndarray, width: int, gen: torch.Generator, playable: bool) -> np.ndarray:
        levels = starts.copy()
        legend = self.vocab_.legend
        while levels.shape[2] < width:
            keep = min(levels.shape[2], self.context - self.chunk)
            columns = min(self.context - keep, width - levels.shape[2])
            prompt = levels[:, :, levels.shape[2] - keep :]
            new = self._draw(prompt, columns, gen)
            if playable:
                todo = np.arange(len(levels))
                for attempt in range(self.retries + 1):
                    trial = np.concatenate([levels[todo], new[todo]], 2)[:, :, -self.check_columns :]
                    ok = np.array([astar(self.vocab_.decode(t), legend).playable for t in trial], bool)
                    todo = todo[~ok]
                    if not len(todo) or attempt == self.retries:  # no redraw that nothing would check
                        break
                    new[todo] = self._draw(prompt[todo], columns, gen)
            levels = np.concatenate([levels, new], 2)
        return levels[:, :, :width]

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> dict[str, Any]:
        return {**self._vocabulary_state(), "n_windows": self.n_windows_}

    def _set_state(self, state: dict[str, Any], directory: Path) -> None:
        self._set_vocabulary_state(state)
        self.n_windows_ = int(state["n_windows"])
        self.start_columns_ = self._load_arrays(Path(directory) / ARRAYS_FILE)["start_columns"]

    def _save_files(self, directory: Path) -> None:
        self._save_arrays(directory / ARRAYS_FILE, {"start_columns": self.start_columns_})


def _slice_owners(levels: Sequence[Level], height: int) -> list[Level]:
    """The level each slice of :func:`level_codes` came from (one entry per slice, in its order)."""
    return [level for level in levels for _ in level_slices(level, height)]
