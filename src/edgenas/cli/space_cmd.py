"""``edgenas space``: list, describe and sample search spaces; TinyNAS sub-space optimisation."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from edgenas.cli.options import parse_options
from edgenas.cli.output import console, err_console, fmt_bytes, fmt_int, print_json
from edgenas.errors import EdgenasError
from edgenas.spaces import SPACES, SearchSpace, get_space, list_spaces

app = typer.Typer(help="Search spaces: list, info, sample, optimize (TinyNAS).", no_args_is_help=True)

OptionArgs = Annotated[
    list[str] | None,
    typer.Option("--option", "-o", help="space option KEY=VALUE (JSON value), e.g. -o blocks=4"),
]


def open_space(name: str, options: list[str] | None = None) -> SearchSpace:
    """A registered space with CLI options; a wrong option names the ones that exist."""
    opts = parse_options(options)
    space_names = list_spaces()
    if name not in space_names:
        raise EdgenasError(f"unknown space {name!r}; known spaces: {', '.join(space_names)}")
    try:
        inspect.signature(SPACES[name]).bind(**opts)
    except TypeError:
        known = [p for p in inspect.signature(SPACES[name]).parameters if p not in ("self", "kwargs")]
        raise EdgenasError(
            f"space {name} has no option {sorted(opts)}; its options: {', '.join(known) or 'none'}"
        ) from None
    try:
        return get_space(name, **opts)
    except (TypeError, ValueError) as e:
        if isinstance(e, EdgenasError):
            raise
        raise EdgenasError(f"bad option for space {name}: {e}; check the -o values") from None


def _doc(name: str) -> str:
    return (SPACES[name].__doc__ or "").strip().splitlines()[0] if SPACES[name].__doc__ else ""


@app.command("list")
def list_cmd(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Registered search spaces with their exact sizes."""
    rows = []
    for name in list_spaces():
        space = get_space(name)
        rows.append(
            {"name": name, "dims": len(space.dims()), "size": space.size(), "description": _doc(name)}
        )
    if as_json:
        print_json(rows)
        return
    t = Table(title="search spaces (default options)", title_justify="left")
    t.add_column("space", no_wrap=True)
    t.add_column("dims", justify="right")
    t.add_column("archs (exact)", justify="right", overflow="fold")
    t.add_column("description")
    for r in rows:
        t.add_row(r["name"], str(r["dims"]), f"{r['size']:,}", r["description"])
    console.print(t)


