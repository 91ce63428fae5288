"""Search strategies: registry, grid order, replay determinism, no repeats, and NB201 results."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import numpy as np
import pytest

from conftest import NB201_DIR
from edgenas.errors import EdgenasError
from edgenas.search.pareto import hypervolume, pareto_front
from edgenas.search.strategies import STRATEGIES, Objective, Strategy, list_strategies, make_strategy
from edgenas.spaces.base import Arch, Dim, SearchSpace

ALL = ["grid", "local", "nsga2", "ofa_evolution", "predictor", "random", "re", "reinforce", "tpe"]
LEARNERS = ["re", "ofa_evolution", "reinforce", "tpe", "predictor"]
#: protocol tests need no good predictor: train its ensemble briefly
QUICK = {"predictor": {"epochs": 20, "refit_epochs": 5}}


class ToySpace(SearchSpace):
    """``n`` integer dims with ``k`` options each; only the strategies' generic operations are used."""

    name = "toy"

    def __init__(self, n: int = 4, k: int = 5):
        self._dims = tuple(Dim(f"x{i}", tuple(range(k))) for i in range(n))

    def dims(self) -> Sequence[Dim]:
        return self._dims

    def block(self, arch: Arch, num_classes: int = 10):
        raise NotImplementedError("a toy space has no network")

    def input_shape(self, arch: Arch):
        return (1, 1, 1)


TARGET = (3, 1, 4, 0, 2, 2)


def toy_loss(arch: Arch) -> dict[str, float] | None:
    """Separable quadratic with its minimum 0 at TARGET; x0 = x1 = 0 is 'infeasible'."""
    x = [arch[f"x{i}"] for i in range(len(arch.values))]
    if x[0] == 0 and x[1] == 0:
        return None
    loss = float(sum((v - t) ** 2 for v, t in zip(x, TARGET, strict=False)))
    return {"loss": loss, "accuracy": 100.0 - loss}


def test_registry_lists_every_strategy_and_rejects_unknown_names_and_options():
    assert list_strategies() == ALL
    assert set(STRATEGIES) == set(ALL)
    space = ToySpace()
    with pytest.raises(EdgenasError, match="unknown strategy 'bananas'; known strategies: grid, local"):
        make_strategy("bananas", space, [Objective("accuracy")])
    with pytest.raises(EdgenasError, match=r"option 'pop' for strategy re; options: population, sample$"):
        make_strategy("re", space, [Objective("accuracy")], pop=10)
    with pytest.raises(EdgenasError, match="goal 'maximise'"):
        Objective("accuracy", "maximise")  # type: ignore[arg-type]
    s = make_strategy("re", space, [Objective("loss", "min")], population=7, sample=3)
    assert isinstance(s, Strategy) and s.population_size == 7 and s.score({"loss": 3.0}) == -3.0


def test_grid_enumerates_a_small_space_completely_in_order():
    space = ToySpace(n=3, k=3)
    grid = make_strategy("grid", space, [Objective("accuracy")])
    asked = []
    while not grid.exhausted:
        asked.append(grid.ask())
        grid.tell(asked[-1], toy_loss(asked[-1]))
    assert asked == list(space.enumerate())
    assert [tuple(a.values.values()) for a in asked[:4]] == [(0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 1, 0)]
    assert len(asked) == 27
    with pytest.raises(EdgenasError, match="asked all 27 archs"):
        grid.ask()
    with pytest.raises(EdgenasError, match=r"has 390,625 archs \(limit 100,000\)"):
        make_strategy("grid", ToySpace(n=8, k=5), [Objective("accuracy")])


