"""Grid search: every arch of a small space, in the space's enumeration order."""

from __future__ import annotations

from collections.abc import Sequence

from edgenas.errors import EdgenasError
from edgenas.search.strategies.base import Objective, Strategy, register_strategy
from edgenas.spaces.base import Arch, SearchSpace


@register_strategy("grid")
class GridSearch(Strategy):
    """Asks ``space.enumerate()`` in order; refuses spaces larger than ``limit``."""

    def __init__(
        self, space: SearchSpace, objectives: Sequence[Objective], seed: int = 0, *, limit: int = 100_000
    ):
        super().__init__(space, objectives, seed)
        if self._space_size > limit:
            raise EdgenasError(
                f"grid search needs a small space, but {space.name} has {self._space_size:,} archs "
                f"(limit {limit:,}); use --strategy random or re, or restrict the space"
            )
        self._iter = iter(space.enumerate(limit))
        self._next: Arch | None = next(self._iter, None)

    @property
    def exhausted(self) -> bool:
        return self._next is None

    def ask(self) -> Arch:
        if self._next is None:
            raise EdgenasError(
                f"grid search has asked all {len(self.seen) + len(self.pending):,} archs of "
                f"{self.space.name}; stop at that many trials"
            )
        arch, self._next = self._next, next(self._iter, None)
        return self._asked(arch)

    def tell(self, arch: Arch, values: dict[str, float] | None) -> None:
        self._record(arch, values)
