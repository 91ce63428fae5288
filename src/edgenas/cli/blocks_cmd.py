"""``edgenas blocks compare``: classical blocks side by side for the same input and output."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer
from rich.table import Table

from edgenas.cli.output import console, fmt_int, print_json
from edgenas.errors import EdgenasError

app = typer.Typer(help="Building blocks and what they cost.", no_args_is_help=True)


@app.callback()
def blocks() -> None:
    """Building blocks and what they cost."""


@app.command("compare")
def compare(
    cin: Annotated[int, typer.Option("--in", help="input channels")] = 64,
    cout: Annotated[int, typer.Option("--out", help="output channels")] = 64,
    resolution: Annotated[int, typer.Option(help="input height and width")] = 56,
    stride: Annotated[int, typer.Option(help="1 or 2")] = 1,
    groups: Annotated[int, typer.Option(help="groups of the grouped conv and ShuffleNetV1 unit")] = 4,
    precision: Annotated[str, typer.Option(help="int8 or fp32 activations for peak SRAM")] = "int8",
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """Params, MACs and peak SRAM of each block mapping the same input to the same output."""
    from edgenas.blocks.catalog import compare_blocks

    if precision not in ("int8", "fp32"):
        raise EdgenasError(f"unknown precision {precision!r}; use int8 or fp32")
    rows, skipped = compare_blocks(cin, cout, resolution, stride, groups, precision)  # type: ignore[arg-type]
    if as_json:
        print_json({
            "input": [cin, resolution, resolution], "out_channels": cout, "stride": stride,
            "groups": groups, "precision": precision,
            "blocks": [asdict(r) for r in rows], "skipped": skipped,
        })
        return
    out_res = (resolution - 1) // stride + 1
    t = Table(
        title=f"blocks {cin}x{resolution}x{resolution} -> {cout}x{out_res}x{out_res}, "
              f"peak SRAM at {precision} (mcunet)",
        title_justify="left",
    )
    t.add_column("block", no_wrap=True)
    for col in ("params", "MACs", "peak SRAM B", "MACs vs 3x3 conv"):
        t.add_column(col, justify="right", no_wrap=col != "MACs vs 3x3 conv")
    for r in rows:
        t.add_row(r.name, fmt_int(r.params), fmt_int(r.macs), fmt_int(r.peak_sram_bytes),
                  f"{r.macs_vs_conv3x3:.3f}x")
    console.print(t)
    for r in rows:
        console.print(f"  {r.name}: {r.description}", highlight=False)
    for name, reason in skipped.items():
        console.print(f"[dim]{name} left out: {reason}[/]", highlight=False)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="blocks")
