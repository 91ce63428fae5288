"""Hardware constraints, checked on the analytic cost before any training.

An infeasible arch is never evaluated: the runner tells the strategy it failed and asks again.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

import numpy as np

from edgenas.cost import Cost
from edgenas.errors import EdgenasError
from edgenas.spaces.base import SearchSpace

if TYPE_CHECKING:
    from edgenas.hardware.lut import LatencyTable

KB = 1024


def _num(v: float) -> str:
    """Exact integers with separators; milliseconds to two decimals."""
    return f"{v:,}" if isinstance(v, int) else f"{v:,.2f}"


@dataclass(frozen=True)
class Constraints:
    """Upper bounds; ``None`` means unconstrained. Bytes are int8 (weights and activations)."""

    max_params: int | None = None
    max_macs: int | None = None
    max_flash_bytes: int | None = None
    max_peak_sram_bytes: int | None = None
    max_latency_ms: float | None = None  # predicted from the layer graph by ``latency_table``
    peak_method: str = "mcunet"
    latency_table: LatencyTable | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name, value in self.bounds().items():
            if value is not None and value <= 0:
                raise EdgenasError(f"constraint {name} must be > 0, got {value}")
        if self.max_latency_ms is not None and self.latency_table is None:
            raise EdgenasError(
                "--max-latency-ms needs --latency-table lut.json; "
                "build one with 'edgenas latency table build'"
            )

    def bounds(self) -> dict[str, float | None]:
        """Every bound by name (None: unconstrained); what a journal records."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name.startswith("max_")}

    def measures(self, cost: Cost) -> dict[str, float]:
        """The constrained quantity of ``cost`` for each bound."""
        out: dict[str, float] = {
            "max_params": cost.params,
            "max_macs": cost.macs,
            "max_flash_bytes": cost.flash_bytes,
            "max_peak_sram_bytes": cost.peak_sram_bytes[self.peak_method],
        }
        if self.max_latency_ms is not None and self.latency_table is not None and cost.graph is not None:
            from edgenas.hardware.lut import predict_latency_ms

            out["max_latency_ms"] = predict_latency_ms(cost.graph, self.latency_table)
        return out

    def violations(self, cost: Cost) -> list[str]:
        """Human-readable reasons ``cost`` does not fit, empty when it does."""
        out = []
        for name, value in self.measures(cost).items():
            bound = getattr(self, name)
            if bound is not None and value > bound:
                out.append(f"{name.removeprefix('max_')} {_num(value)} > {_num(bound)}")
        return out

    def feasible(self, cost: Cost) -> bool:
        return not self.violations(cost)

    def active(self) -> dict[str, float]:
        return {k: v for k, v in self.bounds().items() if v is not None}

    def describe(self) -> str:
        if not self.active():
            return "unconstrained"
        return ", ".join(f"{k.removeprefix('max_')} <= {_num(v)}" for k, v in self.active().items())


def check_satisfiable(
    space: SearchSpace, constraints: Constraints, num_classes: int, samples: int = 300, seed: int = 0
) -> float:
    """Fraction of ``samples`` random archs that fit; an error naming the tightest bound if none do."""
    if not constraints.active():
        return 1.0
    rng = np.random.default_rng(seed)
    best: dict[str, int] = {}
    fits = 0
    for _ in range(samples):
        cost = space.cost(space.sample(rng), num_classes)
        if constraints.feasible(cost):
            fits += 1
        for name, value in constraints.measures(cost).items():
            best[name] = min(best.get(name, value), value)
    if fits == 0:
        tight = [
            f"{name.removeprefix('max_')} <= {_num(bound)} (smallest seen {_num(best[name])})"
            for name, bound in constraints.active().items()
            if best[name] > bound
        ] or [constraints.describe()]
        raise EdgenasError(
            f"no arch of space {space.name} among {samples} sampled meets {'; '.join(tight)}; "
            "relax the constraint, pick a larger device, or a smaller space"
        )
    return fits / samples
