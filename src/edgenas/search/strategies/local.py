"""Local search (White et al. 2021, "Local search is state of the art for NAS benchmarks").

After ``init`` random archs, each ask is an unseen one-step neighbour of the best told arch
whose neighbourhood is not yet exhausted; when every told arch's neighbourhood has been
asked, a random arch restarts the search.
"""

from __future__ import annotations

from collections.abc import Sequence

from edgenas.errors import EdgenasError
from edgenas.search.strategies.base import Objective, Strategy, register_strategy
from edgenas.spaces.base import Arch, SearchSpace


def neighbours(space: SearchSpace, arch: Arch) -> list[Arch]:
    """Every arch that differs from ``arch`` in exactly one active dim, in dim/option order."""
    dims = {d.name: d for d in space.dims()}
    out: list[Arch] = []
    seen = {arch.key()}
    for name in space.active(arch.values):
        for option in dims[name].options:
            if option == arch.values[name]:
                continue
            try:
                other = space.make({**arch.values, name: option})
            except EdgenasError:
                continue
            if other.key() not in seen:
                seen.add(other.key())
                out.append(other)
    return out


@register_strategy("local")
class LocalSearch(Strategy):
    def __init__(self, space: SearchSpace, objectives: Sequence[Objective], seed: int = 0, *, init: int = 10):
        super().__init__(space, objectives, seed)
        if init < 1:
            raise EdgenasError(f"local search needs init >= 1, got {init}")
        self.init = init
        self._asks = 0
        self._exhausted_centres: set[str] = set()  # membership only, never iterated

    def ask(self) -> Arch:
        self._asks += 1
        if self._asks > self.init:
            ranked = sorted(self.told(), key=lambda m: -m[1])
            for centre, _ in ranked:
                if centre.key() in self._exhausted_centres:
                    continue
                fresh = [a for a in neighbours(self.space, centre) if self.is_new(a)]
                if fresh:
                    return self._asked(fresh[int(self.rng.integers(len(fresh)))])
                self._exhausted_centres.add(centre.key())
        return self._asked(self.fresh(lambda: self.space.sample(self.rng)))

    def tell(self, arch: Arch, values: dict[str, float] | None) -> None:
        self._record(arch, values)
