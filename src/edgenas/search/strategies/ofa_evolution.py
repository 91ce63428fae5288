"""Once-for-All's evolutionary finder (Cai et al. 2020), asked one arch at a time.

OFA keeps a population of ``population`` archs; each generation keeps the best
``parent_ratio`` of it as parents, adds ``mutation_ratio`` of the population as mutants
(every dim resampled with probability ``mutate_prob``) and fills the rest by crossover of
two parents. Because the parents are kept, the parents of a generation are exactly the
best archs told so far, which is what this ask/tell form uses: a new generation of
children is drawn from the current top archs whenever the previous one has been asked.
"""

from __future__ import annotations

from collections.abc import Sequence

from edgenas.errors import EdgenasError
from edgenas.search.strategies.base import Objective, Strategy, register_strategy
from edgenas.spaces.base import Arch, SearchSpace


@register_strategy("ofa_evolution")
class OFAEvolution(Strategy):
    def __init__(
        self,
        space: SearchSpace,
        objectives: Sequence[Objective],
        seed: int = 0,
        *,
        population: int = 20,
        parent_ratio: float = 0.25,
        mutation_ratio: float = 0.5,
        mutate_prob: float = 0.2,
    ):
        super().__init__(space, objectives, seed)
        if population < 2 or not 0 < parent_ratio < 1 or not 0 <= mutation_ratio <= 1:
            raise EdgenasError(
                "ofa_evolution needs population >= 2, 0 < parent_ratio < 1 and 0 <= mutation_ratio <= 1"
            )
        if not 0 < mutate_prob <= 1:
            raise EdgenasError(f"ofa_evolution needs 0 < mutate_prob <= 1, got {mutate_prob}")
        self.population_size = population
        self.n_parents = max(1, round(parent_ratio * population))
        self.n_mutants = min(round(mutation_ratio * population), population - self.n_parents)
        self.mutate_prob = mutate_prob
        self._slots: list[str] = []
        self._parents: list[Arch] = []
        self._asks = 0

    def ask(self) -> Arch:
        self._asks += 1
        ranked = sorted(self.told(), key=lambda m: -m[1])  # stable: earlier tell wins ties
        if self._asks <= self.population_size or not ranked:
            return self._asked(self.fresh(lambda: self.space.sample(self.rng)))
        if not self._slots:
            self._parents = [a for a, _ in ranked[: self.n_parents]]
            n_cross = self.population_size - self.n_parents - self.n_mutants
            self._slots = ["cross"] * n_cross + ["mutate"] * self.n_mutants  # popped from the end
        slot = self._slots.pop()
        return self._asked(self.fresh(self._mutant if slot == "mutate" else self._crossover))

    def _pick(self) -> Arch:
        return self._parents[int(self.rng.integers(len(self._parents)))]

    def _mutant(self) -> Arch:
        """Each dim resampled with probability ``mutate_prob`` (may keep its value)."""
        parent = self._pick()
        for _ in range(self.max_retries):
            values = dict(parent.values)
            for d in self.space.dims():
                if self.rng.random() < self.mutate_prob:
                    values[d.name] = d.options[int(self.rng.integers(len(d.options)))]
            try:
                return self.space.make(values)
            except EdgenasError:  # a space's cross-field check rejected the combination
                continue
        return parent

    def _crossover(self) -> Arch:
        a, b = self._pick(), self._pick()
        try:
            return self.space.crossover(a, b, self.rng)
        except EdgenasError:
            return a

    def tell(self, arch: Arch, values: dict[str, float] | None) -> None:
        self._record(arch, values)
