"""Pareto fronts and hypervolume for any metrics, each maximised or minimised.

Points are rows of an ``(n, m)`` array (or dicts of metrics, see :func:`as_points`); ``goals``
gives ``"max"`` or ``"min"`` per column. Internally every column is turned into one to
minimise, so "a dominates b" means a is no worse in every metric and better in one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from edgenas.errors import EdgenasError
from edgenas.search.strategies.base import Goal, Objective


def _minimised(points: np.ndarray | Sequence[Sequence[float]], goals: Sequence[Goal]) -> np.ndarray:
    p = np.asarray(points, dtype=np.float64)
    if p.ndim == 1 and p.size == 0:
        p = p.reshape(0, len(goals))
    if p.ndim != 2 or p.shape[1] != len(goals):
        raise EdgenasError(f"points must be an (n, {len(goals)}) array, one column per goal; got {p.shape}")
    bad = [g for g in goals if g not in ("max", "min")]
    if bad:
        raise EdgenasError(f"goal {bad[0]!r} is not 'max' or 'min'")
    sign = np.array([-1.0 if g == "max" else 1.0 for g in goals])
    return p * sign


def as_points(rows: Sequence[Mapping[str, float]], objectives: Sequence[Objective]) -> np.ndarray:
    """An ``(n, len(objectives))`` array of the objectives' metrics, one row per result."""
    try:
        return np.array([[float(r[o.name]) for o in objectives] for r in rows], dtype=np.float64).reshape(
            len(rows), len(objectives)
        )
    except KeyError as e:
        raise EdgenasError(
            f"a result has no metric {e.args[0]!r}; choose objectives among its metrics"
        ) from None


def dominates(a: Sequence[float], b: Sequence[float], goals: Sequence[Goal]) -> bool:
    """True when ``a`` is no worse than ``b`` in every metric and strictly better in one."""
    x, y = _minimised([a, b], goals)
    return bool(np.all(x <= y) and np.any(x < y))


Points = np.ndarray | Sequence[Sequence[float]]


def non_dominated_sort(points: Points, goals: Sequence[Goal]) -> list[list[int]]:
    """Indices of the successive fronts (Deb et al.'s fast non-dominated sort), each ascending.

    Front 0 is the Pareto front; front k is the Pareto front once fronts < k are removed.
    Equal points never dominate each other, so they share a front.
    """
    p = _minimised(points, goals)
    n = len(p)
    if n == 0:
        return []
    le = np.all(p[:, None, :] <= p[None, :, :], axis=2)
    lt = np.any(p[:, None, :] < p[None, :, :], axis=2)
    dom = le & lt  # dom[i, j]: i dominates j
    count = dom.sum(axis=0)  # how many points dominate j
    fronts: list[list[int]] = []
    current = [int(i) for i in np.flatnonzero(count == 0)]
    while current:
        fronts.append(current)
        nxt: list[int] = []
        for i in current:
            for j in np.flatnonzero(dom[i]):
                count[j] -= 1
                if count[j] == 0:
                    nxt.append(int(j))
        current = sorted(nxt)
    return fronts


def pareto_front(points: np.ndarray | Sequence[Sequence[float]], goals: Sequence[Goal]) -> list[int]:
    """Indices (ascending) of the points no other point dominates."""
    fronts = non_dominated_sort(points, goals)
    return fronts[0] if fronts else []


def front_of(rows: Sequence[Mapping[str, float]], objectives: Sequence[Objective]) -> list[int]:
    """Indices of the Pareto-optimal results among dicts of metrics."""
    return pareto_front(as_points(rows, objectives), [o.goal for o in objectives])


def hypervolume(
    points: np.ndarray | Sequence[Sequence[float]], reference: Sequence[float], goals: Sequence[Goal]
) -> float:
    """Volume dominated by ``points`` and bounded by ``reference`` (a point worse than all).

    Exact: a sweep in 2-D, recursive slicing along the last metric beyond (fine for the
    fronts of a search, tens to hundreds of points). Points not strictly better than the
    reference in every metric add nothing.
    """
    p = _minimised(points, goals)
    ref = _minimised([reference], goals)[0]
    p = p[np.all(p < ref, axis=1)]
    if len(p) == 0:
        return 0.0
    p = p[pareto_front(p, ["min"] * p.shape[1])]
    return float(_hv(p, ref))


def _hv(p: np.ndarray, ref: np.ndarray) -> float:
    """Hypervolume of minimisation points that all strictly dominate ``ref``."""
    if len(p) == 0:
        return 0.0
    d = p.shape[1]
    if d == 1:
        return float(ref[0] - p[:, 0].min())
    if d == 2:
        order = np.lexsort((p[:, 1], p[:, 0]))  # by x, then y
        total, prev_y = 0.0, ref[1]
        for x, y in p[order]:
            if y < prev_y:
                total += (ref[0] - x) * (prev_y - y)
                prev_y = y
        return total
    p = p[np.argsort(p[:, -1], kind="stable")]
    total = 0.0
    for i in range(len(p)):
        top = p[i + 1, -1] if i + 1 < len(p) else ref[-1]
        if top > p[i, -1]:
            slab = p[: i + 1, :-1]
            slab = slab[pareto_front(slab, ["min"] * (d - 1))]
            total += _hv(slab, ref[:-1]) * (top - p[i, -1])
    return total
