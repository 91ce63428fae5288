"""``edgenas supernet``: train a once-for-all supernet by progressive shrinking, evaluate its subnets."""

from __future__ import annotations

import sys
import time
from typing import Annotated, Any

import typer
from rich.table import Table

from edgenas.cli.output import console, err_console, fmt_int, print_json
from edgenas.errors import EdgenasError

app = typer.Typer(help="Once-for-all supernet: train (progressive shrinking), eval, info.",
                  no_args_is_help=True)

OptionArgs = Annotated[
    list[str] | None,
    typer.Option("--option", "-o", help="space option KEY=VALUE (JSON value), e.g. -o resolutions=[24]"),
]


def _phases(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


@app.command("train")
def train_cmd(
    space: Annotated[str, typer.Option(help="MobileNet-style space: mcunet or mobilenet")] = "mcunet",
    options: OptionArgs = None,
    width: Annotated[float | None, typer.Option(help="width [default: the space's only one]")] = None,
    dataset: Annotated[str, typer.Option(help="digits, fashion-mnist, cifar10 or folder")] = "digits",
    data_dir: Annotated[str | None, typer.Option(help="directory of the dataset's files")] = None,
    train_size: Annotated[int | None, typer.Option(help="train on this many images (stratified)")] = None,
    val_fraction: Annotated[float, typer.Option(help="share of train held out for val")] = 0.1,
    epochs: Annotated[int, typer.Option(help="epochs of each shrinking phase")] = 3,
    full_epochs: Annotated[int | None, typer.Option(help="full-network epochs [default: --epochs]")] = None,
    phases: Annotated[str, typer.Option(help="phases, in order")] = "full,kernel,depth,expand",
    subnets_per_step: Annotated[int, typer.Option(help="random subnets per step (losses averaged)")] = 2,
    distill: Annotated[bool, typer.Option(help="distil the shrinking phases from the full network")] = True,
    kd_ratio: Annotated[float, typer.Option(help="weight of the distillation loss")] = 1.0,
    kernel_transform: Annotated[
        bool, typer.Option(help="OFA kernel transformation matrices (else plain centre crop)")
    ] = True,
    optimizer: Annotated[str, typer.Option(help="sgd or adamw")] = "sgd",
    lr: Annotated[float | None, typer.Option(help="full-phase learning rate [default: 0.05]")] = None,
    shrink_lr: Annotated[float | None, typer.Option(help="shrinking-phase lr [default: 0.4 x lr]")] = None,
    batch_size: Annotated[int, typer.Option(help="batch size")] = 64,
    seed: Annotated[int, typer.Option(help="random seed (data split, sampling, init)")] = 0,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads")] = None,
    out: Annotated[
        str | None, typer.Option("--out", help="checkpoint to write [default: --resume's, else supernet.pt]")
    ] = None,
    resume: Annotated[
        str | None, typer.Option(help="continue this checkpoint's run (its settings are kept)")
    ] = None,
    progress: Annotated[bool, typer.Option(help="progress bar per phase on a terminal")] = True,
) -> None:
    """Train a supernet of SPACE: full network, then elastic kernel, depth and expand ratio."""
    import torch

    from edgenas.cli.options import parse_options
    from edgenas.cli.space_cmd import open_space
    from edgenas.spaces import get_space
    from edgenas.supernet.checkpoint import SupernetSetup, load_supernet_state
    from edgenas.supernet.ofa import check_space
    from edgenas.supernet.shrink import EpochRecord, ShrinkConfig, train_supernet

    state = load_supernet_state(resume) if resume else None
    out = out or resume or "supernet.pt"
    if state is not None:
        setup = SupernetSetup.from_dict(state["setup"])
        config = ShrinkConfig.from_dict({**state["config"], "threads": threads})
    else:
        open_space(space, options)  # unknown space or option: a one-line error naming the right ones
        setup = SupernetSetup(space, parse_options(options), width, 10, dataset, data_dir, train_size,
                              val_fraction, seed, kernel_transform)
        config = ShrinkConfig(
            epochs=epochs, full_epochs=full_epochs, phases=_phases(phases), subnets_per_step=subnets_per_step,
            distill=distill, kd_ratio=kd_ratio, optimizer=optimizer, lr=lr, shrink_lr=shrink_lr,
            batch_size=batch_size, seed=seed, threads=threads,
        )
    resolutions = check_space(get_space(setup.space, **setup.space_options)).resolutions
    data = {r: setup.dataset_at(r) for r in resolutions}
    some = data[resolutions[0]]
    if state is None:
        setup = SupernetSetup.from_dict({**setup.to_dict(), "num_classes": some.num_classes})
    torch.manual_seed(setup.seed)
    net = setup.build()
    params = sum(p.numel() for p in net.parameters())
    console.print(
        f"[bold]edgenas supernet train[/] {setup.space} width {net.width:g} at "
        f"{', '.join(map(str, net.space.resolutions))} px ({fmt_int(params)} params, "
        f"{net.space.size():,} subnets) on {some.name}: {fmt_int(len(some.train))} train / "
        f"{fmt_int(len(some.val))} val; phases {' -> '.join(config.phases)}",
        highlight=False, soft_wrap=True,
    )
    bar = _PhaseBars(progress and sys.stderr.isatty())

    def on_epoch(r: EpochRecord) -> None:
        bar.console.print(
            f"{r.phase:6s} epoch {r.epoch + 1}/{r.epochs}  loss {r.loss:.4f}  val: largest subnet "
            f"{100 * r.max_val:.2f}%  smallest {100 * r.min_val:.2f}%  {r.seconds:.1f} s",
            highlight=False, soft_wrap=True,
        )

    start = time.perf_counter()
    with bar:
        history = train_supernet(net, data, config, setup, checkpoint=out, resume=state,
                                 on_step=bar.step, on_epoch=on_epoch)
    if not history:
        raise EdgenasError(f"{resume} has no finished epoch; train again without --resume")
    last = history[-1]
    t = Table(show_header=False, title=f"supernet of {setup.space} on {setup.dataset}", title_justify="left")
    t.add_column("metric", style="bold")
    t.add_column("value", justify="right")
    t.add_row("parameters", fmt_int(params))
    t.add_row("phases, epochs", f"{len(config.phases)}, {len(history)}")
    t.add_row(f"largest subnet val ({net.space.to_string(net.max_arch())})", f"{100 * last.max_val:.2f}%")
    t.add_row(f"smallest subnet val ({net.space.to_string(net.min_arch())})", f"{100 * last.min_val:.2f}%")
    t.add_row("training time (this run)", f"{time.perf_counter() - start:.1f} s")
    t.add_row("checkpoint", out)
    console.print(t)


class _PhaseBars:
    """One rich progress bar per phase on stderr (nothing when disabled)."""

    def __init__(self, enabled: bool) -> None:
        self.progress: Any = None
        self.tasks: dict[int, Any] = {}
        if enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn("[bold]{task.description:6s}"), BarColumn(), MofNCompleteColumn(),
                TimeRemainingColumn(), TextColumn("{task.fields[info]}"), console=err_console,
            )

    @property
    def console(self) -> Any:
        """Where to print lines while the bars run (above them), else stdout."""
        return console if self.progress is None else self.progress.console

    def __enter__(self) -> _PhaseBars:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def step(self, s: Any) -> None:
        if self.progress is None:
            return
        if s.phase_index not in self.tasks:
            self.tasks[s.phase_index] = self.progress.add_task(s.phase, total=s.steps, info="")
        self.progress.update(self.tasks[s.phase_index], completed=s.step, info=f"loss {s.loss:.3f}")


