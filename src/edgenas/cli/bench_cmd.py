"""``edgenas bench nb201``: search strategies against each other on the NAS-Bench-201 table.

Each strategy gets ``queries`` table look-ups per seed; the regret is the best validation
accuracy in the table minus the validation accuracy of the best arch found (picked by
validation accuracy, as a real search would), averaged over seeds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from edgenas.cli.output import console, err_console, print_json
from edgenas.errors import EdgenasError


@dataclass(frozen=True)
class Run:
    """One strategy, one seed: after each query, the best val accuracy so far and its test accuracy."""

    best_val: np.ndarray
    test_of_best: np.ndarray
    seconds: float


def run_tabular(name: str, evaluator: Any, queries: int, seed: int, **options: Any) -> Run:
    """Ask/evaluate/tell ``queries`` times, one arch at a time, tracking the best by val."""
    from edgenas.search.strategies import Objective, make_strategy

    start = time.perf_counter()
    strategy = make_strategy(name, evaluator.space, [Objective("val_accuracy")], seed=seed, **options)
    best_val = np.empty(queries)
    test = np.empty(queries)
    bv, bt = -np.inf, np.nan
    for q in range(queries):
        arch = strategy.ask()
        values = evaluator(arch)
        strategy.tell(arch, values)
        if values["val_accuracy"] > bv:
            bv, bt = values["val_accuracy"], values["test_accuracy"]
        best_val[q], test[q] = bv, bt
    return Run(best_val, test, time.perf_counter() - start)


def _strategy_names(requested: list[str]) -> list[str]:
    from edgenas.search.strategies import list_strategies

    known = list_strategies()
    names: list[str] = []
    for item in requested:
        for name in (n.strip() for n in item.split(",")):
            if name == "all":
                names += known
            elif name not in known:
                raise EdgenasError(f"unknown strategy {name!r}; known strategies: {', '.join(known)}, all")
            elif name:
                names.append(name)
    return list(dict.fromkeys(names))


def _mean_std(x: np.ndarray) -> str:
    return f"{x.mean():.2f} ± {x.std():.2f}"


def plot_regret(curves: dict[str, np.ndarray], path: Path, title: str) -> None:
    """Mean regret vs queries per strategy, shaded ± one standard error over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for name, regret in curves.items():  # regret: (seeds, queries)
        q = np.arange(1, regret.shape[1] + 1)
        mean = regret.mean(axis=0)
        sem = regret.std(axis=0) / np.sqrt(regret.shape[0])
        (line,) = ax.plot(q, mean, label=name, lw=1.6)
        ax.fill_between(q, np.maximum(mean - sem, 1e-3), mean + sem, color=line.get_color(), alpha=0.2)
    ax.set_yscale("log")
    ax.set_xlabel("queries")
    ax.set_ylabel("regret (val accuracy, %); band: ±1 s.e.m.")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    try:
        fig.savefig(path)
    except OSError as e:
        raise EdgenasError(f"cannot write plot {path}: {e.strerror}; choose a writable --plot path") from None
    finally:
        plt.close(fig)


