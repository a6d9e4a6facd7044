"""Can a side-scrolling level be finished? Two checkers built on different ideas, so one checks the other.

:func:`astar` — a tile-grid A* agent. The player is one tile; time runs in ticks. On the ground it walks
one column per tick or jumps; a jump rises one row per tick for up to ``max_jump`` ticks (it may stop
rising earlier: a variable-height jump), then it falls one row per tick; in the air it moves at most one
column per tick, and it may step sideways onto a floor beside it. So the highest ledge it climbs is
``max_jump`` rows and the widest gap it crosses at the same height is ``2 * max_jump`` empty columns
(:meth:`Physics.max_gap`; SMB 3-1 has an 8-column gap crossed with a running jump). Solid tiles block;
enemies and other damaging tiles kill the player unless it lands on them from above (a stomp); falling out
of the bottom kills. Goal: any cell of the last column. The path found is returned for drawing.

:func:`ballistic` — an independent checker: parabolic jumps in continuous space (gravity ``g``, take-off
speed for several apex heights, several horizontal speeds) sampled finely, traced through the tile grid
from every standing spot, breadth-first over the standing spots reached. It shares no code with the A*.

Tile roles come from the legend's tags: ``solid``/``solidtop`` block (and can be stood on unless
``damaging``), ``enemy``/``damaging`` are hazards, everything else is air.

Defaults follow Super Mario Bros: small Mario clears about four tiles of height; the widest gap in the
15 VGLC levels is within reach. Kid Icarus climbs upwards and is not checked here.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

AIR, SOLID, HAZARD, PLATFORM = 0, 1, 2, 3  # PLATFORM: can be stood on, blocks nothing (one-way)


@dataclass(frozen=True)
class Physics:
    """The player's jump, in tiles: ``max_jump`` rows of rise; one row / one column per tick."""

    max_jump: int = 4

    @property
    def max_gap(self) -> int:
        """Widest run of empty columns crossable between two floors at the same height."""
        return 2 * self.max_jump


@dataclass
class PlayResult:
    playable: bool
    path: list[tuple[int, int]] = field(default_factory=list)  # (row, col) cells, start to end
    furthest: int = 0  # furthest column reached
    expanded: int = 0  # states the search expanded


def roles(grid: np.ndarray, legend: dict[str, list[str]]) -> np.ndarray:
    """The tile grid as AIR / SOLID / HAZARD / PLATFORM codes read from the legend's tags."""
    table = {}
    for char, tags in legend.items():
        if "solid" in tags:
            table[char] = HAZARD if "damaging" in tags else SOLID
        elif "solidtop" in tags:
            table[char] = PLATFORM
        elif "enemy" in tags or "damaging" in tags:
            table[char] = HAZARD
        else:
            table[char] = AIR
    flat = np.array([table.get(ch, AIR) for ch in grid.ravel()], dtype=np.int8)
    return flat.reshape(grid.shape)


