"""Regularized evolution (Real et al. 2019): tournament selection with aging."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from edgenas.errors import EdgenasError
from edgenas.search.strategies.base import Objective, Strategy, register_strategy
from edgenas.spaces.base import Arch, SearchSpace


@register_strategy("re")
class RegularizedEvolution(Strategy):
    """Random archs until ``population`` are asked; then the best of ``sample`` random members
    is mutated, and every tell pushes the oldest member out (aging, not the worst).
    """

    def __init__(
        self,
        space: SearchSpace,
        objectives: Sequence[Objective],
        seed: int = 0,
        *,
        population: int = 15,
        sample: int = 5,
    ):
        super().__init__(space, objectives, seed)
        if population < 1 or not 1 <= sample <= population:
            raise EdgenasError(f"re needs population >= sample >= 1, got population={population}, "
                               f"sample={sample}")
        self.population_size = population
        self.sample_size = sample
        self.population: deque[tuple[Arch, float]] = deque()
        self._asks = 0

    def ask(self) -> Arch:
        self._asks += 1
        if self._asks <= self.population_size or not self.population:
            return self._asked(self.fresh(lambda: self.space.sample(self.rng)))
        return self._asked(self.fresh(self._child))

    def _child(self) -> Arch:
        members = list(self.population)
        picks = self.rng.choice(len(members), size=min(self.sample_size, len(members)), replace=False)
        parent = max((members[int(i)] for i in sorted(picks)), key=lambda m: m[1])[0]
        return self.space.mutate(parent, self.rng)

    def tell(self, arch: Arch, values: dict[str, float] | None) -> None:
        score = self._record(arch, values)
        if score is None:
            return
        self.population.append((arch, score))
        if len(self.population) > self.population_size:
            self.population.popleft()