@dataclass
class Benchmark:
    """Results of several strategies over the same seeds: regret curves (seeds, queries) by name."""

    dataset: str
    optimum: float
    regret: dict[str, np.ndarray]
    test: dict[str, np.ndarray]  # test accuracy of the pick after the last query, per seed
    seconds: dict[str, float]

    def summary(self, name: str) -> dict[str, Any]:
        r, half = self.regret[name], max(1, self.regret[name].shape[1] // 2)
        return {
            "regret": float(r[:, -1].mean()), "regret_std": float(r[:, -1].std()),
            "regret_half": float(r[:, half - 1].mean()), "regret_half_std": float(r[:, half - 1].std()),
            "test_accuracy": float(self.test[name].mean()), "test_accuracy_std": float(self.test[name].std()),
            "seconds_per_search": self.seconds[name],
            "mean_regret_curve": [round(float(v), 4) for v in r.mean(axis=0)],
        }

    def table(self, title: str) -> Table:
        queries = next(iter(self.regret.values())).shape[1]
        half = max(1, queries // 2)
        t = Table(title=f"{title}; best val in table {self.optimum:.2f}", title_justify="left")
        t.add_column("strategy", style="bold")
        t.add_column(f"regret @ {half:,}", justify="right")
        t.add_column(f"regret @ {queries:,}", justify="right")
        t.add_column(f"test acc of pick @ {queries:,}", justify="right")
        t.add_column("s / search", justify="right")
        for name in sorted(self.regret, key=lambda n: self.regret[n][:, -1].mean()):
            r = self.regret[name]
            t.add_row(name, _mean_std(r[:, half - 1]), _mean_std(r[:, -1]), _mean_std(self.test[name]),
                      f"{self.seconds[name]:.2f}")
        return t


def run_benchmark(names: list[str], evaluator: Any, queries: int, seeds: int, show_progress: bool = True,
                  **options: Any) -> Benchmark:
    """Every strategy in ``names`` on seeds 0..seeds-1, with a progress bar on stderr."""
    bench = Benchmark(evaluator.dataset, evaluator.best_val(), {}, {}, {})
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err_console, transient=True, disable=not show_progress,
    ) as progress:
        task = progress.add_task("searching", total=len(names) * seeds)
        for name in names:
            progress.update(task, description=f"{name:>14}")
            runs = []
            for seed in range(seeds):
                runs.append(run_tabular(name, evaluator, queries, seed, **options.get(name, {})))
                progress.advance(task)
            bench.regret[name] = bench.optimum - np.stack([r.best_val for r in runs])
            bench.test[name] = np.array([r.test_of_best[-1] for r in runs])
            bench.seconds[name] = float(np.mean([r.seconds for r in runs]))
    return bench


def nb201(
    strategy: Annotated[
        list[str], typer.Option("--strategy", "-s", help="strategy name (repeat or comma-separate), or all")
    ] = ["random", "re"],  # noqa: B006 - typer needs a list default
    queries: Annotated[int, typer.Option(help="table look-ups per search")] = 150,
    seeds: Annotated[int, typer.Option(help="searches per strategy, seeds 0..N-1")] = 20,
    dataset: Annotated[str, typer.Option(help="cifar10, cifar100 or imagenet (ImageNet16-120)")] = "cifar10",
    data: Annotated[Path | None, typer.Option(help="path to nb201_12epoch.csv [default: $EDGENAS_NB201, "
                                                   "./, ~/.cache/edgenas/, ../shared/data/nb201/]")] = None,
    plot: Annotated[Path | None, typer.Option(help="write a regret-vs-queries PNG here")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """Regret of search strategies on NAS-Bench-201 at equal query budgets."""
    from edgenas.estimate.tabular import NB201Evaluator

    if queries <= 0:
        raise EdgenasError(f"--queries must be > 0, got {queries}")
    if seeds <= 0:
        raise EdgenasError(f"--seeds must be > 0, got {seeds}")
    names = _strategy_names(strategy)
    if not names:
        raise EdgenasError("no strategy given; pass --strategy NAME (or all)")
    evaluator = NB201Evaluator(dataset, data)
    bench = run_benchmark(names, evaluator, queries, seeds, show_progress=not as_json)
    title = f"NAS-Bench-201 {dataset} (12-epoch val), {seeds} seeds"
    if plot is not None:
        plot_regret(bench.regret, plot, title)
    if as_json:
        print_json({"dataset": dataset, "queries": queries, "seeds": seeds, "best_val": bench.optimum,
                    "table": str(evaluator.table.path),
                    "strategies": {n: bench.summary(n) for n in names}})
        return
    console.print(bench.table(title))
    if plot is not None:
        console.print(f"regret curves written to {plot}")


def register(app: typer.Typer) -> None:
    bench = typer.Typer(help="Benchmark search strategies on tabular NAS benchmarks.", no_args_is_help=True)
    bench.command("nb201")(nb201)
    app.add_typer(bench, name="bench")
