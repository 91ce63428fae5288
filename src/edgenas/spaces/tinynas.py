"""TinyNAS search-space optimisation (MCUNet), and the fast chain cost that makes it cheap.

MCUNet picks the (width multiplier, resolution) sub-space whose models that *fit the device*
have the most MACs: more computation that still fits means more capacity, hence higher
accuracy. Finding it takes costing ~1,000 random models per sub-space, so the cost has to be
cheap. Networks of the mobilenet/mcunet/resnet spaces are chains of units (stem, blocks,
head) with no connection across units, so a network's cost is the sum of its units' costs
(the max, for peak SRAM) and each unit's cost depends only on its description and input
shape: :class:`ChainSpace` caches it, and a network costs a few dictionary look-ups.
"""

from __future__ import annotations

import dataclasses
from abc import abstractmethod
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from edgenas.blocks.base import Block, Seq, graph_of
from edgenas.cost import PEAK_METHODS, Cost, Precision, estimate
from edgenas.errors import EdgenasError
from edgenas.hardware.devices import DeviceProfile
from edgenas.ops import Shape
from edgenas.spaces.base import Arch, SearchSpace


class _UnitCost(NamedTuple):
    params: int
    macs: int
    all_ops: int
    flash_bytes: int
    peaks: tuple[int, ...]  # bytes, one per method of PEAK_METHODS
    layers: tuple[str, ...]  # where each peak is
    out_shape: Shape


class ChainSpace(SearchSpace):
    """A space whose network is ``Seq`` of named units, each described by a hashable key.

    Subclasses give ``units(values, num_classes)`` and ``unit_block(key)``; ``block`` and the
    cached ``fast_cost`` follow. ``fast_cost`` equals ``cost`` exactly (tested): no buffer
    crosses a unit boundary except the unit's input and output.
    """

    def __init__(self) -> None:
        self._unit_costs: dict[tuple, _UnitCost] = {}

    @abstractmethod
    def units(self, values: dict[str, Any], num_classes: int) -> list[tuple[str, Hashable]]:
        """(module name, unit key) of every unit, in forward order."""

    @abstractmethod
    def unit_block(self, key: Hashable) -> Block:
        """The block spec a unit key stands for."""

    def input_shape_of(self, values: dict[str, Any]) -> Shape:
        return (3, int(values["resolution"]), int(values["resolution"]))

    def input_shape(self, arch: Arch) -> Shape:
        return self.input_shape_of(arch.values)

    def block(self, arch: Arch, num_classes: int = 10) -> Block:
        return Seq(tuple((name, self.unit_block(key)) for name, key in self.units(arch.values, num_classes)))

    def _unit_cost(self, key: Hashable, shape: Shape, precision: Precision) -> _UnitCost:
        cache_key = (key, shape, precision)
        found = self._unit_costs.get(cache_key)
        if found is None:
            graph = graph_of(self.unit_block(key), shape)
            c = estimate(graph, precision)
            found = _UnitCost(
                c.params, c.macs, c.all_ops, c.flash_bytes,
                tuple(c.peak_sram_bytes[m] for m in PEAK_METHODS),
                tuple(c.peak_layer[m] for m in PEAK_METHODS),
                graph.shape(graph.output),
            )
            self._unit_costs[cache_key] = found
        return found

    def fast_cost(
        self, values: dict[str, Any], num_classes: int = 10, precision: Precision = "int8"
    ) -> Cost:
        """The cost of the network of ``values`` from cached per-unit costs (no graph built)."""
        shape = self.input_shape_of(values)
        units = self.units(values, num_classes)
        params = macs = all_ops = flash = 0
        methods = len(PEAK_METHODS)
        peak, where = [-1] * methods, [0] * methods
        get = self._unit_costs.get
        seen = []
        for i, (_, key) in enumerate(units):
            u = get((key, shape, precision)) or self._unit_cost(key, shape, precision)
            seen.append(u)
            params += u.params
            macs += u.macs
            all_ops += u.all_ops
            flash += u.flash_bytes
            for m in range(methods):
                if u.peaks[m] > peak[m]:
                    peak[m], where[m] = u.peaks[m], i
            shape = u.out_shape
        layers = {}
        for m, method in enumerate(PEAK_METHODS):
            name, inner = units[where[m]][0], seen[where[m]].layers[m]
            layers[method] = name if inner == "input" else f"{name}.{inner}"
        return Cost(params, macs, all_ops, flash, dict(zip(PEAK_METHODS, peak, strict=True)), layers,
                    precision, graph=None)


# --- TinyNAS sub-space optimisation -----------------------------------------------------------
@dataclass(frozen=True)
class SubspaceResult:
    """One (width, resolution) sub-space: how many sampled models fit, and their MACs."""

    width: float
    resolution: int
    samples: int
    fitting_macs: np.ndarray = field(repr=False)  # sorted MACs of the models that fit
    rank: int = 0

    @property
    def fitting(self) -> int:
        return len(self.fitting_macs)

    @property
    def fraction(self) -> float:
        return self.fitting / self.samples

    @property
    def mean_macs(self) -> float:
        return float(self.fitting_macs.mean()) if self.fitting else 0.0

    @property
    def median_macs(self) -> float:
        return float(np.median(self.fitting_macs)) if self.fitting else 0.0

    @property
    def label(self) -> str:
        return f"w{self.width:g}-r{self.resolution}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank, "width": self.width, "resolution": self.resolution,
            "samples": self.samples, "fitting": self.fitting, "fraction": self.fraction,
            "mean_macs": self.mean_macs, "median_macs": self.median_macs,
        }


