"""``edgenas gradient``: gradient-based NAS, DARTS on cell spaces and ProxylessNAS on mcunet."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from edgenas.cli.output import console, err_console, fmt_bytes, fmt_int, print_json
from edgenas.errors import EdgenasError

if TYPE_CHECKING:
    import numpy as np

    from edgenas.estimate.data import Dataset
    from edgenas.spaces.base import Arch, SearchSpace

app = typer.Typer(help="Gradient-based NAS: DARTS (cell spaces), ProxylessNAS (mcunet).",
                  no_args_is_help=True)

#: the search network when no -o is given: DARTS' "small" proxies (C=8, one cell per stage)
DARTS_DEFAULTS: dict[str, dict[str, Any]] = {
    "nb201": {"channels": 8, "cells_per_stage": 1},
    "darts": {"channels": 8, "layers": 5},
}

Space = Annotated[str, typer.Option(help="search space")]
Options = Annotated[list[str] | None, typer.Option("--option", "-o", help="space option KEY=VALUE (JSON)")]
DatasetOpt = Annotated[str, typer.Option(help="digits, fashion-mnist, cifar10 or folder")]
DataDir = Annotated[str | None, typer.Option(help="directory of the dataset's files")]
Resolution = Annotated[int | None, typer.Option(help="input size [default: the dataset's]")]
Epochs = Annotated[int, typer.Option(help="search epochs")]
BatchSize = Annotated[int, typer.Option(help="batch size of both steps")]
TrainSize = Annotated[int | None, typer.Option(help="search on this many train images (stratified)")]
Seed = Annotated[int, typer.Option(help="random seed (weights, alphas, batches)")]
Threads = Annotated[int, typer.Option(help="torch CPU threads")]
AsJson = Annotated[bool, typer.Option("--json", help="print the result as JSON")]
ArchOut = Annotated[Path | None, typer.Option(help="write the derived arch as JSON to this file")]


def _space(name: str, options: list[str] | None, defaults: dict[str, Any]) -> SearchSpace:
    from edgenas.cli.options import parse_options
    from edgenas.cli.space_cmd import open_space

    merged = {**defaults, **parse_options(options)}
    return open_space(name, [f"{k}={json.dumps(v)}" for k, v in merged.items()])


def _data(dataset: str, data_dir: str | None, resolution: int, seed: int, train_size: int | None) -> Dataset:
    """Half of the training images for the weights, half for the alphas (DARTS' split)."""
    from edgenas.estimate.data import load_dataset

    return load_dataset(dataset, data_dir, resolution=resolution, channels=3, val_fraction=0.5, seed=seed,
                        train_size=train_size)


@contextmanager
def _progress(label: str, quiet: bool) -> Iterator[Any]:
    bar = Progress(
        TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("{task.fields[info]}"), console=err_console, transient=True, disable=quiet,
    )
    with bar:
        task = bar.add_task(label, total=None, info="")
        yield lambda done, total, info: bar.update(task, completed=done, total=total, info=info)


def _alpha_table(title: str, rows: list[str], cols: list[str], probs: np.ndarray) -> Table:
    """One row per edge (block), one column per op (candidate); the row's largest in green."""
    from rich import box

    t = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    t.add_column("edge" if "<" in rows[0] or rows[0].startswith("edge") else "block", style="bold",
                 no_wrap=True)
    for c in cols:
        label = c.replace("_", " ")
        t.add_column(label, justify="right", overflow="fold", min_width=max(5, *map(len, label.split())))
    for label, p in zip(rows, probs, strict=True):
        best = int(p.argmax())
        t.add_row(label, *[f"[bold green]{v:.3f}[/]" if k == best else f"{v:.3f}" for k, v in enumerate(p)])
    return t


def _write_arch(path: Path | None, arch: Arch) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(arch.model_dump_json(indent=1) + "\n")


# --- DARTS ------------------------------------------------------------------------------------------
@app.command("darts")
def darts_cmd(
    space: Space = "nb201",
    option: Options = None,
    dataset: DatasetOpt = "digits",
    data_dir: DataDir = None,
    resolution: Resolution = None,
    epochs: Epochs = 2,
    batch_size: BatchSize = 64,
    lr: Annotated[float, typer.Option(help="weight learning rate (SGD, cosine)")] = 0.025,
    alpha_lr: Annotated[
        float, typer.Option(help="architecture learning rate (Adam); DARTS' 3e-4 needs ~50 epochs")
    ] = 3e-3,
    warmup_epochs: Annotated[int, typer.Option(help="weight-only epochs before alpha steps")] = 0,
    selection: Annotated[str, typer.Option(help="discretisation: argmax, no-none or pt")] = "argmax",
    train_size: TrainSize = None,
    table: Annotated[
        Path | None, typer.Option(help="NB201 12-epoch CSV: print the derived arch's table accuracy")
    ] = None,
    table_dataset: Annotated[str, typer.Option(help="NB201 column: cifar10, cifar100, imagenet")] = "cifar10",
    seed: Seed = 0,
    threads: Threads = 1,
    arch_out: ArchOut = None,
    as_json: AsJson = False,
) -> None:
    """DARTS: mixed-op supernet, first-order bilevel search, then discretisation into an arch."""
    from edgenas.estimate.data import dataset_info
    from edgenas.supernet.darts import SELECTIONS, SUPERNETS, BilevelConfig, run_darts

    if space not in SUPERNETS:
        known = ", ".join(sorted(SUPERNETS))
        raise EdgenasError(f"DARTS has no supernet for space {space!r}; use one of {known}")
    if selection not in SELECTIONS:
        raise EdgenasError(f"unknown --selection {selection!r}; choose one of {', '.join(SELECTIONS)}")
    if table is not None and space != "nb201":
        raise EdgenasError(f"--table holds NB201 accuracies; drop it or use --space nb201 (not {space})")
    res = resolution or dataset_info(dataset).resolution
    sp = _space(space, option, {**DARTS_DEFAULTS.get(space, {}), "resolution": res})
    res = sp.resolution  # type: ignore[attr-defined]  # -o resolution=... wins
    data = _data(dataset, data_dir, res, seed, train_size)
    config = BilevelConfig(epochs=epochs, batch_size=batch_size, lr=lr, alpha_lr=alpha_lr,
                           warmup_epochs=warmup_epochs, seed=seed, threads=threads)
    with _progress("DARTS", as_json) as tick:
        result = run_darts(sp, data, config, selection=selection, on_step=tick)
    _write_arch(arch_out, result.arch)
    lookup = _nb201_lookup(table, table_dataset, result.arch_string) if table is not None else None
    cost = sp.cost(result.arch, data.num_classes)
    if as_json:
        print_json({
            "space": sp.name, "space_options": sp.describe(), "dataset": data.name, "selection": selection,
            "arch": result.arch.values, "arch_string": result.arch_string,
            "probabilities": {
                g: {e: dict(zip(result.op_names, map(float, p), strict=True))
                    for e, p in zip(result.edge_labels[g], result.probabilities[g], strict=True)}
                for g in result.probabilities
            },
            "params": cost.params, "macs": cost.macs, "history": result.history.to_dict(), "table": lookup,
        })
        return
    last = result.history.epochs[-1]
    console.print(
        f"[bold]DARTS[/] on {sp.name} ({json.dumps(sp.describe(), default=list)}) with {data.name}: "
        f"{fmt_int(result.history.steps)} steps in {result.history.seconds:.1f} s, "
        f"last epoch train {100 * last.train_acc:.1f}% / val {100 * (last.val_acc or 0):.1f}% (supernet)",
        highlight=False, soft_wrap=True,
    )
    for g, probs in result.probabilities.items():
        console.print(_alpha_table(f"softmax(alpha), {g}", result.edge_labels[g], list(result.op_names),
                                   probs))
    console.print(f"derived ({selection}): [bold]{result.arch_string}[/]", highlight=False, soft_wrap=True)
    console.print(f"searched network: {fmt_int(cost.params)} params, {fmt_int(cost.macs)} MACs",
                  highlight=False)
    if lookup is not None:
        console.print(
            f"NB201 12-epoch {table_dataset}: val {lookup['val']:.2f}%, test {lookup['test']:.2f}% "
            f"(better than {lookup['val_percentile']:.1f}% of the {fmt_int(lookup['archs'])} archs; "
            f"table mean {lookup['val_mean']:.2f}%, best {lookup['val_best']:.2f}%)",
            highlight=False, soft_wrap=True,
        )


def _nb201_lookup(path: Path, dataset: str, arch_string: str) -> dict[str, float]:
    from edgenas.estimate.tabular import load_nb201

    t = load_nb201(path)
    i = t.row(arch_string)
    val, test = t.column(dataset, "val"), t.column(dataset, "test")
    return {
        "val": float(val[i]), "test": float(test[i]), "val_percentile": float(100 * (val < val[i]).mean()),
        "val_mean": float(val.mean()), "val_best": float(val.max()), "archs": len(val),
    }


# --- ProxylessNAS -----------------------------------------------------------------------------------
@app.command("proxyless")
def proxyless_cmd(
    space: Space = "mcunet",
    option: Options = None,
    dataset: DatasetOpt = "digits",
    data_dir: DataDir = None,
    resolution: Resolution = None,
    lam: Annotated[float, typer.Option("--lambda", help="weight of log E[cost] in the alpha loss")] = 0.1,
    latency_table: Annotated[
        Path | None, typer.Option(help="latency table JSON: the hardware loss uses latency, not MACs")
    ] = None,
    fix: Annotated[
        list[str] | None, typer.Option(help="fixed value of a non-searched dim KEY=VALUE, e.g. d0=2")
    ] = None,
    epochs: Epochs = 6,
    batch_size: BatchSize = 32,
    lr: Annotated[float, typer.Option(help="weight learning rate (SGD, cosine)")] = 0.1,
    alpha_lr: Annotated[
        float, typer.Option(help="architecture learning rate (Adam); ProxylessNAS' 1e-3 needs long runs")
    ] = 1e-2,
    warmup_epochs: Annotated[
        int, typer.Option(help="weight-only epochs first (sampled paths train slowly)")
    ] = 2,
    train_size: TrainSize = None,
    seed: Seed = 0,
    threads: Threads = 1,
    arch_out: ArchOut = None,
    as_json: AsJson = False,
) -> None:
    """ProxylessNAS: path-binarised supernet over each block's kernel x expand, with a hardware loss.

    Without -o, mcunet is a tiny network (width 0.5, stages [[24, 2, [2]], [40, 2, [2]]],
    stem 16, first 8) at the dataset's resolution; each -o KEY=VALUE overrides one of these.
    """
    from edgenas.cli.options import parse_options
    from edgenas.cli.train_cmd import DEFAULT_SPACE_OPTIONS
    from edgenas.estimate.data import dataset_info
    from edgenas.hardware.lut import LatencyTable
    from edgenas.supernet.proxyless import proxyless_config, run_proxyless

    _check_chain_space(space)
    res = resolution or dataset_info(dataset).resolution
    defaults = {**(DEFAULT_SPACE_OPTIONS if space == "mcunet" else {}), "resolutions": [res]}
    sp = _space(space, option, defaults)
    resolutions = sp.resolutions  # type: ignore[attr-defined]
    if resolution is None and len(resolutions) == 1:
        res = resolutions[0]  # -o resolutions=[R] wins over the dataset's default
    fixed = {"resolution": res, **parse_options(fix, "--fix")}
    table = LatencyTable.load(latency_table) if latency_table is not None else None
    data = _data(dataset, data_dir, int(fixed["resolution"]), seed, train_size)
    config = proxyless_config(epochs=epochs, batch_size=batch_size, lr=lr, alpha_lr=alpha_lr,
                              warmup_epochs=warmup_epochs, seed=seed, threads=threads)
    with _progress("ProxylessNAS", as_json) as tick:
        result = run_proxyless(sp, data, config, lam=lam, fixed=fixed, table=table, on_step=tick)
    _write_arch(arch_out, result.arch)
    c = result.cost
    labels = [f"k{k}e{e}" for k, e in result.choices]
    if as_json:
        print_json({
            "space": sp.name, "space_options": sp.describe(), "dataset": data.name, "lambda": lam,
            "metric": result.metric, "arch": result.arch.values, "arch_string": result.arch_string,
            "params": c.params, "macs": c.macs, "flash_bytes": c.flash_bytes,
            "peak_sram_bytes": c.peak_sram_bytes, "latency_ms": result.latency_ms,
            "expected_metric": result.expected_metric, "derived_metric": result.derived_metric,
            "probabilities": {b: dict(zip(labels, map(float, p), strict=True))
                              for b, p in result.probabilities.items()},
            "history": result.history.to_dict(),
        })
        return
    last = result.history.epochs[-1]
    console.print(
        f"[bold]ProxylessNAS[/] on {sp.name} with {data.name} at {res}x{res}, lambda {lam:g} on "
        f"log E\\[{result.metric}]: {fmt_int(result.history.steps)} steps in {result.history.seconds:.1f} s, "
        f"last epoch train {100 * last.train_acc:.1f}% / val {100 * (last.val_acc or 0):.1f}% "
        "(sampled paths)",
        highlight=False, soft_wrap=True,
    )
    console.print(_alpha_table("path probabilities softmax(alpha)", list(result.probabilities), labels,
                               _stack(result.probabilities)))
    t = Table(show_header=False, title=f"derived: {result.arch_string}", title_justify="left")
    t.add_column("metric", style="bold")
    t.add_column("value", justify="right")
    t.add_row("parameters", fmt_int(c.params))
    t.add_row("MACs", fmt_int(c.macs))
    t.add_row("flash (int8)", fmt_bytes(c.flash_bytes))
    t.add_row("peak SRAM (mcunet)", fmt_bytes(c.peak_sram_bytes["mcunet"]))
    if result.latency_ms is not None:
        t.add_row("predicted latency", f"{result.latency_ms:.3f} ms")
    unit = "MACs" if result.metric == "macs" else "ms"
    expected = fmt_int(round(result.expected_metric)) if unit == "MACs" else f"{result.expected_metric:.3f}"
    t.add_row("E\\[cost] at the end", f"{expected} {unit}")
    console.print(t)


def _check_chain_space(name: str) -> None:
    """ProxylessNAS needs a mobilenet-style space; say so before its options are parsed."""
    from edgenas.spaces.base import SPACES, list_spaces
    from edgenas.spaces.mcunet import MobileNetSpace

    known = list_spaces()
    factory = SPACES.get(name)
    if factory is not None and not (isinstance(factory, type) and issubclass(factory, MobileNetSpace)):
        mobile = [n for n in known if isinstance(SPACES[n], type) and issubclass(SPACES[n], MobileNetSpace)]
        raise EdgenasError(
            f"ProxylessNAS searches mobilenet-style spaces ({', '.join(mobile)}), not {name}; "
            "pass --space mcunet"
        )


def _stack(probs: dict[str, np.ndarray]) -> np.ndarray:
    import numpy as np

    return np.stack(list(probs.values()))


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="gradient")