def interleaved(strategy: Strategy, evaluate: Callable[[Arch], dict | None], steps: int) -> list[tuple]:
    """Asks and tells in a scripted parallel-worker order (up to 4 in flight, tells out of order)."""
    script = random.Random(7)
    events: list[tuple] = []
    in_flight: list[Arch] = []
    for _ in range(steps):
        if in_flight and (len(in_flight) >= 4 or script.random() < 0.45):
            arch = in_flight.pop(script.randrange(len(in_flight)))
            values = evaluate(arch)
            strategy.tell(arch, values)
            events.append(("tell", arch, values))
        else:
            arch = strategy.ask()
            in_flight.append(arch)
            events.append(("ask", arch))
    return events


@pytest.mark.parametrize("name", ALL)
def test_replaying_the_journal_reproduces_every_ask(name):
    """The runner's resume contract: same seed + same ask/tell sequence -> identical asks."""
    space = ToySpace()
    objectives = [Objective("accuracy"), Objective("loss", "min")]
    opts = QUICK.get(name, {})
    events = interleaved(make_strategy(name, space, objectives, seed=3, **opts), toy_loss, 90)
    fresh = make_strategy(name, space, objectives, seed=3, **opts)
    for event in events:
        if event[0] == "ask":
            assert fresh.ask() == event[1]
        else:
            fresh.tell(event[1], event[2])
    if name != "grid":  # the seed matters
        other = interleaved(make_strategy(name, space, objectives, seed=4, **opts), toy_loss, 90)
        assert [e[1] for e in other if e[0] == "ask"] != [e[1] for e in events if e[0] == "ask"]


@pytest.mark.parametrize("name", ALL)
def test_no_arch_is_asked_twice_while_new_ones_remain(name):
    space = ToySpace(n=4, k=3)  # 81 archs, 70 asks: strategies must avoid repeats explicitly
    s = make_strategy(name, space, [Objective("accuracy")], seed=1, **QUICK.get(name, {}))
    keys = []
    for _ in range(70):
        arch = s.ask()
        keys.append(arch.key())
        s.tell(arch, toy_loss(arch))
    assert len(set(keys)) == 70
    assert sum(values is None for _, values in s.history) == 70 - len(list(s.told()))


@pytest.mark.parametrize("name", [n for n in ALL if n != "grid"])
def test_a_tiny_space_runs_out_gracefully(name):
    space = ToySpace(n=2, k=2)  # 4 archs; asks beyond that may repeat but must not fail
    s = make_strategy(name, space, [Objective("accuracy")], seed=0, **QUICK.get(name, {}))
    asked = []
    for _ in range(8):
        asked.append(s.ask())
        s.tell(asked[-1], {"accuracy": float(sum(asked[-1].values.values()))})
    assert len(set(asked[:4])) == 4


def test_a_result_without_the_objective_is_a_clear_error():
    s = make_strategy("random", ToySpace(), [Objective("val_accuracy")])
    arch = s.ask()
    with pytest.raises(EdgenasError, match=r"no metric 'val_accuracy' \(has accuracy, loss\)"):
        s.tell(arch, toy_loss(arch) or {"accuracy": 0.0, "loss": 0.0})


@pytest.mark.parametrize("name", ["local", "re"])
def test_minimising_finds_the_toy_optimum(name):
    """A separable bowl over 5^4 = 625 archs, goal 'min': found exactly within 150 queries."""
    for seed in range(3):
        s = make_strategy(name, ToySpace(), [Objective("loss", "min")], seed=seed)
        for _ in range(150):
            arch = s.ask()
            s.tell(arch, toy_loss(arch))
        best, score = s.best()
        assert score == 0.0 and tuple(best.values.values()) == TARGET[:4]


