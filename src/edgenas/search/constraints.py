"""Hardware constraints, checked on the analytic cost before any training.

An infeasible arch is never evaluated: the runner tells the strategy it failed and asks again.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from edgenas.cost import Cost
from edgenas.errors import EdgenasError
from edgenas.spaces.base import SearchSpace

KB = 1024


@dataclass(frozen=True)
class Constraints:
    """Upper bounds; ``None`` means unconstrained. Bytes are int8 (weights and activations)."""

    max_params: int | None = None
    max_macs: int | None = None
    max_flash_bytes: int | None = None
    max_peak_sram_bytes: int | None = None
    peak_method: str = "mcunet"

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if name != "peak_method" and value is not None and value <= 0:
                raise EdgenasError(f"constraint {name} must be > 0, got {value}")

    def measures(self, cost: Cost) -> dict[str, int]:
        """The constrained quantity of ``cost`` for each bound."""
        return {
            "max_params": cost.params,
            "max_macs": cost.macs,
            "max_flash_bytes": cost.flash_bytes,
            "max_peak_sram_bytes": cost.peak_sram_bytes[self.peak_method],
        }

    def violations(self, cost: Cost) -> list[str]:
        """Human-readable reasons ``cost`` does not fit, empty when it does."""
        out = []
        for name, value in self.measures(cost).items():
            bound = getattr(self, name)
            if bound is not None and value > bound:
                out.append(f"{name.removeprefix('max_')} {value:,} > {bound:,}")
        return out

    def feasible(self, cost: Cost) -> bool:
        return not self.violations(cost)

    def active(self) -> dict[str, int]:
        return {k: v for k, v in asdict(self).items() if k != "peak_method" and v is not None}

    def describe(self) -> str:
        if not self.active():
            return "unconstrained"
        return ", ".join(f"{k.removeprefix('max_')} <= {v:,}" for k, v in self.active().items())


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
            f"{name.removeprefix('max_')} <= {bound:,} (smallest seen {best[name]:,})"
            for name, bound in constraints.active().items()
            if best[name] > bound
        ] or [constraints.describe()]
        raise EdgenasError(
            f"no arch of space {space.name} among {samples} sampled meets {'; '.join(tight)}; "
            "relax the constraint, pick a larger device, or a smaller space"
        )
    return fits / samples