@app.command("info")
def info_cmd(
    name: Annotated[str, typer.Argument(help="space name (edgenas space list)")],
    options: OptionArgs = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Dimensions, their options and the exact number of architectures."""
    space = open_space(name, options)
    dims = [{"name": d.name, "options": list(d.options)} for d in space.dims()]
    data = {"name": name, "size": space.size(), "options": space.describe(), "dims": dims}
    if as_json:
        print_json(json.loads(json.dumps(data, default=list)))
        return
    console.print(f"[bold]{name}[/]: {_doc(name)}")
    console.print(f"{space.size():,} architectures, {len(dims)} dimensions")
    if data["options"]:
        shown = json.dumps(data["options"], default=list)
        console.print(f"options: {shown}", highlight=False, soft_wrap=True)
    t = Table(title_justify="left")
    t.add_column("dimension", no_wrap=True)
    t.add_column("#", justify="right")
    t.add_column("options")
    for d in space.dims():
        shown = ", ".join(json.dumps(o, default=list) for o in d.options[:8])
        more = f", ... ({len(d.options)} in all)" if len(d.options) > 8 else ""
        t.add_row(d.name, str(len(d.options)), shown + more)
    console.print(t)


def arch_record(space: SearchSpace, arch: Any, num_classes: int) -> dict[str, Any]:
    cost = space.cost(arch, num_classes)
    return {
        "id": arch.id,
        "string": space.to_string(arch),
        "arch": json.loads(arch.model_dump_json()),
        "params": cost.params,
        "macs": cost.macs,
        "peak_sram_bytes": cost.peak_sram_bytes,
        "flash_bytes": cost.flash_bytes,
    }


@app.command("sample")
def sample_cmd(
    name: Annotated[str, typer.Argument(help="space name (edgenas space list)")],
    n: Annotated[int, typer.Option("-n", help="number of architectures")] = 5,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    num_classes: Annotated[int, typer.Option(help="classifier outputs")] = 1000,
    options: OptionArgs = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="print JSON (each 'arch' works with profile --arch)")
    ] = False,
) -> None:
    """Random architectures with their exact int8 cost."""
    if n < 1:
        raise EdgenasError(f"-n must be at least 1, got {n}")
    if num_classes < 1:
        raise EdgenasError(f"--num-classes must be at least 1, got {num_classes}")
    space = open_space(name, options)
    rng = np.random.default_rng(seed)
    rows = [arch_record(space, space.sample(rng), num_classes) for _ in range(n)]
    if as_json:
        print_json(rows)
        return
    t = Table(title=f"{n} random {name} archs (seed {seed}, int8, {num_classes} classes)",
              title_justify="left")
    t.add_column("id", no_wrap=True)
    for col in ("params", "MACs", "peak SRAM B (mcunet)", "flash B"):
        t.add_column(col, justify="right", no_wrap=True)
    for r in rows:
        t.add_row(r["id"], fmt_int(r["params"]), fmt_int(r["macs"]),
                  fmt_int(r["peak_sram_bytes"]["mcunet"]), fmt_int(r["flash_bytes"]))
    console.print(t)
    for r in rows:
        console.print(f"{r['id']}  {r['string']}", highlight=False, soft_wrap=True)


@app.command("optimize")
def optimize_cmd(
    space_name: Annotated[
        str, typer.Option("--space", help="space with width and resolution dims")
    ] = "mcunet",
    device: Annotated[str | None, typer.Option(help="device profile, e.g. stm32f746")] = None,
    sram: Annotated[float | None, typer.Option(help="SRAM budget in kB (overrides the device's)")] = None,
    flash: Annotated[float | None, typer.Option(help="flash budget in kB (overrides the device's)")] = None,
    samples: Annotated[int, typer.Option(help="models sampled per sub-space")] = 1000,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    num_classes: Annotated[int, typer.Option(help="classifier outputs (1000: ImageNet, as MCUNet)")] = 1000,
    method: Annotated[str, typer.Option(help="peak SRAM method: mcunet or liveness")] = "mcunet",
    min_fit: Annotated[
        float, typer.Option(help="sub-spaces where fewer models fit rank last (0: MCUNet's plain rule)")
    ] = 0.1,
    plot: Annotated[
        Path | None, typer.Option(help="write the MACs CDF of the top sub-spaces to this PNG")
    ] = None,
    top: Annotated[int, typer.Option(help="sub-spaces in the plot")] = 5,
    rows: Annotated[int, typer.Option(help="sub-spaces shown in the table (0: all)")] = 20,
    options: OptionArgs = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """TinyNAS: rank (width, resolution) sub-spaces by the MACs of the sampled models that fit."""
    from edgenas.hardware import device_from_args
    from edgenas.spaces.tinynas import optimize_space, plot_cdf

    if device is None and sram is None and flash is None:
        raise EdgenasError("give a --device (e.g. stm32f746) or a budget with --sram KB / --flash KB")
    if num_classes < 1:
        raise EdgenasError(f"--num-classes must be at least 1, got {num_classes}")
    target = device_from_args(device, sram, flash)
    space = open_space(space_name, options)
    dims = {d.name: len(d.options) for d in space.dims()}
    total = dims.get("width", 0) * dims.get("resolution", 0)
    with Progress(
        TextColumn("[bold]TinyNAS[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=err_console, transient=True, disable=as_json,
    ) as progress:
        task = progress.add_task("sub-spaces", total=total)
        results = optimize_space(
            space, target, samples, seed, num_classes, method,
            on_subspace=lambda r: progress.update(task, advance=1, description=r.label),
            min_fit=min_fit,
        )
    if plot is not None:
        plot_cdf(results, plot, target, top)
    if as_json:
        print_json({"space": space_name, "device": target.to_dict(), "samples": samples, "seed": seed,
                    "method": method, "plot": None if plot is None else str(plot),
                    "subspaces": [r.to_dict() for r in results]})
        return
    limits = ", ".join(
        f"{what} {fmt_bytes(v)}" for what, v in (("SRAM", target.sram_bytes), ("flash", target.flash_bytes))
        if v is not None
    )
    t = Table(
        title=f"TinyNAS on {space_name} for {target.name} ({limits or 'no limits'}); {samples:,} models "
              f"per sub-space, seed {seed}, int8, peak SRAM by {method}",
        title_justify="left",
    )
    for col in ("rank", "sub-space", "fit", "fraction", "mean MACs (fit)", "median MACs (fit)"):
        t.add_column(col, justify="left" if col == "sub-space" else "right", no_wrap=True)
    for r in results[: rows or None]:
        t.add_row(str(r.rank), r.label, f"{r.fitting:,}/{r.samples:,}", f"{r.fraction:.1%}",
                  fmt_int(round(r.mean_macs)), fmt_int(round(r.median_macs)))
    console.print(t)
    if rows and len(results) > rows:
        console.print(f"... {len(results) - rows} more sub-spaces (--rows 0 shows all)")
    if plot is not None:
        console.print(f"MACs CDF of the top {min(top, len(results))} sub-spaces written to {plot}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="space")
