"""``edgenas models``: the registered reference networks with their exact costs."""

from __future__ import annotations

from typing import Annotated

import typer
from rich import box
from rich.table import Table

from edgenas.cli.output import console, fmt_int, print_json
from edgenas.cost import estimate
from edgenas.models import list_models, model_graph

app = typer.Typer(help="Reference networks.", invoke_without_command=True)


@app.callback()
def models(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List registered models with params and MACs at their published resolution."""
    if ctx.invoked_subcommand is not None:
        return
    rows = []
    for entry in list_models():
        cost = estimate(model_graph(entry.name, entry.resolution))
        rows.append({
            "name": entry.name, "resolution": entry.resolution, "params": cost.params,
            "macs": cost.macs, "flash_bytes": cost.flash_bytes,
            "peak_sram_bytes": cost.peak_sram_bytes["mcunet"], "description": entry.description,
        })
    if as_json:
        print_json(rows)
        return
    # borderless, so the exact numbers of large models still fit an 80-column terminal
    t = Table(title="registered models (int8, 1000 classes)", title_justify="left",
              box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    t.add_column("model", overflow="fold", min_width=18)
    for col in ("input", "params", "MACs", "flash B", "peak SRAM B"):
        t.add_column(col, justify="right", no_wrap=True)
    for r in rows:
        t.add_row(r["name"], f"{r['resolution']}", fmt_int(r["params"]), fmt_int(r["macs"]),
                  fmt_int(r["flash_bytes"]), fmt_int(r["peak_sram_bytes"]))
    console.print(t)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="models")
