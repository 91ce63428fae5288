"""One call that runs a whole hardware-aware search: the library behind ``edgenas search``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgenas.errors import EdgenasError
from edgenas.estimate.evaluators import make_evaluator
from edgenas.search.constraints import Constraints, check_satisfiable
from edgenas.search.executors import make_executor
from edgenas.search.journal import Journal
from edgenas.search.runner import Runner, SearchState
from edgenas.search.strategies.base import Objective, make_strategy
from edgenas.spaces.base import get_space

#: settings a resumed journal must share with the run that wrote it
MUST_MATCH = ("space", "space_options", "strategy", "strategy_options", "seed", "objectives",
              "constraints", "estimator", "estimator_options", "num_classes")


@dataclass
class SearchConfig:
    space: str
    budget: int
    journal: str
    strategy: str = "re"
    strategy_options: dict[str, Any] = field(default_factory=dict)
    space_options: dict[str, Any] = field(default_factory=dict)
    estimator: str = "train"
    estimator_options: dict[str, Any] = field(default_factory=dict)
    constraints: Constraints = field(default_factory=Constraints)
    extra_objectives: tuple[Objective, ...] = ()
    num_classes: int = 10
    seed: int = 0
    workers: int = 1
    executor: str = "local"
    address: str | None = None

    def meta(self, objectives: list[Objective]) -> dict[str, Any]:
        return {
            "space": self.space, "space_options": self.space_options, "strategy": self.strategy,
            "strategy_options": self.strategy_options, "seed": self.seed,
            "objectives": [[o.name, o.goal] for o in objectives],
            "constraints": self.constraints.bounds(), "estimator": self.estimator,
            "estimator_options": {k: v for k, v in self.estimator_options.items() if k != "weights_dir"},
            "num_classes": self.num_classes,
        }


@dataclass
class SearchOutcome:
    state: SearchState
    journal: Journal
    objectives: list[Objective]
    satisfiable_fraction: float


def run_search(config: SearchConfig, on_trial: Callable[[SearchState], None] | None = None) -> SearchOutcome:
    """Validate everything, then search; bad settings fail before any work or journal change."""
    if config.budget <= 0:
        raise EdgenasError(f"--budget must be > 0, got {config.budget}")
    space = get_space(config.space, **config.space_options)
    evaluator = make_evaluator(
        config.estimator, config.space, config.space_options, **config.estimator_options
    )
    objectives = [Objective(evaluator.objective, "max"), *config.extra_objectives]
    strategy = make_strategy(config.strategy, space, objectives, seed=config.seed, **config.strategy_options)
    fraction = check_satisfiable(space, config.constraints, config.num_classes, seed=config.seed)
    journal = Journal.open(config.journal)
    try:
        journal.bind(config.meta(objectives), MUST_MATCH)
    except EdgenasError:
        journal.close()
        raise
    executor = make_executor(config.executor, config.workers, config.address)
    runner = Runner(
        space=space, strategy=strategy, evaluator=evaluator, journal=journal, budget=config.budget,
        constraints=config.constraints, num_classes=config.num_classes, executor=executor,
        on_trial=on_trial, objective=objectives[0].name, goal=objectives[0].goal,
    )
    return SearchOutcome(runner.run(), journal, objectives, fraction)


def weights_path(out: str | Path, arch_id: str) -> Path:
    return Path(out) / "weights" / f"{arch_id}.pt"