def sample_values(
    space: SearchSpace, n: int, rng: np.random.Generator, fixed: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """``n`` random value dicts, each dim drawn uniformly (one vectorised draw per dim).

    Inactive dims keep their draws; they do not change the network, so the cost is the same
    as the normalised arch's. Much cheaper than ``n`` calls of ``space.sample``.
    """
    fixed = fixed or {}
    columns: dict[str, list[Any]] = {}
    for d in space.dims():
        if d.name in fixed:
            continue
        picks = rng.integers(len(d.options), size=n)
        columns[d.name] = [d.options[i] for i in picks]
    return [{**fixed, **{k: col[i] for k, col in columns.items()}} for i in range(n)]


def cost_function(
    space: SearchSpace, num_classes: int, precision: Precision = "int8"
) -> Callable[[dict[str, Any]], tuple[int, int, dict[str, int]]]:
    """values -> (MACs, flash bytes, peak SRAM by method): cached chain cost when the space has one."""
    if isinstance(space, ChainSpace):
        def fast(values: dict[str, Any]) -> tuple[int, int, dict[str, int]]:
            c = space.fast_cost(values, num_classes, precision)
            return c.macs, c.flash_bytes, c.peak_sram_bytes

        return fast

    def slow(values: dict[str, Any]) -> tuple[int, int, dict[str, int]]:
        c = space.cost(space.make(values), num_classes, precision)
        return c.macs, c.flash_bytes, c.peak_sram_bytes

    return slow


def optimize_space(
    space: SearchSpace,
    device: DeviceProfile,
    samples: int = 1000,
    seed: int = 0,
    num_classes: int = 1000,
    method: str = "mcunet",
    on_subspace: Callable[[SubspaceResult], None] | None = None,
    min_fit: float = 0.1,
) -> list[SubspaceResult]:
    """Rank every (width, resolution) sub-space by the mean MACs of its models that fit ``device``.

    Sub-spaces where fewer than ``min_fit`` of the models fit rank after all others: a search
    there would mostly draw models it must reject (``min_fit=0`` is MCUNet's plain rule).

    Each sub-space draws its ``samples`` models from its own generator seeded by
    (``seed``, width index, resolution index), so the same models are judged whatever the
    device: a larger budget can only let more of them fit. Int8 weights and activations.
    """
    dims = {d.name: d for d in space.dims()}
    if "width" not in dims or "resolution" not in dims:
        raise EdgenasError(
            f"space {space.name} has no width and resolution dimensions to optimise; "
            "use a network space such as mcunet, mobilenet or resnet"
        )
    if samples < 1:
        raise EdgenasError(f"--samples must be at least 1, got {samples}")
    if not 0 <= min_fit <= 1:
        raise EdgenasError(f"--min-fit must be a fraction in [0, 1], got {min_fit}")
    if method not in ("mcunet", "liveness"):
        raise EdgenasError(f"unknown peak SRAM method {method!r}; use mcunet or liveness")
    cost = cost_function(space, num_classes)
    results = []
    for wi, width in enumerate(dims["width"].options):
        for ri, res in enumerate(dims["resolution"].options):
            rng = np.random.default_rng((seed, wi, ri))
            fitting = []
            for values in sample_values(space, samples, rng, {"width": width, "resolution": res}):
                macs, flash, peak = cost(values)
                if device.fits(flash, peak[method]):
                    fitting.append(macs)
            macs_fit = np.sort(np.array(fitting, dtype=np.int64))
            result = SubspaceResult(float(width), int(res), samples, macs_fit)
            results.append(result)
            if on_subspace is not None:
                on_subspace(result)
    order = sorted(
        results, key=lambda r: (r.fraction < min_fit, -r.mean_macs, -r.fraction, r.width, r.resolution)
    )
    return [dataclasses.replace(r, rank=i + 1) for i, r in enumerate(order)]


def plot_cdf(
    results: Sequence[SubspaceResult], path: str | Path, device: DeviceProfile, top: int = 5
) -> Path:
    """MACs CDF of the fitting models of the ``top`` sub-spaces (MCUNet Fig. 3 style), as PNG."""
    from matplotlib.figure import Figure

    shown = [r for r in results if r.fitting][:top]
    if not shown:
        raise EdgenasError(
            f"no sampled model fits {device.name}; raise --sram/--flash or pick a bigger device"
        )
    fig = Figure(figsize=(7.5, 4.6), layout="constrained")
    ax = fig.subplots()
    for r in shown:
        x = r.fitting_macs / 1e6
        y = np.arange(1, len(x) + 1) / len(x)
        ax.step(x, y, where="post", linewidth=1.8,
                label=f"#{r.rank} {r.label}: mean {r.mean_macs / 1e6:.1f}M, {r.fraction:.0%} fit")
    limits = ", ".join(
        f"{what} {v // 1024:,} kB" for what, v in (("SRAM", device.sram_bytes), ("flash", device.flash_bytes))
        if v is not None
    )
    ax.set_title(f"MACs of models that fit {device.name} ({limits or 'no limits'}); right is better")
    ax.set_xlabel("MACs (millions)")
    ax.set_ylabel("cumulative fraction of fitting models")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8, title="sub-space (width-resolution)", title_fontsize=8)
    out = Path(path)
    fig.savefig(out, dpi=120)
    return out