def _arch(net: Any, text: str):
    """``max``/``min``, an arch file, or the arch as JSON or the space's arch string."""
    from edgenas.cli.train_cmd import _arch_text

    if text in ("max", "min"):
        return net.max_arch() if text == "max" else net.min_arch()
    return net.check_arch(net.space.parse(_arch_text(text)))


@app.command("eval")
def eval_cmd(
    checkpoint: Annotated[str, typer.Option(help="supernet checkpoint (edgenas supernet train)")],
    arch: Annotated[
        list[str], typer.Option(help="max, min, an arch file, or the arch string; repeatable")
    ],
    data_dir: Annotated[str | None, typer.Option(help="dataset directory [default: as trained]")] = None,
    bn_batches: Annotated[int, typer.Option(help="training batches to recalibrate BN on")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Accuracy of subnets with inherited weights (BN recalibrated), with their exact cost."""
    from edgenas.supernet.evaluator import SupernetEvaluator

    evaluator = SupernetEvaluator(checkpoint, data_dir=data_dir, bn_batches=bn_batches)
    net = evaluator.supernet()
    rows = []
    for text in arch:
        a = _arch(net, text)
        metrics = evaluator(a)
        cost = net.space.cost(a, net.num_classes)
        rows.append({"arch": net.space.to_string(a), "arch_id": a.id, **metrics,
                     "params": cost.params, "macs": cost.macs,
                     "peak_sram_bytes": cost.peak_sram_bytes["mcunet"], "flash_bytes": cost.flash_bytes})
    if as_json:
        print_json(rows)
        return
    t = Table(title=f"subnets of {checkpoint}", title_justify="left")
    for col in ("arch", "val %", "test %", "params", "MACs", "seconds"):
        t.add_column(col, justify="left" if col == "arch" else "right", overflow="fold")
    for r in rows:
        t.add_row(r["arch"], f"{r['val_accuracy']:.2f}", f"{r.get('test_accuracy', float('nan')):.2f}",
                  fmt_int(r["params"]), fmt_int(r["macs"]), f"{r['eval_seconds']:.2f}")
    console.print(t)


@app.command("info")
def info_cmd(
    checkpoint: Annotated[str, typer.Argument(help="supernet checkpoint")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """What a supernet was trained on, and its accuracy after every epoch."""
    import json

    from edgenas.supernet.checkpoint import load_supernet_state

    state = load_supernet_state(checkpoint)
    setup, history = state["setup"], state.get("history", [])
    if as_json:
        print_json({"setup": setup, "config": state.get("config"), "history": history})
        return
    space_flags = " ".join(f"--space-option {k}={json.dumps(v, separators=(',', ':'))}"
                           for k, v in setup["space_options"].items())
    console.print(f"[bold]{checkpoint}[/]: space {setup['space']} {space_flags} on {setup['dataset']} "
                  f"({setup['num_classes']} classes)", highlight=False, soft_wrap=True)
    t = Table(title="val accuracy after each epoch (BN recalibrated)", title_justify="left")
    for col in ("phase", "epoch", "loss", "largest %", "smallest %", "seconds"):
        t.add_column(col, justify="left" if col == "phase" else "right")
    for r in history:
        t.add_row(r["phase"], f"{r['epoch'] + 1}/{r['epochs']}", f"{r['loss']:.4f}",
                  f"{100 * r['max_val']:.2f}", f"{100 * r['min_val']:.2f}", f"{r['seconds']:.1f}")
    console.print(t)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="supernet")
