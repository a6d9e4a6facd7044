"""The level VAE: the core's 2-D conv :class:`genforge.VAE` with a categorical likelihood over tiles.

:class:`LevelVAE` learns ``height`` x ``width`` windows (14 x 16 by default: one SMB screen) cut from the
levels of one or several games, in one tile vocabulary (tiles with identical legend tags are one tile), so
two games share one latent space (Sarkar, Yang & Cooper 2020). It is conditioned (optional) on each
window's element counts — enemies, pipes, gaps, coins — so a designer can ask for them.

- **whole levels** (:meth:`generate`): a level begins with the first ``overlap`` columns of a training
  level of the first game (``start_prompt``; in SMB plain ground: the player needs somewhere to start),
  then windows are stitched left to right with ``overlap`` columns in common: for each seam
  ``candidates`` latents are decoded, ranked by the log-likelihood the decoder gives to the previous
  window's last columns as their first columns (continuity at the seam); with ``playable=True`` the first
  one that keeps the level's last three windows playable under the A* agent is taken (latent search for a
  constraint; when none does, the best-ranked one is kept and the level may be unplayable).
- **counts** (``counts={"enemies": 3}``): the request goes into the condition vector (other counts drawn
  from the training windows) and, per window, the best of ``candidates`` decodes by count error is kept.
- **blending** (``blend={"kid_icarus": 0.3}``): each window's latent is ``(1 - w) z_a + w z_b`` with
  ``z_a``, ``z_b`` the posterior means of random training windows of the first game and of the named one.
- **interpolation** (:meth:`interpolate`): windows decoded along the line between two windows' latents.
- **decoding**: tiles drawn from the categorical likelihood at ``temperature`` (``decoding="tiles"``, the
  default; 0 = argmax; ``min_prob`` > 0 never draws a tile less likely than that share of the cell's
  likeliest: "min-p" truncation), or ``decoding="columns"``: every column one seen in training, chained
  by the decoder's log-likelihood of each whole column plus ``column_weight`` x a smoothed training
  column bigram, no chasm wider than training's, continuing from the level's last column at a seam. On
  200 SMB segments (docs/results/games.md) columns lowered TPKL (2x2 0.156 -> 0.124) but also raw
  playability (A* 0.895 -> 0.85) and count control, so tiles stay the default.
  ``evaluate.choose_decoding`` picks T and ``min_prob`` on validation segments (seeds apart from the
  evaluation's) with the A* agent. ``generate(playable=False)`` is the raw model; the default
  ``playable=True`` adds the A* latent search at the seams (a product option). Tile decoding keeps every
  run of columns with nothing to stand on in their lowest r rows within the training windows' longest
  (:func:`chasm_limits`). ``latent_noise``: latents from the aggregate posterior (a training window's
  posterior mean plus noise, with that window's counts) instead of N(0, I).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from genforge.errors import DataError
from genforge.estimator import Example, SuiteEstimator, to_numpy
from genforge.games.data import Level, Vocabulary, empty_char
from genforge.games.metrics import COUNT_NAMES, count_matrix
from genforge.games.playability import astar

ARRAYS_FILE = "level_vae_arrays.safetensors"
MAX_STORED = 4096  # training-window counts / latents kept with the model
DECODINGS = ("columns", "tiles")


def level_windows(
    levels: Sequence[Level], vocab: Vocabulary, height: int, width: int, stride: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """(windows [N, height, width] codes, game index [N]). Wide levels slide along columns (padded at the
    top to ``height`` rows); tall levels (rows > height, e.g. Kid Icarus) slide along rows (padded on the
    right to ``width`` columns, cropped to its first ``width`` when wider)."""
    games = list(dict.fromkeys(level.game for level in levels))
    out, labels = [], []
    for level in levels:
        codes = vocab.encode(level.grid, level.name)
        rows, cols = codes.shape
        empty = vocab.chars.index(vocab.aliases.get(empty_char(level.legend), vocab.chars[0]))
        if rows > height:
            if cols < width:
                codes = np.hstack([codes, np.full((rows, width - cols), empty)])
            codes = codes[:, :width]
            for r in range(0, rows - height + 1, stride):
                out.append(codes[r : r + height])
                labels.append(games.index(level.game))
        else:
            if rows < height:
                codes = np.vstack([np.full((height - rows, cols), empty), codes])
            if cols < width:
                codes = np.hstack([codes, np.full((height, width - cols), empty)])
            for c in range(0, codes.shape[1] - width + 1, stride):
                out.append(codes[:, c : c + width])
                labels.append(games.index(level.game))
    if not out:
        raise DataError("levels: no windows could be cut; expected at least one level")
    return np.stack(out).astype(np.int64), np.asarray(labels, dtype=np.int64)


def column_table(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the distinct columns of training windows [K, height], their bigram counts [K, K]: how often
    column b follows column a inside a window)."""
    n, h, w = windows.shape
    flat = windows.transpose(0, 2, 1).reshape(-1, h)
    columns, inverse = np.unique(flat, axis=0, return_inverse=True)
    idx = inverse.reshape(n, w)
    counts = np.zeros((len(columns), len(columns)), np.float32)
    np.add.at(counts, (idx[:, :-1].ravel(), idx[:, 1:].ravel()), 1.0)
    return columns.astype(np.int64), counts


