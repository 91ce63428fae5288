"""``edgenas latency``: measure a model on this CPU; build and check latency lookup tables."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from edgenas.cli.output import console, err_console, fmt_int, print_json
from edgenas.cli.space_cmd import OptionArgs, open_space
from edgenas.errors import EdgenasError
from edgenas.hardware.latency import BACKENDS, get_backend

app = typer.Typer(help="Latency: measure on this CPU; build and check lookup tables.", no_args_is_help=True)
table_app = typer.Typer(help="Latency lookup tables: build from a space, check on held-out archs.",
                        no_args_is_help=True)
app.add_typer(table_app, name="table")

Backend = Annotated[str, typer.Option(help=f"where to run: {' or '.join(sorted(BACKENDS))}")]
Threads = Annotated[int, typer.Option(help="intra-op threads (1: single-core, as on an MCU)")]


def _positive(name: str, value: int) -> None:
    if value < 1:
        raise EdgenasError(f"--{name} must be >= 1, got {value}")


@contextmanager
def progress_bars(quiet: bool = False) -> Iterator:
    """A ``(phase, done, total)`` callback drawing one rich bar per phase, on stderr."""
    if quiet:
        yield None
        return
    bars = Progress(
        TextColumn("{task.description:>8}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err_console, transient=True,
    )
    tasks: dict[str, int] = {}

    def tick(phase: str, done: int, total: int) -> None:
        if phase not in tasks:
            tasks[phase] = bars.add_task(phase, total=total)
        bars.update(tasks[phase], completed=done)

    with bars:
        yield tick


@app.command("measure")
def measure(
    model: Annotated[str, typer.Argument(help="registered model name (edgenas models)")],
    resolution: Annotated[int | None, typer.Option(help="input size [default: the model's]")] = None,
    width: Annotated[float | None, typer.Option(help="width multiplier [default: the model's]")] = None,
    num_classes: Annotated[int, typer.Option(help="classifier outputs")] = 1000,
    backend: Backend = "torch",
    runs: Annotated[int, typer.Option(help="timed runs (median and IQR over them)")] = 50,
    warmup: Annotated[int, typer.Option(help="untimed runs first")] = 10,
    threads: Threads = 1,
    table: Annotated[Path | None, typer.Option(help="also predict from this latency table")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Batch-1 inference latency of a model on this CPU: median and IQR over timed runs."""
    from edgenas.cost import estimate
    from edgenas.hardware.latency import measure_latency
    from edgenas.hardware.lut import LatencyTable, predict_latency_ms
    from edgenas.models import model_entry, model_graph, model_spec

    _positive("runs", runs)
    _positive("threads", threads)
    get_backend(backend)
    resolution = resolution or model_entry(model).resolution
    graph = model_graph(model, resolution, num_classes, width)
    lut = LatencyTable.load(table) if table is not None else None
    if lut is not None and (lut.backend, lut.threads) != (backend, threads):
        err_console.print(f"note: the table was measured with {lut.backend}, {lut.threads} thread(s)")
    stats = measure_latency(model_spec(model, num_classes, width).build(), graph.input_shape, runs, warmup,
                            threads, backend)
    out = {"model": model, "resolution": resolution, "macs": estimate(graph).macs, **stats.to_dict()}
    if lut is not None:
        out["predicted_ms"] = predict_latency_ms(graph, lut)
        out["table_coverage"] = lut.coverage(graph)
    if as_json:
        print_json(out)
        return
    t = Table(title=f"{model} at {resolution}x{resolution}, batch 1", show_header=False, title_justify="left")
    t.add_column("what", style="bold")
    t.add_column("value", justify="right")
    t.add_row("MACs", fmt_int(out["macs"]))
    t.add_row("backend", f"{backend}, {threads} thread{'s' if threads > 1 else ''}")
    t.add_row("median", f"{stats.median_ms:.3f} ms")
    t.add_row("IQR", f"{stats.iqr_ms:.3f} ms ({stats.q1_ms:.3f} - {stats.q3_ms:.3f})")
    t.add_row("fastest", f"{stats.min_ms:.3f} ms")
    t.add_row("runs", f"{runs} (+{warmup} warm-up)")
    if lut is not None:
        found = f"{out['table_coverage']:.0%} of layers found"
        t.add_row("predicted (table)", f"{out['predicted_ms']:.3f} ms, {found}")
    console.print(t)


