"""The search loop: ask a feasible arch, evaluate it somewhere, journal it, tell the strategy.

Resuming replays the journal's events into a fresh strategy (same seed), then evaluates the
trials that were asked but never finished, then goes on.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Any

from edgenas.cost import Cost
from edgenas.errors import EdgenasError
from edgenas.search.constraints import Constraints
from edgenas.search.executors import Executor, InlineExecutor
from edgenas.search.journal import Journal, Trial
from edgenas.search.strategies.base import Strategy
from edgenas.spaces.base import Arch, SearchSpace

MAX_INFEASIBLE_STREAK = 5_000


def cost_metrics(cost: Cost, peak_method: str = "mcunet") -> dict[str, int]:
    """The cost numbers every trial records (and strategies may optimise)."""
    return {
        "params": cost.params,
        "macs": cost.macs,
        "flash_bytes": cost.flash_bytes,
        "peak_sram_bytes": cost.peak_sram_bytes[peak_method],
    }


@dataclass
class SearchState:
    """What a progress display needs after every finished trial."""

    budget: int
    done: int = 0
    failed: int = 0
    infeasible: int = 0
    resumed: int = 0
    best: Trial | None = None
    last: Trial | None = None
    objective: str = "accuracy"
    goal: str = "max"

    @property
    def feasible_fraction(self) -> float:
        asked = self.done + self.failed + self.infeasible
        return 1.0 if asked == 0 else (self.done + self.failed) / asked

    def offer(self, trial: Trial) -> None:
        self.last = trial
        values = trial.values
        if values is None or self.objective not in values:
            return
        if self.best is None:
            self.best = trial
            return
        current = self.best.values[self.objective]  # type: ignore[index]
        better = values[self.objective] > current if self.goal == "max" else values[self.objective] < current
        if better:
            self.best = trial


@dataclass
class Runner:
    space: SearchSpace
    strategy: Strategy
    evaluator: Callable[[Arch], dict[str, float]]
    journal: Journal
    budget: int
    constraints: Constraints = field(default_factory=Constraints)
    num_classes: int = 10
    executor: Executor = field(default_factory=InlineExecutor)
    on_trial: Callable[[SearchState], None] | None = None
    objective: str = "accuracy"
    goal: str = "max"

    def __post_init__(self) -> None:
        if self.budget <= 0:
            raise EdgenasError(f"--budget must be > 0, got {self.budget}")
        self.state = SearchState(self.budget, objective=self.objective, goal=self.goal)
        self._known: dict[str, Trial] = {}

    # --- resume ----------------------------------------------------------------------------
    def _replay(self) -> list[Trial]:
        """Feed the journal back to the strategy; returns trials asked but never finished."""
        trials = {t.id: t for t in self.journal.trials()}
        for kind, tid in self.journal.events():
            trial = trials[tid]
            if kind == "ask":
                arch = self.strategy.ask()
                if arch != trial.arch:
                    raise EdgenasError(
                        f"journal {self.journal.path} does not replay (trial {tid} was {trial.arch_str}); "
                        "it was written with other settings or another edgenas version: use a new --journal"
                    )
            else:
                self.strategy.tell(trial.arch, trial.values)
                self._count(trial)
        self.state.resumed = self.state.done + self.state.failed
        return [t for t in trials.values() if t.status == "pending"]

    def _count(self, trial: Trial) -> None:
        if trial.status == "done":
            self.state.done += 1
            self._known[trial.arch.id] = trial
        elif trial.status == "failed":
            self.state.failed += 1
        elif trial.status == "infeasible":
            self.state.infeasible += 1
        self.state.offer(trial)

    # --- the loop --------------------------------------------------------------------------
    def _ask_feasible(self) -> tuple[int, Arch] | None:
        """The next feasible arch, journaled; None when the strategy has nothing left to ask."""
        for _ in range(MAX_INFEASIBLE_STREAK):
            if self.strategy.exhausted:
                return None
            arch = self.strategy.ask()
            cost = self.space.cost(arch, self.num_classes)
            metrics = cost_metrics(cost, self.constraints.peak_method)
            tid = self.journal.record_ask(arch, self.space.to_string(arch), metrics)
            reasons = self.constraints.violations(cost)
            if reasons:
                self.journal.record_tell(tid, "infeasible", error="; ".join(reasons))
                self.strategy.tell(arch, None)
                self._count(self.journal.trial(tid))
                continue
            return tid, arch
        raise EdgenasError(
            f"the strategy proposed {MAX_INFEASIBLE_STREAK:,} infeasible archs in a row "
            f"({self.constraints.describe()}); relax the constraints"
        )

    def _finish(self, tid: int, result: dict[str, Any]) -> None:
        self.journal.record_tell(
            tid, result["status"], result.get("metrics"), result.get("error"), result.get("worker")
        )
        trial = self.journal.trial(tid)
        self.strategy.tell(trial.arch, trial.values)
        self._count(trial)
        if self.on_trial:
            self.on_trial(self.state)

    def _submit(self, tid: int, arch: Arch) -> Future:
        cached = self._known.get(arch.id)
        if cached is not None:  # the same network again: reuse its result, don't train twice
            future: Future = Future()
            future.set_result({"status": "done", "metrics": cached.metrics, "worker": "cache"})
            return future
        return self.executor.submit(self.evaluator, arch)

    def run(self) -> SearchState:
        pending = self._replay()
        if self.on_trial and self.state.resumed:
            self.on_trial(self.state)
        in_flight: dict[Future, int] = {}
        try:
            for trial in pending:
                in_flight[self._submit(trial.id, trial.arch)] = trial.id
            while True:
                finished = self.state.done + self.state.failed
                while len(in_flight) < self.executor.workers and finished + len(in_flight) < self.budget:
                    asked = self._ask_feasible()
                    if asked is None:  # e.g. grid search has covered the whole space
                        break
                    in_flight[self._submit(*asked)] = asked[0]
                if not in_flight:
                    break
                complete, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
                for future in sorted(complete, key=lambda f: in_flight[f]):
                    self._finish(in_flight.pop(future), future.result())
        finally:
            self.executor.shutdown()
        return self.state