def gap_columns(columns: np.ndarray, vocab: Vocabulary) -> np.ndarray:
    """Which columns (codes [K, height]) are chasm columns: nothing to stand on in any row."""
    standable = vocab.index("solid") + vocab.index("solidtop")
    return ~np.isin(columns, standable).any(1)


def longest_gap(windows: np.ndarray, vocab: Vocabulary) -> int:
    """The longest run of chasm columns inside the training windows (the chain never makes a longer one;
    6 in the 15 SMB levels)."""
    gap = ~np.isin(windows, vocab.index("solid") + vocab.index("solidtop")).any(1)  # [N, W]
    run = np.zeros(len(gap), np.int64)
    best = 0
    for j in range(gap.shape[1]):
        run = np.where(gap[:, j], run + 1, 0)
        best = max(best, int(run.max()))
    return best


def chasm_limits(windows: np.ndarray, vocab: Vocabulary) -> np.ndarray:
    """[H] ints: entry ``r - 1`` is the longest run of columns with nothing to stand on in their lowest ``r``
    rows, inside the training windows (the last entry is :func:`longest_gap`). Tile decoding never draws a
    longer run at any ``r``: a far platform too high to reach does not end a chasm."""
    stand = np.isin(windows, vocab.index("solid") + vocab.index("solidtop"))  # [N, H, W]
    h = windows.shape[1]
    # low[n, r, j]: column j has a standable tile in its lowest r + 1 rows
    low = np.logical_or.accumulate(stand[:, ::-1], 1)
    run = np.zeros(low.shape[:2], np.int64)
    best = np.zeros(h, np.int64)
    for j in range(windows.shape[2]):
        run = np.where(low[:, :, j], 0, run + 1)
        best = np.maximum(best, run.max(0))
    return best


def _unigram_logp(bigrams: np.ndarray) -> np.ndarray:
    p = bigrams.sum(0) + bigrams.sum(1) + 1e-3
    return np.log(p / p.sum()).astype(np.float32)


