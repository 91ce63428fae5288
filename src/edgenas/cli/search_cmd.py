"""``edgenas search``: find the most accurate architecture that fits a device."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from edgenas.cli.options import parse_options
from edgenas.cli.output import console, fmt_bytes, fmt_int
from edgenas.errors import EdgenasError
from edgenas.search.api import SearchConfig, run_search
from edgenas.search.constraints import Constraints
from edgenas.search.runner import SearchState
from edgenas.search.strategies.base import Objective

#: friendly names for registered strategies
STRATEGY_ALIASES = {"evolution": "re", "regularized_evolution": "re", "bananas": "predictor"}


def parse_objective(text: str) -> Objective:
    name, _, goal = text.partition(":")
    return Objective(name, goal or "min")  # type: ignore[arg-type]


def device_constraints(device: str | None, sram_kb: float | None, flash_kb: float | None,
                       max_macs: int | None, max_params: int | None, max_latency_ms: float | None,
                       latency_table: str | None) -> tuple[Constraints, str]:
    from edgenas.hardware.devices import device_from_args

    dev = device_from_args(device, sram_kb, flash_kb)
    table = None
    if latency_table is not None:
        from edgenas.hardware.lut import LatencyTable

        table = LatencyTable.load(latency_table)
    constraints = Constraints(
        max_params=max_params, max_macs=max_macs,
        max_flash_bytes=dev.flash_bytes, max_peak_sram_bytes=dev.sram_bytes,
        max_latency_ms=max_latency_ms, latency_table=table,
    )
    return constraints, dev.name


def _status(state: SearchState) -> str:
    best = "—" if state.best is None or not state.best.values else f"{state.best.values[state.objective]:.2f}"
    return f"best {best} · failed {state.failed} · feasible {state.feasible_fraction:.0%}"


def search(
    space: Annotated[str, typer.Option(help="search space (edgenas space list)")] = "mcunet",
    device: Annotated[str | None, typer.Option(help="device profile giving SRAM and flash limits")] = None,
    sram: Annotated[float | None, typer.Option(help="SRAM limit in kB (overrides the device's)")] = None,
    flash: Annotated[float | None, typer.Option(help="flash limit in kB (overrides the device's)")] = None,
    max_macs: Annotated[int | None, typer.Option(help="MACs limit")] = None,
    max_params: Annotated[int | None, typer.Option(help="parameter limit")] = None,
    max_latency_ms: Annotated[
        float | None, typer.Option(help="latency limit, predicted by --latency-table")
    ] = None,
    latency_table: Annotated[
        str | None, typer.Option(help="latency lookup table (edgenas latency table build)")
    ] = None,
    dataset: Annotated[str, typer.Option(help="dataset for --estimator train")] = "digits",
    data_dir: Annotated[str | None, typer.Option(help="directory of the dataset files")] = None,
    data: Annotated[str | None, typer.Option(help="table file for --estimator tabular (NB201 CSV)")] = None,
    strategy: Annotated[str, typer.Option(help="search strategy (evolution = re)")] = "re",
    strategy_option: Annotated[
        list[str] | None, typer.Option(help="strategy option key=value, repeatable")
    ] = None,
    space_option: Annotated[list[str] | None, typer.Option(help="space option key=value, repeatable")] = None,
    budget: Annotated[int, typer.Option(help="evaluated trials (infeasible archs are not counted)")] = 20,
    estimator: Annotated[str, typer.Option(help="train | proxy | tabular | supernet")] = "train",
    supernet: Annotated[
        str | None, typer.Option(help="trained supernet checkpoint for --estimator supernet")
    ] = None,
    proxy: Annotated[str, typer.Option(help="zero-cost proxy for --estimator proxy")] = "synflow",
    epochs: Annotated[int, typer.Option(help="training epochs per trial")] = 3,
    train_size: Annotated[int | None, typer.Option(help="training images per trial (subset)")] = None,
    batch_size: Annotated[int, typer.Option(help="training batch size")] = 64,
    lr: Annotated[float | None, typer.Option(help="learning rate (default: the optimizer's)")] = None,
    objective: Annotated[
        list[str] | None,
        typer.Option(help="extra objective metric:goal for multi-objective strategies, e.g. macs:min"),
    ] = None,
    workers: Annotated[int, typer.Option(help="parallel evaluations")] = 1,
    executor: Annotated[str, typer.Option(help="local (process pool) or ray")] = "local",
    address: Annotated[str | None, typer.Option(help="Ray cluster address (with --executor ray)")] = None,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    journal: Annotated[
        str, typer.Option(help="SQLite journal; an existing one is resumed")
    ] = "runs/search.db",
    out: Annotated[str, typer.Option(help="output directory")] = "runs/search",
) -> None:
    """Search SPACE for the most accurate architecture that fits the device.

    Every trial goes into the journal; rerunning the same command resumes a killed search.
    Writes the Pareto front (CSV, PNG), every trial (CSV), the best arch (JSON) and its weights.
    """
    from edgenas.estimate.data import load_dataset
    from edgenas.search.report import write_report

    constraints, device_name = device_constraints(
        device, sram, flash, max_macs, max_params, max_latency_ms, latency_table
    )
    strategy = STRATEGY_ALIASES.get(strategy, strategy)
    num_classes = 10
    if estimator == "train":
        options: dict[str, object] = {
            "dataset": dataset, "data_dir": data_dir, "train_size": train_size,
            "train": {"epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed,
                      "label_smoothing": 0.0, "threads": 1 if workers > 1 else None},
            "weights_dir": str(Path(out) / "weights"),
        }
        # loading once here fails early on a missing data dir and tells the class count
        num_classes = load_dataset(dataset, data_dir).num_classes
    elif estimator == "proxy":
        options = {"proxy": proxy, "seed": seed}
    elif estimator == "supernet":
        from edgenas.supernet.checkpoint import load_supernet_state

        if supernet is None:
            raise EdgenasError(
                "--estimator supernet needs --supernet PATH (edgenas supernet train writes one)"
            )
        trained = load_supernet_state(supernet)["setup"]
        options = {"checkpoint": supernet, "dataset": dataset, "data_dir": data_dir, "seed": seed,
                   "weights_dir": str(Path(out) / "weights")}
        num_classes = trained["num_classes"]
        if not space_option:  # search the space (and the one width) the supernet was trained on
            derived = dict(trained["space_options"])
            if trained.get("width") is not None:
                derived["widths"] = [trained["width"]]
            space_option = [f"{k}={json.dumps(v)}" for k, v in derived.items()]
    else:
        options = {"data": data}
    config = SearchConfig(
        space=space, budget=budget, journal=journal, strategy=strategy,
        strategy_options=parse_options(strategy_option, "--strategy-option"),
        space_options=parse_options(space_option, "--space-option"),
        estimator=estimator, estimator_options=options, constraints=constraints,
        extra_objectives=tuple(parse_objective(o) for o in objective or ()),
        num_classes=num_classes, seed=seed, workers=workers, executor=executor, address=address,
    )
    console.print(
        f"[bold]edgenas search[/] space={space} strategy={strategy} estimator={estimator} "
        f"device={device_name} ({constraints.describe()}) budget={budget} journal={journal}"
    )
    progress = Progress(
        TextColumn("[bold]trials"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("{task.description}"), console=console, transient=False,
    )
    task = progress.add_task("starting…", total=budget)

    def on_trial(state: SearchState) -> None:
        progress.update(task, completed=state.done + state.failed, description=_status(state))

    with progress:
        outcome = run_search(config, on_trial)
    state = outcome.state
    if state.resumed:
        console.print(f"resumed {state.resumed} finished trials from {journal}")
    files = write_report(outcome.journal, outcome.objectives, out, constraints, device_name)
    if state.best is None:
        raise EdgenasError(f"no trial succeeded in {journal}; see the error column of {files['trials']}")
    best = state.best
    cost = best.cost or {}
    console.print(f"\n[bold green]best[/] {best.arch_str}")
    console.print(
        f"  {state.objective} {best.values[state.objective]:.2f} · params {fmt_int(cost['params'])} · "
        f"MACs {fmt_int(cost['macs'])} · flash {fmt_bytes(cost['flash_bytes'])} · "
        f"peak SRAM {fmt_bytes(cost['peak_sram_bytes'])}"
    )
    for label, path in files.items():
        console.print(f"  {label:12s} {path}")


def register(app: typer.Typer) -> None:
    app.command("search")(search)
