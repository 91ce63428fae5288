"""Latency tables for a search space: build one from sampled archs, check it on held-out ones.

Building measures every distinct fused layer of ``samples`` random archs, then (optionally)
the archs end to end to calibrate ``scale*sum + offset``. Evaluating samples *other* archs
(another seed), predicts them from the table and measures them, interleaved, on the table's
backend and thread count: rank correlation says whether the search can trust the table to
order archs, MAPE whether it can trust it against an absolute ``max_latency_ms``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from edgenas.blocks.base import graph_of
from edgenas.hardware.latency import measure_many
from edgenas.hardware.lut import LatencyTable, ProgressFn, build_table
from edgenas.ops.graph import LayerGraph
from edgenas.ops.specs import Shape
from edgenas.spaces.base import Arch, SearchSpace


def sample_archs(space: SearchSpace, n: int, seed: int) -> list[Arch]:
    """``n`` distinct random archs of ``space`` (fewer if the space is smaller)."""
    rng = np.random.default_rng(seed)
    seen: dict[str, Arch] = {}
    for _ in range(20 * n):
        if len(seen) == n:
            break
        arch = space.sample(rng)
        seen.setdefault(arch.key(), arch)
    return list(seen.values())


def build_space_table(
    space: SearchSpace, samples: int = 30, seed: int = 0, backend: str = "torch", runs: int = 20,
    warmup: int = 3, threads: int = 1, num_classes: int = 10, calibrate: bool = True,
    progress: ProgressFn | None = None,
) -> LatencyTable:
    """A table of every distinct layer of ``samples`` archs of ``space``, calibrated on them.

    The archs themselves are measured in the same interleaved rounds as their layers.
    """
    archs = sample_archs(space, samples, seed)
    graphs = [space.graph(a, num_classes) for a in archs]
    modules = [space.build(a, num_classes) for a in archs] if calibrate else None
    return build_table(
        graphs, backend, runs, warmup, threads, source=f"{space.name} x{len(archs)} seed {seed}",
        progress=progress, seed=seed, modules=modules,
    )


@dataclass(frozen=True)
class TableEval:
    """Predicted vs measured latency of held-out archs."""

    archs: list[str]
    predicted_ms: np.ndarray
    raw_ms: np.ndarray  # uncalibrated per-layer sums
    measured_ms: np.ndarray  # medians
    iqr_ms: np.ndarray
    min_ms: np.ndarray  # fastest run of each arch
    coverage: float  # mean fraction of layers found in the table
    backend: str
    threads: int
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def spearman(self) -> float:
        return float(stats.spearmanr(self.predicted_ms, self.measured_ms).statistic)

    @property
    def kendall(self) -> float:
        return float(stats.kendalltau(self.predicted_ms, self.measured_ms).statistic)

    @property
    def mape(self) -> float:
        """Mean absolute percentage error of the calibrated prediction, in percent."""
        return _mape(self.predicted_ms, self.measured_ms)

    @property
    def mape_raw(self) -> float:
        """Same for the plain per-layer sum (no calibration)."""
        return _mape(self.raw_ms, self.measured_ms)

    @property
    def mape_raw_vs_min(self) -> float:
        """Plain per-layer sum against each arch's fastest run (what an idle machine shows)."""
        return _mape(self.raw_ms, self.min_ms)

    def summary(self) -> dict[str, float | int | str]:
        return {
            "archs": len(self.archs), "backend": self.backend, "threads": self.threads,
            "spearman": self.spearman, "kendall": self.kendall, "mape_pct": self.mape,
            "mape_raw_pct": self.mape_raw, "mape_raw_vs_min_pct": self.mape_raw_vs_min,
            "coverage": self.coverage, "measured_min_ms": float(self.measured_ms.min()),
            "measured_max_ms": float(self.measured_ms.max()),
        }

    def rows(self) -> list[dict[str, float | str]]:
        cols = (self.predicted_ms, self.raw_ms, self.measured_ms, self.iqr_ms, self.min_ms)
        names = ("predicted_ms", "layer_sum_ms", "measured_ms", "iqr_ms", "min_ms")
        return [
            {"arch": arch, **{n: float(c[i]) for n, c in zip(names, cols, strict=True)}}
            for i, arch in enumerate(self.archs)
        ]


def _mape(pred: np.ndarray, true: np.ndarray) -> float:
    return float(np.mean(np.abs(pred - true) / true) * 100)


def evaluate_graphs(
    table: LatencyTable, names: list[str], graphs: list[LayerGraph], modules: list, runs: int = 20,
    warmup: int = 3, progress: ProgressFn | None = None, seed: int = 1,
) -> TableEval:
    """Predict ``graphs`` from ``table`` and measure their ``modules`` on its backend and threads."""
    tick = None if progress is None else (lambda done, total: progress("networks", done, total))
    measured = measure_many(
        [(m, [g.input_shape]) for m, g in zip(modules, graphs, strict=True)], runs, warmup, table.threads,
        table.backend, seed, tick,
    )
    return TableEval(
        archs=names,
        predicted_ms=np.array([table.predict(g) for g in graphs]),
        raw_ms=np.array([table.raw_sum(g) for g in graphs]),
        measured_ms=np.array([s.median_ms for s in measured]),
        iqr_ms=np.array([s.iqr_ms for s in measured]),
        min_ms=np.array([s.min_ms for s in measured]),
        coverage=float(np.mean([table.coverage(g) for g in graphs])),
        backend=table.backend,
        threads=table.threads,
    )


def evaluate_space_table(
    table: LatencyTable, space: SearchSpace, samples: int = 20, seed: int = 1, runs: int = 20,
    warmup: int = 3, num_classes: int = 10, progress: ProgressFn | None = None,
) -> TableEval:
    """Held-out check: ``samples`` archs drawn with ``seed`` (use a seed the table was not built on)."""
    archs = sample_archs(space, samples, seed)
    graphs = [space.graph(a, num_classes) for a in archs]
    modules = [space.build(a, num_classes) for a in archs]
    names = [space.to_string(a) for a in archs]
    return evaluate_graphs(table, names, graphs, modules, runs, warmup, progress, seed)


def chain_latency_fn(
    space: SearchSpace, table: LatencyTable, num_classes: int = 10
) -> Callable[[dict[str, Any]], float]:
    """values -> predicted ms without building the network's graph, for chain spaces.

    A chain space's network is a sequence of units and no fused layer crosses a unit boundary,
    so its raw latency is the sum of its units' (each cached by unit key and input shape),
    with a once-per-network call overhead counted once. Other spaces build the graph.
    """
    from edgenas.spaces.tinynas import ChainSpace

    meta = table.meta
    if not isinstance(space, ChainSpace):
        return lambda values: table.predict(space.graph(space.make(values), num_classes))
    over = meta.call_overhead_ms
    cache: dict[tuple, tuple[float, Shape]] = {}

    def unit(key: Hashable, shape: Shape) -> tuple[float, Shape]:
        found = cache.get((key, shape))
        if found is None:
            graph = graph_of(space.unit_block(key), shape)
            found = cache[(key, shape)] = (table.raw_sum(graph) - over, graph.shape(graph.output))
        return found

    def predict(values: dict[str, Any]) -> float:
        shape = space.input_shape_of(values)
        total = over
        for _, key in space.units(values, num_classes):
            ms, shape = unit(key, shape)
            total += ms
        return meta.scale * total + meta.offset_ms

    return predict