@table_app.command("build")
def table_build(
    space: Annotated[str, typer.Option(help="search space whose layers to measure (edgenas space list)")],
    out: Annotated[Path, typer.Option(help="where to write the table (JSON)")],
    samples: Annotated[int, typer.Option(help="random archs whose layers are measured")] = 30,
    options: OptionArgs = None,
    seed: Annotated[int, typer.Option(help="seed of the sampled archs")] = 0,
    backend: Backend = "torch",
    runs: Annotated[int, typer.Option(help="timed runs per layer and per network")] = 20,
    warmup: Annotated[int, typer.Option(help="untimed runs first")] = 3,
    threads: Threads = 1,
    num_classes: Annotated[int, typer.Option(help="classifier outputs")] = 10,
    calibrate: Annotated[
        bool, typer.Option(help="also measure the archs end to end and fit scale*sum + offset")
    ] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars")] = False,
) -> None:
    """Measure every distinct layer of sampled archs in isolation into a latency lookup table."""
    from edgenas.hardware.space_latency import build_space_table

    for name, value in (("samples", samples), ("runs", runs), ("threads", threads)):
        _positive(name, value)
    get_backend(backend)
    if not out.parent.is_dir():
        raise EdgenasError(f"folder {out.parent} does not exist; create it or pick another --out")
    sp = open_space(space, options)
    start = time.perf_counter()
    with progress_bars(quiet) as tick:
        table = build_space_table(
            sp, samples, seed, backend, runs, warmup, threads, num_classes, calibrate, progress=tick
        )
    table.save(out)
    t = Table(title=f"latency table {out}", show_header=False, title_justify="left")
    t.add_column("what", style="bold")
    t.add_column("value", justify="right")
    t.add_row("measured from", table.meta.source)
    t.add_row("backend", f"{backend}, {threads} thread{'s' if threads > 1 else ''}")
    t.add_row("layers (entries)", fmt_int(len(table)))
    offset = table.meta.offset_ms
    sign = "-" if offset < 0 else "+"
    t.add_row("calibration", f"{table.meta.scale:.3f} x sum {sign} {abs(offset):.3f} ms")
    if table.meta.call_overhead_ms:
        t.add_row("per-call overhead", f"{table.meta.call_overhead_ms:.4f} ms, counted once per network")
    t.add_row("took", f"{time.perf_counter() - start:.1f} s")
    console.print(t)
    fits = Table(title="fallback for missing layers: ms = a*MMACs + b*MB + c", title_justify="left")
    for col in ("family", "entries", "a", "b", "c"):
        fits.add_column(col, justify="left" if col == "family" else "right")
    for fam, fit in sorted(table.fits.items()):
        coefs = (f"{v:.4f}" for v in (fit.a, fit.b, fit.c))
        fits.add_row("all" if fam == "*" else fam, fmt_int(fit.n), *coefs)
    console.print(fits)