def _solid_hazard(role: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(blocks the body, can be stood on, harms on contact) masks; solid hazards block and harm."""
    block = role == SOLID
    stand = (role == SOLID) | (role == PLATFORM)
    harm = role == HAZARD
    # solid damaging tiles (spikes) block and cannot be stood on
    return block, stand, harm


def start_cell(stand: np.ndarray, block: np.ndarray, harm: np.ndarray,
               columns: int = 3) -> tuple[int, int] | None:
    """The lowest free cell standing on ground in the first ``columns`` columns (None: no ground)."""
    rows, cols = stand.shape
    for c in range(min(columns, cols)):
        for r in range(rows - 2, -1, -1):
            if stand[r + 1, c] and not block[r, c] and not harm[r, c]:
                return r, c
    return None


def astar(grid: np.ndarray, legend: dict[str, list[str]], physics: Physics | None = None) -> PlayResult:
    """Search from the start to the last column (see the module docstring)."""
    physics = physics or Physics()
    role = roles(grid, legend)
    block, stand, harm = _solid_hazard(role)
    rows, cols = grid.shape
    start = start_cell(stand, block, harm)
    if start is None:
        return PlayResult(False)
    goal = cols - 1

    def free(r: int, c: int, falling: bool) -> bool:
        if c < 0 or c >= cols or r < 0:
            return False
        if r >= rows:
            return False  # out of the bottom: dead
        if block[r, c] or (harm[r, c] and not falling):
            return False
        return True

    def grounded(r: int, c: int) -> bool:
        return r + 1 < rows and bool(stand[r + 1, c])

    def diag(r2: int, c2: int, r: int, c: int, falling: bool) -> bool:
        """A diagonal step needs one of the two cells beside it open (no squeezing through corners)."""
        return c2 == c or free(r2, c, falling) or free(r, c2, False)

    def moves(state: tuple[int, int, int]):
        r, c, rise = state
        on_ground = rise == 0 and grounded(r, c)
        out = []
        if on_ground:
            for dx in (1, -1):
                if free(r, c + dx, False):
                    out.append((r, c + dx, 0))
            for dx in (1, 0, -1):
                if free(r - 1, c + dx, False) and diag(r - 1, c + dx, r, c, False):
                    out.append((r - 1, c + dx, physics.max_jump - 1))
            return out
        if rise > 0:
            for dx in (1, 0, -1):
                if free(r - 1, c + dx, False) and diag(r - 1, c + dx, r, c, False):
                    out.append((r - 1, c + dx, rise - 1))
        for dx in (1, 0, -1):  # falling (or ending the rise early)
            if free(r + 1, c + dx, True) and diag(r + 1, c + dx, r, c, True):
                out.append((r + 1, c + dx, 0))
        # landing sideways: in the air next to a floor one can step onto it at the same row
        for dx in (1, -1):
            if free(r, c + dx, False) and grounded(r, c + dx):
                out.append((r, c + dx, 0))
        return out

    s0 = (start[0], start[1], 0)
    best = {s0: 0}
    parent: dict[tuple[int, int, int], tuple[int, int, int] | None] = {s0: None}
    heap = [(goal - start[1], 0, s0)]
    furthest, expanded = start[1], 0
    end = None
    while heap:
        _, g, state = heapq.heappop(heap)
        if g > best.get(state, math.inf):
            continue
        expanded += 1
        furthest = max(furthest, state[1])
        if state[1] == goal:
            end = state
            break
        for nxt in moves(state):
            ng = g + 1
            if ng < best.get(nxt, math.inf):
                best[nxt] = ng
                parent[nxt] = state
                heapq.heappush(heap, (ng + goal - nxt[1], ng, nxt))
    if end is None:
        return PlayResult(False, furthest=furthest, expanded=expanded)
    path = []
    node: tuple[int, int, int] | None = end
    while node is not None:
        path.append((node[0], node[1]))
        node = parent[node]
    return PlayResult(True, path[::-1], furthest=goal, expanded=expanded)


# ------------------------------------------------------------------------------------------ ballistic
@dataclass(frozen=True)
class Ballistics:
    """Continuous jumps: gravity 1 tile/s^2, apex heights (tiles), horizontal speeds (tiles/s)."""

    apexes: tuple[float, ...] = (0.0, 1.2, 2.2, 3.2, 4.2)
    speeds: tuple[float, ...] = (0.0, 0.2, 0.5, 0.75, 1.0, 1.25, 1.5)
    offsets: tuple[float, ...] = (0.15, 0.5, 0.85)  # take-off point within the tile
    dt: float = 0.05


@functools.lru_cache(maxsize=16)
def _trajectories(ball: Ballistics, depth: int) -> list[list[tuple[int, int]]]:
    """Cells (d_row, d_col) each jump passes through, relative to the take-off cell, in order, until it has
    fallen ``depth`` rows below take-off. Feet at height h (tiles above the take-off floor) are in row
    offset -floor(h); the body starts at the cell's centre."""
    out: list[list[tuple[int, int]]] = []
    for apex in ball.apexes:
        v0 = math.sqrt(2.0 * apex)
        for speed in ball.speeds:
            for sign, x0 in itertools.product((1, -1) if speed > 0 else (1,), ball.offsets):
                cells: list[tuple[int, int]] = []
                t = 0.0
                while True:
                    t += ball.dt
                    height = v0 * t - 0.5 * t * t
                    if -height > depth:
                        break
                    cell = (-math.floor(height), math.floor(x0 + sign * speed * t))
                    if cell != (0, 0) and (not cells or cells[-1] != cell):
                        cells.append(cell)
                if cells not in out:
                    out.append(cells)
    return out


def ballistic(grid: np.ndarray, legend: dict[str, list[str]], ball: Ballistics | None = None) -> bool:
    """Breadth-first over standing spots, moving by walking and by sampled parabolic jumps."""
    ball = ball or Ballistics()
    role = roles(grid, legend)
    block, stand, harm = _solid_hazard(role)
    rows, cols = grid.shape
    start = start_cell(stand, block, harm)
    if start is None:
        return False
    trajectories = _trajectories(ball, rows)
    seen = {start}
    queue = deque([start])
    while queue:
        r, c = queue.popleft()
        if c == cols - 1:
            return True
        targets = []
        for dc in (1, -1):  # walk along the floor, or step off it
            cc = c + dc
            if 0 <= cc < cols and not block[r, cc] and not harm[r, cc]:
                targets.append(_drop(r, cc, stand, harm))
        for cells in trajectories:
            targets.append(_fly(r, c, cells, block, stand, harm))
        for target in targets:
            if target is None:
                continue
            if target[1] == cols - 1:
                return True
            if target not in seen:
                seen.add(target)
                queue.append(target)
    return False


def _drop(r: int, c: int, stand: np.ndarray, harm: np.ndarray) -> tuple[int, int] | None:
    """Fall straight down from (r, c) to the first floor (stomping enemies); None: out of the level."""
    rows = stand.shape[0]
    while r + 1 < rows:
        if stand[r + 1, c]:
            return r, c
        r += 1
    return None


def _fly(r: int, c: int, cells: list[tuple[int, int]], block: np.ndarray, stand: np.ndarray,
         harm: np.ndarray) -> tuple[int, int] | None:
    """Follow one trajectory from (r, c): land on the first floor met while descending; a wall or a
    ceiling ends the arc and the body drops from where it was; a hazard touched while not descending
    (or the bottom of the level) ends the run."""
    rows, cols = block.shape
    prev = (r, c)
    for dr, dc in cells:
        rr, cc = r + dr, c + dc
        if cc < 0:
            return None
        if cc >= cols:
            return (prev[0], cols - 1)
        if rr >= rows:
            return None
        if rr < 0 or block[rr, cc]:
            return _drop(prev[0], prev[1], stand, harm)
        descending = rr > prev[0]
        if harm[rr, cc] and not descending:
            return None
        if descending and rr + 1 < rows and stand[rr + 1, cc]:
            return rr, cc
        prev = (rr, cc)
    return None
