"""``edgenas profile``: the exact cost of a registered model or of your own nn.Module."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from edgenas.cli.output import console, fmt_bytes, fmt_int, print_json
from edgenas.cost import Cost, estimate
from edgenas.errors import EdgenasError
from edgenas.models import model_entry, model_graph


def load_factory_module(target: str, resolution: int, in_channels: int = 3) -> Cost:
    """Cost of ``path/to/file.py:factory`` through the module profiler."""
    from torch import nn

    from edgenas.cost.profiler import profile_module

    path_str, _, factory_name = target.rpartition(":")
    path = Path(path_str)
    if not path.is_file():
        raise EdgenasError(f"model file {path} not found; give path/to/file.py:factory")
    spec = importlib.util.spec_from_file_location(f"edgenas_user_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise EdgenasError(f"{path} is not a Python file; give path/to/file.py:factory")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        raise EdgenasError(f"importing {path} failed: {type(e).__name__}: {e}") from None
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        raise EdgenasError(f"{path} has no factory {factory_name!r}; define def {factory_name}()")
    net = factory()
    if not isinstance(net, nn.Module):
        raise EdgenasError(f"{factory_name}() returned {type(net).__name__}, not an nn.Module")
    return profile_module(net, (in_channels, resolution, resolution))


def cost_table(cost: Cost, title: str) -> Table:
    t = Table(title=title, show_header=False, title_justify="left")
    t.add_column("metric", style="bold")
    t.add_column("value", justify="right")
    t.add_row("parameters", fmt_int(cost.params))
    t.add_row("MACs (conv + linear)", fmt_int(cost.macs))
    t.add_row("all ops (+BN, act, pool, add)", fmt_int(cost.all_ops))
    t.add_row(f"flash ({cost.precision} weights)", fmt_bytes(cost.flash_bytes))
    for method, value in cost.peak_sram_bytes.items():
        t.add_row(f"peak SRAM, {method}", f"{fmt_bytes(value)} at {cost.peak_layer[method]}")
    return t


def layer_table(cost: Cost) -> Table:
    t = Table(title="per layer", title_justify="left")
    for col in ("layer", "type", "output", "params", "MACs", "flash B", "act B"):
        t.add_column(col, justify="left" if col in ("layer", "type", "output") else "right")
    for layer in cost.layers:
        t.add_row(
            layer.name, layer.type, "x".join(map(str, layer.output_shape)), fmt_int(layer.params),
            fmt_int(layer.macs), fmt_int(layer.flash_bytes), fmt_int(layer.activation_bytes),
        )
    return t


def load_arch_text(arch: str) -> str:
    """The text of ``--arch``: a JSON file, or inline JSON / an arch string."""
    path = Path(arch)
    if path.is_file():
        return path.read_text()
    if arch.lstrip().startswith("{") or "|" in arch:
        return arch
    raise EdgenasError(
        f"arch file {arch} not found; give a JSON file as written by 'edgenas space sample --json'"
    )


def space_cost(space_name: str, arch: str, options: list[str] | None, num_classes: int, precision: str,
               trace: bool) -> tuple[Cost, str]:
    """Cost of one arch of a registered space, and a title naming it."""
    from edgenas.cli.space_cmd import open_space

    space = open_space(space_name, options)
    parsed = space.parse(load_arch_text(arch))
    if trace:
        from edgenas.cost.profiler import profile_module

        cost = profile_module(space.build(parsed, num_classes), space.input_shape(parsed), precision)
    else:
        cost = space.cost(parsed, num_classes, precision)  # type: ignore[arg-type]
    return cost, f"{space_name} arch {parsed.id}: {space.to_string(parsed)}"


def profile(
    model: Annotated[
        str | None, typer.Argument(help="registered model name, or path/to/file.py:factory")
    ] = None,
    resolution: Annotated[
        int | None, typer.Option(help="input height and width [default: the model's, or 224]")
    ] = None,
    width: Annotated[
        float | None, typer.Option(help="width multiplier [default: the model's]")
    ] = None,
    num_classes: Annotated[int, typer.Option(help="classifier outputs")] = 1000,
    precision: Annotated[str, typer.Option(help="int8 or fp32 weights and activations")] = "int8",
    per_layer: Annotated[bool, typer.Option("--per-layer", help="print every layer")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of tables")] = False,
    trace: Annotated[
        bool, typer.Option("--trace", help="profile the built nn.Module instead of the analytic spec")
    ] = False,
    space: Annotated[
        str | None, typer.Option(help="profile an arch of this search space (with --arch)")
    ] = None,
    arch: Annotated[
        str | None, typer.Option(help="arch JSON file (edgenas space sample --json), with --space")
    ] = None,
    options: Annotated[
        list[str] | None, typer.Option("--option", "-o", help="space option KEY=VALUE, with --space")
    ] = None,
) -> None:
    """Exact parameters, MACs, flash and peak SRAM of a network."""
    if resolution is not None and resolution <= 0:
        raise EdgenasError(f"resolution must be > 0, got {resolution}")
    if precision not in ("int8", "fp32"):
        raise EdgenasError(f"unknown precision {precision!r}; use int8 or fp32")
    if num_classes <= 0:
        raise EdgenasError(f"num_classes must be a positive integer, got {num_classes}")
    if space is not None or arch is not None:
        if space is None or arch is None:
            raise EdgenasError("give both --space NAME and --arch FILE.json to profile a search-space arch")
        if model is not None or resolution is not None or width is not None:
            raise EdgenasError("--space/--arch take no MODEL, --resolution or --width: the arch sets them")
        cost, title = space_cost(space, arch, options, num_classes, precision, trace)
    elif model is None:
        raise EdgenasError("give a MODEL (edgenas models) or --space NAME --arch FILE.json")
    elif ":" in model:
        resolution = resolution or 224
        cost = load_factory_module(model, resolution)
        title = f"{model} at {resolution}x{resolution}"
    else:
        resolution = resolution or model_entry(model).resolution
        graph = model_graph(model, resolution, num_classes, width)
        if trace:
            from edgenas.cost.profiler import profile_module
            from edgenas.models import create_model

            net = create_model(model, num_classes, width)
            cost = profile_module(net, graph.input_shape, precision)  # type: ignore[arg-type]
        else:
            cost = estimate(graph, precision)  # type: ignore[arg-type]
        title = f"{model} at {resolution}x{resolution}"
    if as_json:
        print_json(cost.to_dict(per_layer=True))
        return
    console.print(cost_table(cost, title))
    if per_layer:
        console.print(layer_table(cost))


def register(app: typer.Typer) -> None:
    app.command("profile")(profile)