def scatter_plot(evaluation, path: Path, title: str) -> None:
    """Predicted vs measured latency, one point per arch, with the y = x line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.errorbar(evaluation.predicted_ms, evaluation.measured_ms, yerr=evaluation.iqr_ms / 2, fmt="o", ms=4,
                alpha=0.8, label="median ± IQR/2")
    lo = min(evaluation.predicted_ms.min(), evaluation.measured_ms.min()) * 0.9
    hi = max(evaluation.predicted_ms.max(), evaluation.measured_ms.max()) * 1.1
    ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="y = x")
    ax.set(xlim=(lo, hi), ylim=(lo, hi), xlabel="predicted latency (ms)", ylabel="measured latency (ms)")
    ax.set_title(f"{title}\nSpearman {evaluation.spearman:.3f}, Kendall {evaluation.kendall:.3f}, "
                 f"MAPE {evaluation.mape:.1f}%", fontsize=9)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


@table_app.command("eval")
def table_eval(
    table: Annotated[Path, typer.Option(help="latency table JSON (edgenas latency table build)")],
    space: Annotated[str, typer.Option(help="search space to sample held-out archs from")],
    samples: Annotated[int, typer.Option(help="held-out archs to predict and measure")] = 20,
    options: OptionArgs = None,
    seed: Annotated[int, typer.Option(help="seed of the held-out archs (not the build seed)")] = 1,
    runs: Annotated[int, typer.Option(help="timed runs per network")] = 20,
    warmup: Annotated[int, typer.Option(help="untimed runs first")] = 3,
    num_classes: Annotated[int, typer.Option(help="classifier outputs")] = 10,
    plot: Annotated[Path | None, typer.Option(help="write a predicted-vs-measured scatter PNG here")] = None,
    per_arch: Annotated[bool, typer.Option("--per-arch", help="print every arch")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars")] = False,
) -> None:
    """Predicted vs measured latency of held-out archs: Spearman, Kendall, MAPE."""
    from edgenas.hardware.lut import LatencyTable, host_description
    from edgenas.hardware.space_latency import evaluate_space_table

    for name, value in (("samples", samples), ("runs", runs)):
        _positive(name, value)
    if samples < 3:
        raise EdgenasError(f"--samples must be >= 3 to rank archs, got {samples}")
    if plot is not None and not plot.parent.is_dir():
        raise EdgenasError(f"folder {plot.parent} does not exist; create it or pick another --plot")
    lut = LatencyTable.load(table)
    sp = open_space(space, options)
    with progress_bars(quiet or as_json) as tick:
        ev = evaluate_space_table(lut, sp, samples, seed, runs, warmup, num_classes, tick)
    if plot is not None:
        scatter_plot(ev, plot, f"{space}: {len(ev.archs)} held-out archs, {lut.backend}")
    summary = ev.summary()
    if as_json:
        print_json({"table": str(table), "space": space, "seed": seed, **summary, "per_arch": ev.rows()})
        return
    if lut.meta.host and lut.meta.host != host_description():
        err_console.print(f"note: table measured on '{lut.meta.host}', this is '{host_description()}'")
    t = Table(title=f"{table} on {len(ev.archs)} held-out {space} archs (seed {seed})", show_header=False,
              title_justify="left")
    t.add_column("what", style="bold")
    t.add_column("value", justify="right")
    t.add_row("backend", f"{lut.backend}, {lut.threads} thread{'s' if lut.threads > 1 else ''}")
    t.add_row("Spearman", f"{ev.spearman:.3f}")
    t.add_row("Kendall tau", f"{ev.kendall:.3f}")
    t.add_row("MAPE, calibrated", f"{ev.mape:.1f}%")
    t.add_row("MAPE, layer sum vs median", f"{ev.mape_raw:.1f}%")
    t.add_row("MAPE, layer sum vs fastest run", f"{ev.mape_raw_vs_min:.1f}%")
    t.add_row("layers found in table", f"{ev.coverage:.0%}")
    t.add_row("measured range", f"{summary['measured_min_ms']:.2f} - {summary['measured_max_ms']:.2f} ms")
    if plot is not None:
        t.add_row("plot", str(plot))
    console.print(t)
    if per_arch:
        rows = Table(title="per arch (ms)", title_justify="left")
        for col in ("arch", "predicted", "layer sum", "measured", "IQR", "fastest"):
            rows.add_column(col, justify="left" if col == "arch" else "right")
        for r in ev.rows():
            rows.add_row(r["arch"], *(f"{r[k]:.3f}" for k in
                                      ("predicted_ms", "layer_sum_ms", "measured_ms", "iqr_ms", "min_ms")))
        console.print(rows)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="latency")
