"""The strategy protocol: ``ask`` for an arch, ``tell`` its metrics; a registry of strategies.

Determinism contract: the runner resumes a killed search by replaying its journal, so a
strategy given the same seed and the same sequence of ``ask()`` / ``tell(arch, values)``
calls must return the same asks. All randomness therefore comes from ``self.rng`` (a numpy
Generator seeded from ``seed``) or generators derived from it; never the wall clock, the
global RNGs, or set iteration order.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from edgenas.errors import EdgenasError
from edgenas.spaces.base import Arch, SearchSpace

Goal = Literal["max", "min"]
#: spaces up to this size may be enumerated to find an unseen arch
ENUMERATE_LIMIT = 100_000


@dataclass(frozen=True)
class Objective:
    """A metric to optimise: its key in the evaluator's result and whether larger is better."""

    name: str  # a metric key, e.g. "accuracy", "macs", "peak_sram"
    goal: Goal = "max"

    def __post_init__(self) -> None:
        if self.goal not in ("max", "min"):
            raise EdgenasError(f"objective {self.name!r} has goal {self.goal!r}; use 'max' or 'min'")

    def sign(self) -> float:
        """+1 for max, -1 for min: ``sign() * value`` is always 'larger is better'."""
        return 1.0 if self.goal == "max" else -1.0


class Strategy(ABC):
    """Base of every search strategy; keeps the history every strategy needs.

    ``ask`` may be called several times before any ``tell`` (parallel workers); ``tell`` with
    ``values=None`` means the arch failed or was infeasible. Single-objective strategies
    optimise ``objectives[0]``.
    """

    name: ClassVar[str] = "?"
    multi_objective: ClassVar[bool] = False
    #: proposals tried before giving up on finding an arch not seen yet
    max_retries: ClassVar[int] = 100

    def __init__(self, space: SearchSpace, objectives: Sequence[Objective], seed: int = 0, **options: Any):
        if not objectives:
            raise EdgenasError(f"strategy {self.name} needs at least one objective")
        if options:
            raise EdgenasError(
                f"unknown option {sorted(options)[0]!r} for strategy {self.name}; "
                f"options: {', '.join(strategy_options(type(self))) or 'none'}"
            )
        self.space = space
        self.objectives: tuple[Objective, ...] = tuple(objectives)
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)
        self.history: list[tuple[Arch, dict[str, float] | None]] = []  # every tell, in order
        self.seen: dict[str, dict[str, float] | None] = {}  # arch key -> last told values
        self.pending: dict[str, int] = {}  # arch key -> asks not yet told
        self._space_size = space.size()

    @abstractmethod
    def ask(self) -> Arch:
        """The next arch to evaluate."""

    @abstractmethod
    def tell(self, arch: Arch, values: dict[str, float] | None) -> None:
        """The metrics of an arch asked before (``None``: failed or infeasible)."""

    @property
    def exhausted(self) -> bool:
        """True when the strategy has nothing new left to ask (grid search at the end)."""
        return False

    # --- bookkeeping shared by the strategies --------------------------------------------------
    def _asked(self, arch: Arch) -> Arch:
        """Mark ``arch`` as asked (call on every arch returned by ``ask``)."""
        key = arch.key()
        self.pending[key] = self.pending.get(key, 0) + 1
        return arch

    def _record(self, arch: Arch, values: dict[str, float] | None) -> float | None:
        """Store a tell; returns the score of ``objectives[0]`` (larger is better) or None."""
        key = arch.key()
        if self.pending.get(key, 0) > 1:
            self.pending[key] -= 1
        else:
            self.pending.pop(key, None)
        if values is not None:
            values = {k: float(v) for k, v in values.items()}
            missing = [o.name for o in self.objectives if o.name not in values]
            if missing:
                raise EdgenasError(
                    f"evaluator result has no metric {missing[0]!r} (has {', '.join(sorted(values))}); "
                    "choose objectives among the evaluator's metrics"
                )
        self.history.append((arch, values))
        self.seen[key] = values
        return self.score(values)

    def score(self, values: dict[str, float] | None) -> float | None:
        """``objectives[0]`` oriented so that larger is better; None for a failed arch."""
        if values is None:
            return None
        value = values[self.objectives[0].name]
        return None if not np.isfinite(value) else self.objectives[0].sign() * value

    def is_new(self, arch: Arch) -> bool:
        """Neither told nor pending."""
        key = arch.key()
        return key not in self.seen and key not in self.pending

    def _space_left(self) -> bool:
        return len(self.seen) + len(self.pending) < self._space_size

    def fresh(self, propose: Callable[[], Arch]) -> Arch:
        """An arch from ``propose`` not seen yet; after ``max_retries`` a new random arch.

        The random arch is a rejection sample, or, when that keeps hitting seen archs in a
        small space, a uniform pick among the unseen ones. When every arch has been seen,
        the last proposal is returned anyway.
        """
        arch = propose()
        if self.is_new(arch) or not self._space_left():
            return arch
        for _ in range(self.max_retries):
            arch = propose()
            if self.is_new(arch):
                return arch
        for _ in range(100):
            arch = self.space.sample(self.rng)
            if self.is_new(arch):
                return arch
        if self._space_size <= ENUMERATE_LIMIT:
            unseen = [a for a in self.space.enumerate(ENUMERATE_LIMIT) if self.is_new(a)]
            if unseen:
                return unseen[int(self.rng.integers(len(unseen)))]
        return arch

    def told(self) -> Iterator[tuple[Arch, float]]:
        """(arch, score) of every successful tell, in order."""
        for arch, values in self.history:
            s = self.score(values)
            if s is not None:
                yield arch, s

    def best(self) -> tuple[Arch, float] | None:
        """The best told arch by ``objectives[0]`` (the first one on ties)."""
        best: tuple[Arch, float] | None = None
        for arch, s in self.told():
            if best is None or s > best[1]:
                best = (arch, s)
        return best

    def child_rng(self) -> np.random.Generator:
        """A new generator drawn from ``self.rng`` (for libraries that take their own seed)."""
        return np.random.default_rng(self.rng.integers(2**63))

    def child_seed(self) -> int:
        return int(self.rng.integers(2**31 - 1))