def _bigram_logp(bigrams: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """log P(next column | column), smoothed towards the unigram with ``alpha`` pseudo-counts, so unseen
    pairs are possible but rare."""
    uni = np.exp(_unigram_logp(bigrams))
    p = (bigrams + alpha * uni[None, :]) / (bigrams.sum(1, keepdims=True) + alpha)
    return np.log(p).astype(np.float32)


def check_levels(levels: Any, name: str = "levels") -> list[Level]:
    if isinstance(levels, Level):
        levels = [levels]
    levels = list(levels) if levels is not None else []
    if not levels or not all(isinstance(lv, Level) for lv in levels):
        raise DataError(f"{name}: expected a non-empty list of genforge.games.Level")
    return levels


class LevelVocabularyMixin:
    """What every level model shares: the fitted tile vocabulary and its games (``vocab_``, ``games_``),
    their saved form, and levels made from tile codes."""

    def to_level(self, codes: np.ndarray, name: str = "level") -> Level:
        self._check_fitted()
        return Level(
            grid=self.vocab_.decode(codes), legend=dict(self.vocab_.legend), name=name, game=self.games_[0]
        )

    def _fit_vocabulary(self, levels: Sequence[Level]) -> Vocabulary:
        self.vocab_ = Vocabulary.of_levels(levels)
        self.games_ = list(dict.fromkeys(level.game for level in levels))
        return self.vocab_

    def _vocabulary_state(self) -> dict[str, Any]:
        return {"games": self.games_, **self.vocab_.to_state()}

    def _set_vocabulary_state(self, state: dict[str, Any]) -> None:
        self.games_ = list(state["games"])
        self.vocab_ = Vocabulary.from_state(state)


class LevelVAE(LevelVocabularyMixin, SuiteEstimator):
    """Level generator on the core VAE (see the module docstring for what it can do)."""

    state_version: ClassVar[int] = 1

    def __init__(
        self,
        height: int = 14,
        width: int = 16,
        latent_dim: int = 32,
        hidden: tuple[int, ...] = (64, 128),
        beta: float = 1.0,
        condition_counts: bool = True,
        max_steps: int = 3000,
        batch_size: int = 64,
        lr: float = 1e-3,
        overlap: int = 2,
        candidates: int = 16,
        temperature: float = 1.0,
        decoding: str = "tiles",
        column_weight: float = 1.0,
        limit_gaps: bool = True,
        min_prob: float = 0.0,
        start_prompt: bool = True,
        latent_noise: float | None = None,
        seed: int = 0,
        progress: bool = False,
        device: str = "auto",
    ):
        self.height = height
        self.width = width
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.beta = beta
        self.condition_counts = condition_counts
        self.max_steps = max_steps
        self.batch_size = batch_size
        self.lr = lr
        self.overlap = overlap
        self.candidates = candidates
        self.temperature = temperature
        self.decoding = decoding
        self.column_weight = column_weight
        self.limit_gaps = limit_gaps
        self.min_prob = min_prob
        self.start_prompt = start_prompt
        self.latent_noise = latent_noise
        self.seed = seed
        self.progress = progress
        self.device = device

    @classmethod
    def example(cls) -> Example:
        from genforge.games.rules import rule_levels

        levels = rule_levels(3, width=48, seed=7)

        def probe(est: LevelVAE) -> np.ndarray:
            est._check_fitted()
            windows = est.windows_of(levels[:1])[:8]
            return est.encode(windows)

        return Example(
            params={"max_steps": 20, "hidden": (16, 32), "latent_dim": 8, "batch_size": 32},
            fit_args=(levels,),
            probe=probe,
        )

    # ------------------------------------------------------------------ fit
    def fit(self, levels: Sequence[Level], y: Any = None) -> LevelVAE:
        """Train on the windows of ``levels`` (one or more games; ``Level.game`` tells them apart)."""
        from genforge import VAE, VAEConfig
        from genforge.devices import pick_device
        from genforge.training import TrainConfig, Trainer

        levels = check_levels(levels)
        if self.overlap < 1 or self.overlap >= self.width:
            raise DataError(f"overlap={self.overlap}: expected 1 <= overlap < width ({self.width})")
        if self.decoding not in DECODINGS:
            raise DataError(f"decoding={self.decoding!r}: expected one of {', '.join(DECODINGS)}")
        vocab = self._fit_vocabulary(levels)
        x, game = level_windows(levels, vocab, self.height, self.width)
        counts = count_matrix(x, vocab)
        self.count_scale_ = np.maximum(counts.max(0), 1.0).astype(np.float32)
        device = pick_device(self.device)
        torch.manual_seed(self.seed)
        config = VAEConfig(
            kind="conv2d",
            in_channels=len(vocab.chars),
            image_size=(self.height, self.width),
            latent_dim=self.latent_dim,
            hidden=tuple(self.hidden),
            likelihood="categorical",
            cond_dim=len(COUNT_NAMES) if self.condition_counts else 0,
            beta=self.beta,
            residual=False,
        )
        model = VAE(config)
        data = (torch.from_numpy(x),)
        if self.condition_counts:
            data = (torch.from_numpy(x), torch.from_numpy(counts / self.count_scale_))
        tcfg = TrainConfig(
            max_steps=self.max_steps,
            batch_size=min(self.batch_size, len(x)),
            lr=self.lr,
            lr_schedule="cosine",
            val_every=None,
            seed=self.seed,
            progress=self.progress,
            device=str(device),
            precision="fp32",
            drop_last=len(x) > self.batch_size,
        )
        self.train_result_ = Trainer(tcfg).fit(model, data)
        self.model_ = model.to(device).eval()
        rng = np.random.default_rng(self.seed)
        keep = rng.permutation(len(x))[:MAX_STORED]
        self.train_counts_ = counts[keep]
        self.train_game_ = game[keep]
        self.columns_, self.column_bigrams_ = column_table(x)
        self.max_gap_ = longest_gap(x, vocab) if self.limit_gaps else None
        self.gap_limits_ = chasm_limits(x, vocab) if self.limit_gaps else None
        firsts = [
            level_windows([lv], vocab, self.height, self.width)[0][0]
            for lv in levels
            if lv.game == self.games_[0]
        ]
        self.start_windows_ = np.stack(firsts)
        self.latents_ = self.encode(x[keep])
        self.n_windows_ = int(len(x))
        return self

    # ------------------------------------------------------------------ helpers
    def windows_of(self, levels: Sequence[Level]) -> np.ndarray:
        """The model's windows of some levels (codes in the model's vocabulary)."""
        self._check_fitted()
        return level_windows(check_levels(levels), self.vocab_, self.height, self.width)[0]

    def _cond(self, counts: np.ndarray | None) -> torch.Tensor | None:
        if not self.condition_counts:
            return None
        return self._tensor(np.asarray(counts, np.float32) / self.count_scale_)

    def _draw_counts(
        self, n: int, request: dict[str, float] | None, rng: np.random.Generator, game: int | None = None
    ) -> np.ndarray:
        pool = self.train_counts_ if game is None else self.train_counts_[self.train_game_ == game]
        rows = pool[rng.integers(0, len(pool), n)].copy()
        for name, value in (request or {}).items():
            if name not in COUNT_NAMES:
                raise DataError(f"counts: unknown element {name!r}; expected one of {', '.join(COUNT_NAMES)}")
            rows[:, COUNT_NAMES.index(name)] = float(value)
        return rows

    def _blend_latents(self, n: int, blend: dict[str, float] | None, rng: np.random.Generator) -> np.ndarray:
        if not blend:
            return rng.standard_normal((n, self.latent_dim)).astype(np.float32)
        if len(blend) != 1:
            raise DataError(f"blend: {len(blend)} games given; expected one GAME:WEIGHT")
        ((name, weight),) = blend.items()
        if name not in self.games_:
            raise DataError(
                f"blend: game {name!r} is not one the model learned; expected one of {self.games_}"
            )
        if not 0.0 <= weight <= 1.0:
            raise DataError(f"blend: weight {weight} for {name!r}; expected a number in [0, 1]")
        a = self.latents_[self.train_game_ == 0]
        b = self.latents_[self.train_game_ == self.games_.index(name)]
        za = a[rng.integers(0, len(a), n)]
        zb = b[rng.integers(0, len(b), n)]
        return ((1.0 - weight) * za + weight * zb).astype(np.float32)

    def _draw(
        self,
        n: int,
        counts: dict[str, float] | None,
        blend: dict[str, float] | None,
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(latents [n, latent_dim], condition counts [n, 4]) for ``n`` windows. With ``latent_noise`` (and
        no blend) both come from one random training window of the first game: its posterior mean plus
        ``latent_noise`` x N(0, I) (the aggregate posterior, not the prior) and its counts, the requested
        ones replaced; otherwise z ~ N(0, I) (or the blend) and counts of another random window."""
        if self.latent_noise is None or blend:
            want = self._draw_counts(n, counts, rng)
            return self._blend_latents(n, blend, rng), want
        first = np.flatnonzero(self.train_game_ == 0)
        idx = first[rng.integers(0, len(first), n)]
        z = self.latents_[idx] + self.latent_noise * rng.standard_normal((n, self.latent_dim))
        want = self.train_counts_[idx].copy()
        for name, value in (counts or {}).items():
            if name not in COUNT_NAMES:
                raise DataError(f"counts: unknown element {name!r}; expected one of {', '.join(COUNT_NAMES)}")
            want[:, COUNT_NAMES.index(name)] = float(value)
        return z.astype(np.float32), want

    @torch.no_grad()
    def _logits(self, z: np.ndarray, counts: np.ndarray | None) -> torch.Tensor:
        return self.model_.decode(self._tensor(z), self._cond(counts))

    @torch.no_grad()
    def encode(self, windows: np.ndarray) -> np.ndarray:
        """Posterior means [N, latent_dim] of windows (codes); counts are read from the windows."""
        self._check_fitted()
        windows = np.asarray(windows, dtype=np.int64)
        cond = count_matrix(windows, self.vocab_) if self.condition_counts else None
        mu, _ = self.model_.encode(self._tensor(windows, torch.long), self._cond(cond))
        return to_numpy(mu)

    @torch.no_grad()
    def decode(self, z: np.ndarray, counts: np.ndarray | None = None) -> np.ndarray:
        """Windows (codes) of latents ``z``; ``counts`` [N, 4] when conditioned. Tiles are drawn from
        softmax(logits / temperature) (seeded by ``z``); ``temperature=0`` takes the argmax instead."""
        self._check_fitted()
        z = np.asarray(z, np.float32)
        if self.condition_counts and counts is None:
            counts = self._draw_counts(len(z), None, np.random.default_rng(0))
        return self._tiles(self._logits(z, counts), z)

    def _tiles(
        self,
        logits: torch.Tensor,
        z: np.ndarray,
        prev: np.ndarray | None = None,
        start: int = 0,
        run: int = 0,
    ) -> np.ndarray:
        """Windows (codes) from decoder logits [N, tiles, H, W]; ``prev`` (a column of codes) is the column
        left of the window, which the column decoding continues from, ``run`` the gap columns that end
        the level so far; columns before ``start`` are not constrained (they are cut off at a seam)."""
        g = torch.Generator().manual_seed(int(np.abs(z).sum() * 1e6) % (2**31))
        if self.decoding == "columns" and getattr(self, "columns_", None) is not None:
            return self._column_tiles(logits, g, prev, start, run)
        if self.temperature <= 0:
            return self._limit_chasms(to_numpy(logits.argmax(1)), logits, start, run)
        probs = torch.softmax(logits.float().cpu() / self.temperature, 1)
        if self.min_prob > 0:  # min-p truncation: drop tiles far less likely than the cell's likeliest
            probs = probs * (probs >= self.min_prob * probs.amax(1, keepdim=True))
        probs = probs.movedim(1, -1)
        flat = torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1, generator=g)
        return self._limit_chasms(flat.reshape(probs.shape[:-1]).numpy(), logits, start, run)

    def _limit_chasms(self, grids: np.ndarray, logits: torch.Tensor, start: int, run: int) -> np.ndarray:
        """Tile decoding's chasm limit (``gap_limits_``, from the training windows, see
        :func:`chasm_limits`; None: off): a column that would make a run of columns with nothing to stand on
        in their lowest ``r`` rows longer than training's, for any ``r``, gets in its bottom row the
        standable tile the decoder finds likeliest there. Columns before ``start`` are left alone; ``run``
        chasm columns (no standable tile at all) end the level before the window."""
        limits = getattr(self, "gap_limits_", None)
        standable = np.asarray(self.vocab_.index("solid") + self.vocab_.index("solidtop"), np.int64)
        if limits is None or not len(standable):
            return grids
        limits = np.asarray(limits)
        bottom = to_numpy(logits[:, standable, -1, :].float())  # [N, S, W]
        runs = np.zeros((len(grids), len(limits)), np.int64)
        runs[:, -1] = int(run)
        for j in range(start, grids.shape[2]):
            stand = np.isin(grids[:, :, j], standable)[:, ::-1]  # rows from the bottom up
            low = np.logical_or.accumulate(stand, 1)  # [N, H]: standable in the lowest r + 1 rows
            fix = (~low & (runs + 1 > limits[None, :])).any(1)
            grids[fix, -1, j] = standable[bottom[fix, :, j].argmax(1)]
            low[fix] = True
            runs = np.where(low, 0, runs + 1)
        return grids

    def _column_tiles(
        self, logits: torch.Tensor, g: torch.Generator, prev: np.ndarray | None, start: int, run: int = 0
    ) -> np.ndarray:
        """Column-constrained decoding: every column is one seen in training, and the window's columns are
        a chain scored by the decoder's log-likelihood of each column plus ``column_weight`` x the log of
        a smoothed training column-bigram, sampled (forward filtering, backward sampling) at
        ``temperature`` (0: the best chain, Viterbi). With ``max_gap_`` the chain's state also counts the
        chasm columns in a row (``run`` before the window): no chasm wider than training's is drawn."""
        cols = torch.from_numpy(self.columns_)  # [K, H]
        logp = torch.log_softmax(logits.float().cpu(), 1)  # [N, T, H, W]
        n, _, h, w = logp.shape
        k = len(cols)
        rows = torch.arange(h)
        # emission[n, j, k] = sum_r logp[n, cols[k, r], r, j]
        emit = logp[:, cols, rows[None, :], :].sum(2).permute(0, 2, 1).double()  # [N, W, K]
        trans = torch.from_numpy(_bigram_logp(self.column_bigrams_)).double() * self.column_weight
        uni = torch.from_numpy(_unigram_logp(self.column_bigrams_)).double() * self.column_weight
        if prev is not None:
            hit = np.flatnonzero((self.columns_ == np.asarray(prev)[None, :]).all(1))
            init = trans[hit[0]] if len(hit) else uni
        else:
            init = uni
        limit = getattr(self, "max_gap_", None)
        r_max = int(limit) if limit else int(run) + w  # run states 0..r_max
        gap = torch.from_numpy(gap_columns(self.columns_, self.vocab_))
        t = self.temperature if self.temperature > 0 else 1.0
        emit, trans, init = emit / t, trans / t, init / t
        neg = torch.tensor(float("-inf"), dtype=torch.float64)

        def spread(score: torch.Tensor, runs_before: torch.Tensor) -> torch.Tensor:
            """[N, K] scores of the next column given a run before it [N] -> [N, R+1, K] by run state."""
            out = torch.full((score.shape[0], r_max + 1, k), float("-inf"), dtype=torch.float64)
            out[:, 0] = torch.where(gap, neg, score)
            nxt = (runs_before + 1).clamp(max=r_max + 1)
            ok = nxt <= r_max
            idx = torch.nonzero(ok).flatten()
            out[idx, nxt[idx]] = torch.where(gap, score[idx], neg)
            return out

        alphas = [spread(init[None, :] + emit[:, start], torch.full((n,), int(run)))]
        exp_trans = trans.exp()
        for j in range(start + 1, w):
            a = alphas[-1]  # [N, R+1, K]
            if self.temperature <= 0:
                best = (a.amax(1)[:, :, None] + trans[None]).amax(1)  # any run -> non-gap column
                step = (a[:, :, :, None] + trans[None, None]).amax(2)  # run r -> gap column at r + 1
            else:
                top = a.amax((1, 2), keepdim=True).clamp_min(-1e300)
                ea = (a - top).exp()
                best = (ea.sum(1) @ exp_trans).clamp_min(1e-300).log() + top[:, 0]
                step = (ea @ exp_trans).clamp_min(1e-300).log() + top
            new = torch.full_like(a, float("-inf"))
            new[:, 0] = torch.where(gap, neg, best)
            new[:, 1:] = torch.where(gap, step[:, :-1], neg)
            alphas.append(new + emit[:, j][:, None, :])
        picks_k, picks_r = [None] * len(alphas), [None] * len(alphas)
        for i in range(len(alphas) - 1, -1, -1):
            score = alphas[i].clone()  # [N, R+1, K]
            if i < len(alphas) - 1:
                score = score + trans[:, picks_k[i + 1]].T[:, None, :]
                nk, nr = picks_k[i + 1], picks_r[i + 1]
                # a gap column at run r came from run r - 1; a non-gap column from any run
                fixed = gap[nk]
                mask = torch.ones_like(score, dtype=torch.bool)
                runs = torch.arange(r_max + 1)[None, :]
                mask[fixed] = (runs == (nr[fixed] - 1)[:, None])[:, :, None].expand(-1, -1, k)
                score = score.masked_fill(~mask, float("-inf"))
            flat = score.reshape(n, -1)
            if self.temperature <= 0:
                choice = flat.argmax(1)
            else:
                choice = torch.multinomial(torch.softmax(flat, 1).float(), 1, generator=g)[:, 0]
            picks_r[i], picks_k[i] = choice // k, choice % k
        out = logp.argmax(1).numpy()
        for i, j in enumerate(range(start, w)):
            out[:, :, j] = self.columns_[picks_k[i].numpy()]
        return out

    # ------------------------------------------------------------------ generation
    def sample_windows(
        self,
        n: int,
        counts: dict[str, float] | None = None,
        blend: dict[str, float] | None = None,
        seed: int = 0,
        search: int | None = None,
    ) -> np.ndarray:
        """``n`` windows; with ``counts`` the best of ``search`` (default ``candidates``) decodes by count
        error is kept for each."""
        self._check_fitted()
        rng = np.random.default_rng(seed)
        k = (search or self.candidates) if counts else 1
        if self.latent_noise is None or blend:  # (kept as it was: same draws as before latent_noise)
            want = np.repeat(self._draw_counts(n, counts, rng), k, 0)
            z = self._blend_latents(n * k, blend, rng)
        else:
            z, want = self._draw(n * k, counts, blend, rng)
        grids = self.decode(z, want).reshape(n, k, self.height, self.width)
        if k == 1:
            return grids[:, 0]
        cols = [COUNT_NAMES.index(name) for name in counts]
        got = count_matrix(grids.reshape(n * k, self.height, self.width), self.vocab_).reshape(n, k, -1)
        err = np.abs(got[:, :, cols] - want.reshape(n, k, -1)[:, :, cols]).sum(2)
        return grids[np.arange(n), err.argmin(1)]

    def generate(
        self,
        n: int = 1,
        width: int = 150,
        counts: dict[str, float] | None = None,
        blend: dict[str, float] | None = None,
        seed: int = 0,
        playable: bool = True,
    ) -> list[Level]:
        """``n`` levels ``width`` columns wide, stitched from windows (see the module docstring)."""
        self._check_fitted()
        if width < self.width:
            raise DataError(f"--width {width}: expected at least the window width {self.width}")
        rng = np.random.default_rng(seed)
        return [self._stitch(width, counts, blend, rng, playable, f"generated-{seed}-{i}") for i in range(n)]

    def _stitch(
        self,
        width: int,
        counts: dict | None,
        blend: dict | None,
        rng: np.random.Generator,
        playable: bool,
        name: str,
    ) -> Level:
        step = self.width - self.overlap
        starts = getattr(self, "start_windows_", None)
        if self.start_prompt and starts is not None and len(starts):
            # the level begins as a training level begins (its first ``overlap`` columns, plain ground in
            # SMB); the first window is then stitched onto them like any seam
            level = starts[rng.integers(len(starts))][:, : self.overlap].copy()
        else:
            level = self.sample_windows(1, counts, blend, seed=int(rng.integers(2**31)))[0]
        legend = self.vocab_.legend
        chars = self.vocab_.chars
        while level.shape[1] < width:
            m = self.candidates
            z, want = self._draw(m, counts, blend, rng)
            logits = self._logits(z, want)
            logp = torch.log_softmax(logits[:, :, :, : self.overlap], 1)
            tail = torch.as_tensor(level[:, -self.overlap :], device=logp.device)
            score = logp.gather(1, tail.expand(m, -1, -1).unsqueeze(1)).sum((1, 2, 3))
            grids = self._tiles(logits, z, prev=level[:, -1], start=self.overlap, run=self._run(level))
            if counts:
                cols = [COUNT_NAMES.index(k) for k in counts]
                err = np.abs(count_matrix(grids, self.vocab_)[:, cols] - want[:, cols]).sum(1)
                order = np.lexsort((-to_numpy(score), err))
            else:
                order = np.argsort(-to_numpy(score))
            chosen = grids[order[0]]
            if playable:
                for idx in order:
                    trial = np.hstack([level, grids[idx][:, self.overlap :]])
                    if astar(np.array(list(chars))[trial[:, -3 * step - self.overlap :]], legend).playable:
                        chosen = grids[idx]
                        break
            level = np.hstack([level, chosen[:, self.overlap :]])
        codes = level[:, :width]
        return Level(
            grid=self.vocab_.decode(codes),
            legend=dict(legend),
            name=name,
            game="+".join(self.games_) if blend else self.games_[0],
        )

    def _run(self, level: np.ndarray) -> int:
        """Chasm columns that end ``level`` (codes)."""
        gap = gap_columns(level.T, self.vocab_)
        run = 0
        for g in gap[::-1]:
            if not g:
                break
            run += 1
        return run

    def interpolate(self, a: np.ndarray, b: np.ndarray, steps: int = 8) -> np.ndarray:
        """Windows decoded along the straight line between the latents of windows ``a`` and ``b``."""
        za, zb = self.encode(np.stack([a, b]))
        t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
        counts = None
        if self.condition_counts:
            ca, cb = count_matrix(np.stack([a, b]), self.vocab_)
            counts = (1 - t) * ca + t * cb
        return self.decode((1 - t) * za + t * zb, counts)

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> dict[str, Any]:
        return {
            **self._vocabulary_state(),
            "count_scale": self.count_scale_.tolist(),
            "n_windows": self.n_windows_,
            "max_gap": getattr(self, "max_gap_", None),
            "gap_limits": None
            if getattr(self, "gap_limits_", None) is None
            else [int(v) for v in self.gap_limits_],
        }

    def _set_state(self, state: dict[str, Any], directory: Path) -> None:
        self._set_vocabulary_state(state)
        self.count_scale_ = np.asarray(state["count_scale"], np.float32)
        self.n_windows_ = int(state["n_windows"])
        self.max_gap_ = state.get("max_gap")
        self.gap_limits_ = state.get("gap_limits")  # absent in models saved before the tile chasm limit
        arrays = self._load_arrays(Path(directory) / ARRAYS_FILE)
        self.train_counts_ = arrays["train_counts"]
        self.train_game_ = arrays["train_game"]
        self.latents_ = arrays["latents"]
        self.columns_ = arrays.get("columns")
        self.column_bigrams_ = arrays.get("column_bigrams")
        self.start_windows_ = arrays.get("start_windows")  # absent in models saved before start prompts

    def _save_files(self, directory: Path) -> None:
        arrays = {
            "train_counts": self.train_counts_,
            "train_game": self.train_game_,
            "latents": self.latents_,
        }
        if getattr(self, "columns_", None) is not None:  # absent in models saved before column decoding
            arrays.update(columns=self.columns_, column_bigrams=self.column_bigrams_)
        if getattr(self, "start_windows_", None) is not None:
            arrays["start_windows"] = self.start_windows_
        self._save_arrays(directory / ARRAYS_FILE, arrays)
