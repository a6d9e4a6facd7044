"""The A* agent and the independent ballistic checker, validated as a checker must be."""

from __future__ import annotations

import numpy as np
import pytest

from genforge.games import SMB_LEGEND, Physics, astar, ballistic, parse_level


def level(rows: list[str]):
    return parse_level("\n".join(rows), legend=SMB_LEGEND)


FLAT = ["-" * 20] * 12 + ["X" * 20] * 2


def with_gap(width: int) -> list[str]:
    return ["-" * 30] * 12 + ["X" * 10 + "-" * width + "X" * (20 - width)] * 2


def test_flat_level_is_playable_and_the_path_spans_it():
    result = astar(level(FLAT).grid, SMB_LEGEND)
    assert result.playable and result.path[0][1] == 0 and result.path[-1][1] == 19
    assert ballistic(level(FLAT).grid, SMB_LEGEND)


@pytest.mark.parametrize("width", [1, 4, Physics().max_gap])
def test_jumpable_gaps(width):
    grid = level(with_gap(width)).grid
    assert astar(grid, SMB_LEGEND).playable and ballistic(grid, SMB_LEGEND)


def test_too_wide_gap_fails():
    grid = level(with_gap(Physics().max_gap + 2)).grid
    assert not astar(grid, SMB_LEGEND).playable and not ballistic(grid, SMB_LEGEND)


def test_wall_height():
    low = [r if i < 9 else r[:10] + "X" + r[11:] for i, r in enumerate(FLAT[:12])] + FLAT[12:]  # 3 high
    high = [r[:10] + "X" + r[11:] for r in FLAT[:12]] + FLAT[12:]  # 12 high
    assert astar(level(low).grid, SMB_LEGEND).playable and ballistic(level(low).grid, SMB_LEGEND)
    assert not astar(level(high).grid, SMB_LEGEND).playable
    assert not ballistic(level(high).grid, SMB_LEGEND)


def test_enemies_are_hazards_but_can_be_jumped():
    rows = list(FLAT)
    rows[11] = "-" * 8 + "E" + "-" * 11
    assert astar(level(rows).grid, SMB_LEGEND).playable
    low_ceiling = list(rows)
    low_ceiling[10] = "X" * 20  # no room to jump: the enemy cannot be passed
    assert not astar(level(low_ceiling).grid, SMB_LEGEND).playable
    assert not ballistic(level(low_ceiling).grid, SMB_LEGEND)
    low_ceiling[11] = "-" * 20
    assert astar(level(low_ceiling).grid, SMB_LEGEND).playable


def test_every_real_smb_level_passes_and_negative_controls_fail(smb_levels):
    for lv in smb_levels:
        assert astar(lv.grid, lv.legend).playable, lv.name
        assert ballistic(lv.grid, lv.legend), lv.name
        mid = lv.shape[1] // 2
        wall, chasm, floorless = lv.grid.copy(), lv.grid.copy(), lv.grid.copy()
        wall[:, mid] = "X"
        chasm[:, mid:mid + 24] = "-"
        floorless[-2:] = "-"
        for grid in (wall, chasm, floorless):
            assert not astar(grid, lv.legend).playable, lv.name
            assert not ballistic(grid, lv.legend), lv.name


def test_some_shuffled_levels_fail(smb_levels):
    rng = np.random.default_rng(0)
    passed = [astar(lv.grid[:, rng.permutation(lv.shape[1])], lv.legend).playable for lv in smb_levels]
    assert 0 < sum(passed) < len(passed)  # a checker that passes everything would be useless