STRATEGIES: dict[str, type[Strategy]] = {}


def register_strategy(name: str) -> Callable[[type[Strategy]], type[Strategy]]:
    def deco(cls: type[Strategy]) -> type[Strategy]:
        if name in STRATEGIES:
            raise ValueError(f"strategy {name!r} registered twice")
        cls.name = name
        STRATEGIES[name] = cls
        return cls

    return deco


def strategy_options(cls: type[Strategy]) -> list[str]:
    """Keyword options a strategy takes beyond space, objectives and seed."""
    params = inspect.signature(cls.__init__).parameters.values()
    skip = {"self", "space", "objectives", "seed"}
    return [p.name for p in params if p.name not in skip and p.kind is p.KEYWORD_ONLY]


def list_strategies() -> list[str]:
    _load_all()
    return sorted(STRATEGIES)


def make_strategy(
    name: str, space: SearchSpace, objectives: Sequence[Objective], seed: int = 0, **options: Any
) -> Strategy:
    """A registered strategy by name; unknown names and options are one-line errors."""
    _load_all()
    if name not in STRATEGIES:
        raise EdgenasError(f"unknown strategy {name!r}; known strategies: {', '.join(sorted(STRATEGIES))}")
    cls = STRATEGIES[name]
    known = strategy_options(cls)
    for key in options:
        if key not in known:
            raise EdgenasError(
                f"unknown option {key!r} for strategy {name}; options: {', '.join(known) or 'none'}"
            )
    return cls(space, objectives, seed=seed, **options)


def _load_all() -> None:
    """Import every strategy module so its ``@register_strategy`` line runs."""
    import importlib
    import pkgutil

    import edgenas.search.strategies as package

    for info in pkgutil.iter_modules(package.__path__):
        if info.name not in ("base", "__init__"):
            importlib.import_module(f"edgenas.search.strategies.{info.name}")
