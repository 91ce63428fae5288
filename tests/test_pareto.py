"""Pareto fronts, non-dominated sorting and hypervolume against hand-computed answers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edgenas.errors import EdgenasError
from edgenas.search.pareto import (
    as_points,
    dominates,
    front_of,
    hypervolume,
    non_dominated_sort,
    pareto_front,
)
from edgenas.search.strategies import Objective


def test_dominates_respects_each_goal():
    assert dominates((90, 100), (80, 200), ["max", "min"])  # more accurate and cheaper
    assert not dominates((90, 300), (80, 200), ["max", "min"])  # a trade-off
    assert not dominates((90, 100), (90, 100), ["max", "min"])  # equal points
    assert dominates((90, 100), (90, 200), ["max", "min"])  # equal in one, better in the other


def test_fronts_of_a_hand_drawn_set():
    # (accuracy max, macs min)
    pts = [(70, 10), (80, 20), (90, 40), (75, 30), (60, 5), (85, 50), (80, 20), (50, 60)]
    # front 0: (70,10) (80,20) (90,40) (60,5) and the duplicate (80,20); (75,30) is beaten by (80,20);
    # (85,50) by (90,40); (50,60) by everything.
    assert non_dominated_sort(pts, ["max", "min"]) == [[0, 1, 2, 4, 6], [3, 5], [7]]
    assert pareto_front(pts, ["max", "min"]) == [0, 1, 2, 4, 6]
    # flipping a goal changes the answer: maximise both -> only (90,40) and (85,50), (50,60)
    assert pareto_front(pts, ["max", "max"]) == [2, 5, 7]


def test_front_of_dict_results_and_missing_metric():
    rows = [{"accuracy": 0.9, "macs": 5e6}, {"accuracy": 0.8, "macs": 9e6}, {"accuracy": 0.7, "macs": 1e6}]
    objs = [Objective("accuracy"), Objective("macs", "min")]
    assert front_of(rows, objs) == [0, 2]
    assert as_points(rows, objs).shape == (3, 2)
    with pytest.raises(EdgenasError, match="no metric 'peak_sram'"):
        front_of(rows, [Objective("peak_sram", "min")])


def test_hypervolume_2d_by_hand():
    # staircase (1,3) (2,2) (3,1), reference (4,4): 3 + 2 + 1 unit squares
    assert hypervolume([(1, 3), (2, 2), (3, 1)], (4, 4), ["min", "min"]) == 6.0
    # the same front as maximisation problem mirrored through the origin
    assert hypervolume([(-1, -3), (-2, -2), (-3, -1)], (-4, -4), ["max", "max"]) == 6.0
    # dominated and out-of-reference points add nothing
    assert hypervolume([(1, 3), (2, 2), (3, 1), (3, 3), (5, 0)], (4, 4), ["min", "min"]) == 6.0
    # mixed goals: accuracy 90 at 2 MMACs, 80 at 1 MMAC; reference (50 %, 4 MMACs)
    # = 40*2 (acc 50..90, macs 2..4) + 30*1 (acc 50..80, macs 1..2) = 110
    assert hypervolume([(90, 2), (80, 1)], (50, 4), ["max", "min"]) == 110.0
    assert hypervolume([], (4, 4), ["min", "min"]) == 0.0


def test_hypervolume_3d_by_hand():
    assert hypervolume([(0, 0, 0)], (1, 2, 3), ["min"] * 3) == 6.0
    # boxes 2x2x1 and 1x1x2 overlapping in a unit cube: 4 + 2 - 1
    assert hypervolume([(0, 0, 1), (1, 1, 0)], (2, 2, 2), ["min"] * 3) == 5.0


def test_hypervolume_matches_grid_counting_in_3d_and_4d():
    """Exact volume of integer points = number of unit cells dominated, counted one by one."""
    rng = np.random.default_rng(3)
    for d in (3, 4):
        pts = rng.integers(0, 5, size=(8, d))
        ref = np.full(d, 5)
        cells = sum(
            1 for c in itertools.product(range(5), repeat=d) if np.any(np.all(pts <= np.array(c), axis=1))
        )
        assert hypervolume(pts, ref, ["min"] * d) == pytest.approx(cells)


def test_bad_shapes_and_goals():
    with pytest.raises(EdgenasError, match="one column per goal"):
        pareto_front([(1, 2, 3)], ["min", "min"])
    with pytest.raises(EdgenasError, match="not 'max' or 'min'"):
        pareto_front([(1, 2)], ["min", "smallest"])