def test_nsga2_front_dominates_random_front_on_two_objectives():
    """8 dims x 5 options; accuracy = a.x (max) against cost = b.x^2 (min): a real trade-off."""
    space = ToySpace(n=8, k=5)
    a = np.array([5, 3, 8, 2, 7, 4, 6, 1], float)
    b = np.array([2, 4, 1, 6, 3, 5, 1, 2], float)

    def metrics(arch: Arch) -> dict[str, float]:
        x = np.array(list(arch.values.values()), float)
        return {"accuracy": float(a @ x), "cost": float(b @ x**2)}

    objectives = [Objective("accuracy", "max"), Objective("cost", "min")]
    ref = (0.0, float(b @ np.full(8, 16.0)))
    volumes = {}
    for name in ("nsga2", "random"):
        hv = []
        for seed in range(4):
            s = make_strategy(name, space, objectives, seed=seed)
            pts = []
            for _ in range(200):
                arch = s.ask()
                m = metrics(arch)
                s.tell(arch, m)
                pts.append((m["accuracy"], m["cost"]))
            front = np.array(pts)[pareto_front(pts, ["max", "min"])]
            hv.append(hypervolume(front, ref, ["max", "min"]))
        volumes[name] = np.mean(hv)
    # measured: nsga2 ~0.9x of the bounding box, random markedly less
    assert volumes["nsga2"] > 1.02 * volumes["random"], volumes


# --- NAS-Bench-201 -----------------------------------------------------------------------------
NB201_CSV = NB201_DIR / "nb201_12epoch.csv"
needs_nb201 = pytest.mark.skipif(not NB201_CSV.is_file(), reason=f"NB201 table {NB201_CSV} not present")


@pytest.fixture(scope="module")
def nb201():
    from edgenas.estimate.tabular import NB201Evaluator

    return NB201Evaluator("cifar10", NB201_CSV)


def mean_regret(name: str, evaluator, queries: int, seeds: range) -> float:
    from edgenas.cli.bench_cmd import run_tabular

    best = [run_tabular(name, evaluator, queries, seed).best_val[-1] for seed in seeds]
    return evaluator.best_val() - float(np.mean(best))


@needs_nb201
def test_random_search_matches_its_analytic_expected_regret(nb201):
    """E[max of 100 draws without replacement] from the 15,625 val accuracies gives 1.194."""
    from scipy.special import gammaln

    v = np.sort(nb201.table.column("cifar10", "val"))[::-1]
    n, q = len(v), 100
    k = np.arange(1, n - q + 2)
    p = np.exp(gammaln(n - k + 1) - gammaln(q) - gammaln(n - k - q + 2)
               - gammaln(n + 1) + gammaln(q + 1) + gammaln(n - q + 1))  # P(max is the k-th best)
    expected = v[0] - float(p @ v[: len(k)])
    assert expected == pytest.approx(1.194, abs=1e-3)
    # 100 seeds; the per-seed std of the regret is ~0.5, so the standard error is ~0.05
    assert mean_regret("random", nb201, q, range(100)) == pytest.approx(expected, abs=0.2)


@needs_nb201
@pytest.mark.slow
@pytest.mark.parametrize("name", LEARNERS)
def test_learning_strategies_beat_random_on_nb201(nb201, name):
    """100 queries x 10 seeds on cifar10-val, same seeds for both."""
    random_regret = mean_regret("random", nb201, 100, range(10))
    regret = mean_regret(name, nb201, 100, range(10))
    assert regret < 0.75 * random_regret, (regret, random_regret)


def test_predictor_can_use_the_shared_predictors_and_encodings():
    pytest.importorskip("edgenas.estimate.predictors")
    space = ToySpace()
    with pytest.raises(EdgenasError, match="unknown encoding 'paths'"):
        make_strategy("predictor", space, [Objective("accuracy")], encoding="paths")
    with pytest.raises(EdgenasError, match="unknown predictor 'svm'"):
        make_strategy("predictor", space, [Objective("accuracy")], predictor="svm")
    s = make_strategy("predictor", space, [Objective("accuracy")], predictor="gbm_ensemble", init=5, batch=10)
    for _ in range(15):  # one fit of the shared gradient-boosting ensemble
        arch = s.ask()
        s.tell(arch, toy_loss(arch))
    assert len({a.key() for a, _ in s.history}) == 15
