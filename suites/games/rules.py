"""A rule-based Super Mario Bros-style level generator: the demo's embedded level source.

No level files ship with a registry package, so the demo (and the page without reference data) trains on
levels these rules write in the VGLC format with the SMB legend: ground two tiles thick with gaps no
wider than the A* agent can jump, pipes two to four tiles tall, brick and question-block platforms four
rows above the floor, stairs, enemies walking on floors, coins above platforms. Every level is checked
with the A* agent and rebuilt until it is playable, so the demo's training data is known to be playable.
These levels are generated (the demo says so); they are not Nintendo's levels.
"""

from __future__ import annotations

import numpy as np

from genforge.games.data import SMB_LEGEND, Level
from genforge.games.playability import astar

HEIGHT = 14
GROUND = 12  # ground occupies rows 12 and 13


def rule_level(width: int = 120, seed: int = 0, enemies: float = 0.08, max_tries: int = 20) -> Level:
    """One playable level ``width`` columns wide (deterministic in ``seed``)."""
    rng = np.random.default_rng(seed)
    for _ in range(max_tries):
        grid = _draft(width, rng, enemies)
        if astar(grid, SMB_LEGEND).playable:
            return Level(grid=grid, legend=dict(SMB_LEGEND), name=f"rules-{seed}", game="rules-smb")
    raise RuntimeError(f"rule_level: no playable level in {max_tries} drafts (seed {seed})")


def rule_levels(n: int, width: int = 120, seed: int = 0) -> list[Level]:
    return [rule_level(width, seed * 100_003 + i) for i in range(n)]


def _draft(width: int, rng: np.random.Generator, enemy_rate: float) -> np.ndarray:
    g = np.full((HEIGHT, width), "-", dtype="<U1")
    g[GROUND:, :] = "X"
    c = 6  # a safe start
    while c < width - 8:
        feature = rng.choice(["flat", "gap", "pipe", "platform", "stairs", "enemy"],
                             p=[0.25, 0.15, 0.15, 0.2, 0.1, 0.15])
        if feature == "flat":
            c += int(rng.integers(2, 6))
        elif feature == "gap":
            w = int(rng.integers(1, 5))
            g[GROUND:, c:c + w] = "-"
            c += w + int(rng.integers(2, 4))
        elif feature == "pipe":
            h = int(rng.integers(2, 5))
            top = GROUND - h
            g[top, c:c + 2] = ["<", ">"]
            g[top + 1:GROUND, c] = "["
            g[top + 1:GROUND, c + 1] = "]"
            c += 2 + int(rng.integers(2, 5))
        elif feature == "platform":
            w = int(rng.integers(3, 7))
            row = GROUND - 4
            blocks = rng.choice(["S", "?", "Q"], size=w, p=[0.6, 0.3, 0.1])
            g[row, c:c + w] = blocks
            if rng.random() < 0.5:
                g[row - 1, c:c + w] = "o"
            if rng.random() < 0.3:
                g[row - 1 - 3, c + 1:c + w - 1] = "S"
            c += w + int(rng.integers(2, 4))
        elif feature == "stairs":
            h = int(rng.integers(2, 5))
            for i in range(h):
                g[GROUND - 1 - i:GROUND, c + i] = "X"
            c += h + int(rng.integers(2, 4))
        else:
            for i in range(int(rng.integers(1, 3))):
                if c + 2 * i < width - 8:
                    g[GROUND - 1, c + 2 * i] = "E"
            c += int(rng.integers(3, 6))
        if rng.random() < enemy_rate and g[GROUND, c - 1] == "X" and g[GROUND - 1, c - 1] == "-":
            g[GROUND - 1, c - 1] = "E"
    return g
