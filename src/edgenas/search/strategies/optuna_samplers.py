"""TPE and NSGA-II through optuna's samplers, driven with optuna's own ask/tell.

Each space dim is one categorical optuna parameter over the option indices. A trial whose
arch was already told gets the known result at once (so the sampler learns from it and
no query is spent), and a new arch is asked; after ``max_retries`` repeats a random new
arch is enqueued instead. Failed or infeasible archs become optuna ``FAIL`` trials.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.trial import Trial, TrialState

from edgenas.errors import EdgenasError
from edgenas.search.strategies.base import Objective, Strategy, register_strategy
from edgenas.spaces.base import Arch, SearchSpace

optuna.logging.set_verbosity(optuna.logging.WARNING)


class OptunaStrategy(Strategy):
    """Shared ask/tell plumbing; subclasses choose the sampler and how many objectives."""

    max_retries = 20

    def __init__(self, space: SearchSpace, objectives: Sequence[Objective], seed: int, sampler: Any):
        super().__init__(space, objectives, seed)
        self.dims = list(space.dims())
        used = self.objectives if self.multi_objective else self.objectives[:1]
        self.used = used
        directions = ["maximize" if o.goal == "max" else "minimize" for o in used]
        self.study = optuna.create_study(directions=directions, sampler=sampler)
        self._trials: dict[str, list[Trial]] = {}  # arch key -> asked trials awaiting a tell

    def _arch(self, trial: Trial) -> Arch | None:
        values = {d.name: d.options[trial.suggest_categorical(d.name, list(range(len(d.options))))]
                  for d in self.dims}
        try:
            return self.space.make(values)
        except EdgenasError:  # rejected by the space's cross-field check
            return None

    def _values(self, values: dict[str, float] | None) -> list[float] | None:
        if values is None:
            return None
        out = [float(values[o.name]) for o in self.used]
        return out if all(math.isfinite(v) for v in out) else None

    def _finish(self, trial: Trial, values: dict[str, float] | None) -> None:
        numbers = self._values(values)
        if numbers is None:
            self.study.tell(trial, state=TrialState.FAIL)
        else:
            self.study.tell(trial, numbers if len(numbers) > 1 else numbers[0])

    def ask(self) -> Arch:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(self.max_retries):
                trial = self.study.ask()
                arch = self._arch(trial)
                if arch is not None and (self.is_new(arch) or not self._space_left()):
                    return self._keep(trial, arch)
                if arch is not None and arch.key() in self.seen:
                    self._finish(trial, self.seen[arch.key()])  # known result: teach, don't query
                else:
                    self.study.tell(trial, state=TrialState.FAIL)
            arch = self.fresh(lambda: self.space.sample(self.rng))
            self.study.enqueue_trial({d.name: d.index(arch.values[d.name]) for d in self.dims})
            trial = self.study.ask()
            return self._keep(trial, self._arch(trial) or arch)

    def _keep(self, trial: Trial, arch: Arch) -> Arch:
        self._trials.setdefault(arch.key(), []).append(trial)
        return self._asked(arch)

    def tell(self, arch: Arch, values: dict[str, float] | None) -> None:
        self._record(arch, values)
        queue = self._trials.get(arch.key())
        if not queue:
            return  # not asked by this strategy: nothing to close in the study
        trial = queue.pop(0)
        if not queue:
            del self._trials[arch.key()]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._finish(trial, values)


@register_strategy("tpe")
class TPE(OptunaStrategy):
    """Tree-structured Parzen estimator (Bergstra et al. 2011), optuna's TPESampler."""

    def __init__(
        self,
        space: SearchSpace,
        objectives: Sequence[Objective],
        seed: int = 0,
        *,
        n_startup_trials: int = 10,
        multivariate: bool = True,
        constant_liar: bool = True,
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sampler = optuna.samplers.TPESampler(
                n_startup_trials=n_startup_trials, multivariate=multivariate,
                constant_liar=constant_liar, seed=seed,
            )
        super().__init__(space, objectives, seed, sampler)


@register_strategy("nsga2")
class NSGA2(OptunaStrategy):
    """NSGA-II (Deb et al. 2002) over every objective, optuna's NSGAIISampler."""

    multi_objective = True

    def __init__(
        self,
        space: SearchSpace,
        objectives: Sequence[Objective],
        seed: int = 0,
        *,
        population_size: int = 20,
        mutation_prob: float | None = None,
        crossover_prob: float = 0.9,
    ):
        sampler = optuna.samplers.NSGAIISampler(
            population_size=population_size, mutation_prob=mutation_prob,
            crossover_prob=crossover_prob, seed=seed,
        )
        super().__init__(space, objectives, seed, sampler)
