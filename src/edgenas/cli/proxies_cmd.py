"""``edgenas proxies``: list the zero-cost proxies and validate them on NAS-Bench-201."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from edgenas.cli.output import console, err_console, print_json
from edgenas.errors import EdgenasError

app = typer.Typer(help="Zero-cost proxies: score untrained networks.", no_args_is_help=True)


@app.command("list")
def list_cmd(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Every registered proxy, whether it reads data, and its NASLib name."""
    from edgenas.estimate.proxies import get_proxy, list_proxies

    infos = [get_proxy(n) for n in list_proxies()]
    if as_json:
        print_json([{"name": i.name, "uses_data": i.uses_data, "naslib_key": i.naslib_key,
                     "summary": i.summary} for i in infos])
        return
    t = Table(title="zero-cost proxies", title_justify="left")
    for col in ("proxy", "data", "NASLib", "what it measures"):
        t.add_column(col, overflow="fold")
    for i in infos:
        t.add_row(i.name, "batch" if i.uses_data else "-", i.naslib_key or "-", i.summary)
    console.print(t)


def _fmt(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.3f}"


@app.command("eval")
def eval_cmd(
    benchmark: Annotated[str, typer.Argument(help="benchmark to validate on (nb201)")],
    proxies: Annotated[str, typer.Option(help="comma-separated proxies, or all")] = "all",
    n: Annotated[int, typer.Option("--n", help="number of archs (a seeded subset when < 491)")] = 491,
    data: Annotated[Path, typer.Option(help="NASLib's zc_nasbench201.json")] = Path(
        "../shared/data/nb201/zc_nasbench201.json"
    ),
    dataset: Annotated[str, typer.Option(help="cifar10, cifar100 or ImageNet16-120")] = "cifar10",
    seed: Annotated[int, typer.Option(help="seed of the weights, the batch and the subset")] = 0,
    batch_data: Annotated[
        str, typer.Option(help="images for the data proxies: a dataset name or gaussian")
    ] = "digits",
    batch_size: Annotated[int, typer.Option(help="images in the proxy batch")] = 64,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """Spearman's rho of each proxy with trained accuracy, ours next to NASLib's, and their agreement."""
    import torch

    from edgenas.estimate.proxies import parse_proxy_names
    from edgenas.estimate.proxies.nb201 import evaluate_nb201, load_zc, select_keys

    if benchmark != "nb201":
        raise EdgenasError(f"unknown benchmark {benchmark!r}; proxies can be validated on: nb201")
    if batch_size < 2:
        raise EdgenasError(f"--batch-size must be at least 2, got {batch_size}")
    names = parse_proxy_names(proxies)
    total = len(select_keys(load_zc(data, dataset), n, seed))
    torch.set_num_threads(max(1, min(torch.get_num_threads(), 2)))
    with Progress(
        TextColumn("scoring NB201 archs"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err_console, transient=True, disable=as_json,
    ) as bar:
        task = bar.add_task("archs", total=total)
        rows = evaluate_nb201(
            names, n=n, data=data, dataset=dataset, seed=seed, batch_data=batch_data,
            batch_size=batch_size, on_arch=lambda i: bar.update(task, completed=i),
        )
    if as_json:
        print_json([r.to_dict() for r in rows])
        return
    t = Table(
        title=f"zero-cost proxies on NAS-Bench-201 {dataset}, {total:,} archs",
        caption=f"Spearman's rho with 200-epoch val accuracy; agreement: with NASLib's scores; "
        f"batch: {batch_size} {batch_data} images; seed {seed}",
        title_justify="left",
    )
    for col in ("proxy", "ours", "NASLib", "agreement", "s / arch", "failed"):
        t.add_column(col, justify="left" if col == "proxy" else "right")
    for r in rows:
        t.add_row(r.proxy, _fmt(r.spearman_ours), _fmt(r.spearman_naslib), _fmt(r.agreement),
                  f"{r.seconds_per_arch:.3f}", f"{r.failed:,}")
    console.print(t)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="proxies")
