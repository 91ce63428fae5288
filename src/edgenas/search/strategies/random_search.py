"""Random search: uniform samples, never repeating an arch while new ones remain."""

from __future__ import annotations

from edgenas.search.strategies.base import Strategy, register_strategy
from edgenas.spaces.base import Arch


@register_strategy("random")
class RandomSearch(Strategy):
    """The baseline every other strategy must beat at equal budget."""

    def ask(self) -> Arch:
        return self._asked(self.fresh(lambda: self.space.sample(self.rng)))

    def tell(self, arch: Arch, values: dict[str, float] | None) -> None:
        self._record(arch, values)
