"""``edgenas train``: train a registered model or an arch of a space on a dataset, short schedule.

The checkpoint records the network (model, or space + options + arch), the data settings and
the training config, so ``edgenas train --resume CKPT`` continues a run without restating
them; options given with ``--resume`` override what the checkpoint holds.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from edgenas.cli.output import console, fmt_int, print_json
from edgenas.errors import EdgenasError

# the network when neither --model nor --space is given: a small fixed arch of the MCUNet space
DEFAULT_SPACE = "mcunet"
DEFAULT_SPACE_OPTIONS: dict[str, Any] = {
    "widths": [0.5], "stages": [[24, 2, [2]], [40, 2, [2]]], "stem": 16, "first": 8,
}


def _arch_text(arch: str) -> str:
    """``--arch`` is a JSON file, or the arch itself (JSON or the space's arch string)."""
    path = Path(arch)
    if path.suffix == ".json" or path.is_file():
        if not path.is_file():
            raise EdgenasError(f"arch file {path} not found; give an arch JSON file or an arch string")
        return path.read_text()
    return arch


def _setup(state: dict[str, Any] | None, given: dict[str, Any], space_options: list[str] | None) -> dict:
    """What to train on what: the checkpoint's setup, overridden by the options given."""
    from edgenas.cli.options import parse_options

    setup: dict[str, Any] = dict(state.get("setup", {})) if state is not None else {}
    if given["model"] and given["space"]:
        raise EdgenasError("give --model or --space with --arch, not both")
    if given["arch"] and not given["space"]:
        raise EdgenasError("--arch needs --space NAME, the space the arch belongs to")
    if given["space"] and not given["arch"]:
        raise EdgenasError(f"--space {given['space']} needs --arch FILE.json (an arch of that space)")
    if given["model"]:
        setup.update(model=given["model"], width=given["width"], space=None, space_options=None, arch=None)
    elif given["space"]:
        setup.update(model=None, space=given["space"], space_options=parse_options(space_options),
                     arch=_arch_text(given["arch"]))
    elif not setup.get("model") and not setup.get("space"):
        setup.update(model=None, space=DEFAULT_SPACE, space_options=dict(DEFAULT_SPACE_OPTIONS), arch=None)
    for key in ("dataset", "data_dir", "resolution", "train_size", "val_fraction"):
        if given[key] is not None:
            setup[key] = given[key]
    setup.setdefault("dataset", "digits")
    return setup


def _space_arch(setup: dict[str, Any], resolution: int):
    """The space and arch to train; the default network gets the dataset's resolution."""
    from edgenas.cli.space_cmd import open_space

    options = dict(setup.get("space_options") or {})
    if setup.get("arch") is None:  # the default network
        options["resolutions"] = [resolution]
    space = open_space(setup["space"], [f"{k}={json.dumps(v)}" for k, v in options.items()])
    if setup.get("arch") is None:
        arch = space.make({d.name: d.options[0] for d in space.dims()})
    elif isinstance(setup["arch"], str):
        arch = space.parse(setup["arch"])
    else:
        arch = space.make(setup["arch"])
    setup["space_options"], setup["arch"] = options, arch.values
    return space, arch


def _load_data(setup: dict[str, Any], resolution: int, channels: int | None, seed: int):
    from edgenas.estimate.data import load_dataset

    return load_dataset(setup["dataset"], setup.get("data_dir"), resolution=resolution, channels=channels,
                        val_fraction=setup.get("val_fraction") or 0.1, seed=seed,
                        train_size=setup.get("train_size"))


def _model_and_data(setup: dict[str, Any], seed: int, init_seed: int):
    """(network, dataset, readable network name), input shapes matched to each other."""
    import torch

    from edgenas.estimate.data import dataset_info

    info = dataset_info(setup["dataset"])  # an unknown dataset fails before anything is built
    resolution = setup.get("resolution") or info.resolution
    if setup.get("model"):
        from edgenas.models import model_spec

        data = _load_data(setup, resolution, None, seed)
        torch.manual_seed(init_seed)
        try:
            spec = model_spec(setup["model"], data.num_classes, setup.get("width"), in_channels=data.channels)
        except TypeError:  # a factory without in_channels takes RGB
            data = _load_data(setup, resolution, 3, seed)
            spec = model_spec(setup["model"], data.num_classes, setup.get("width"))
        setup["resolution"] = resolution
        return spec.build(), data, setup["model"]
    space, arch = _space_arch(setup, resolution)
    channels, arch_resolution, _ = space.input_shape(arch)
    if setup.get("resolution") and setup["resolution"] != arch_resolution:
        raise EdgenasError(
            f"the arch's resolution is {arch_resolution}, not {setup['resolution']}; drop --resolution"
        )
    data = _load_data(setup, arch_resolution, channels, seed)
    torch.manual_seed(init_seed)
    return space.build(arch, data.num_classes), data, f"{space.name} {space.to_string(arch)}"


def train_cmd(
    dataset: Annotated[str | None, typer.Option(help="digits, fashion-mnist, cifar10 or folder")] = None,
    data_dir: Annotated[str | None, typer.Option(help="directory of the dataset's files")] = None,
    model: Annotated[str | None, typer.Option(help="registered model name (edgenas models)")] = None,
    width: Annotated[float | None, typer.Option(help="width multiplier of --model")] = None,
    space: Annotated[str | None, typer.Option(help="search space of --arch")] = None,
    space_option: Annotated[
        list[str] | None, typer.Option("--option", "-o", help="space option KEY=VALUE (JSON value)")
    ] = None,
    arch: Annotated[str | None, typer.Option(help="arch JSON file, or the arch as JSON or string")] = None,
    epochs: Annotated[int | None, typer.Option(help="epochs [default: 5]")] = None,
    max_steps: Annotated[int | None, typer.Option(help="step budget (may stop inside an epoch)")] = None,
    optimizer: Annotated[str | None, typer.Option(help="sgd or adamw [default: sgd]")] = None,
    lr: Annotated[float | None, typer.Option(help="learning rate [default: 0.05 sgd, 0.002 adamw]")] = None,
    batch_size: Annotated[int | None, typer.Option(help="batch size [default: 128]")] = None,
    warmup: Annotated[float | None, typer.Option(help="warmup epochs [default: 0]")] = None,
    label_smoothing: Annotated[float | None, typer.Option(help="label smoothing [default: 0.1]")] = None,
    patience: Annotated[int | None, typer.Option(help="stop after this many epochs without progress")] = None,
    resolution: Annotated[
        int | None, typer.Option(help="input size [default: the arch's, else the dataset's]")
    ] = None,
    train_size: Annotated[int | None, typer.Option(help="train on this many images (stratified)")] = None,
    val_fraction: Annotated[float | None, typer.Option(help="share of train held out [default: 0.1]")] = None,
    seed: Annotated[int | None, typer.Option(help="random seed [default: 0]")] = None,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads")] = None,
    out: Annotated[str, typer.Option(help="output directory")] = "runs/train",
    checkpoint: Annotated[
        str | None, typer.Option(help="checkpoint to write [default: OUT/checkpoint.pt, or --resume's]")
    ] = None,
    resume: Annotated[str | None, typer.Option(help="continue from this checkpoint")] = None,
    progress: Annotated[bool, typer.Option(help="progress bar on a terminal")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """Train a network on a dataset with a short schedule; print its accuracies, save a checkpoint."""
    from edgenas.estimate.train import EpochStats, TrainConfig, load_checkpoint, train

    state = load_checkpoint(resume) if resume else None
    given = {"dataset": dataset, "data_dir": data_dir, "model": model, "width": width, "space": space,
             "arch": arch, "resolution": resolution, "train_size": train_size, "val_fraction": val_fraction}
    setup = _setup(state, given, space_option)
    config_dict = dict(state["config"]) if state is not None else {}
    overrides = {"epochs": epochs, "max_steps": max_steps, "optimizer": optimizer, "lr": lr,
                 "batch_size": batch_size, "warmup_epochs": warmup, "label_smoothing": label_smoothing,
                 "patience": patience, "seed": seed, "threads": threads}
    config_dict.update({k: v for k, v in overrides.items() if v is not None})
    config = TrainConfig.from_dict(config_dict)
    net, data, label = _model_and_data(setup, config.seed, config.seed)
    ckpt = Path(checkpoint or resume or Path(out) / "checkpoint.pt")
    params = sum(p.numel() for p in net.parameters())
    bar = progress and sys.stderr.isatty() and not as_json
    if not as_json:
        c, h, w = data.input_shape
        sizes = " / ".join(f"{fmt_int(len(data.split(s)))} {s}" for s in ("train", "val", "test"))
        console.print(
            f"[bold]edgenas train[/] {label} ({fmt_int(params)} params) on {data.name} {c}x{h}x{w}: {sizes}",
            highlight=False, soft_wrap=True,
        )

    def report(s: EpochStats) -> None:
        if not as_json and not bar:
            val = f"  val {100 * s.val_acc:.2f}%" if s.val_acc is not None else ""
            console.print(f"epoch {s.epoch + 1}/{s.epochs}  loss {s.train_loss:.4f}{val}  "
                          f"lr {s.lr:.4g}  {s.seconds:.1f} s", highlight=False)

    extra = {"setup": setup, "model_name": setup.get("model"), "space": setup.get("space"),
             "arch": setup.get("arch"), "dataset": data.name}
    result = train(net, data, config, progress=bar, checkpoint=ckpt, resume=resume, on_epoch=report,
                   extra=extra)
    if as_json:
        print_json({**result.to_dict(), "params": params, "checkpoint": str(ckpt)})
        return
    t = Table(show_header=False, title=f"{label} on {data.name}", title_justify="left")
    t.add_column("metric", style="bold")
    t.add_column("value", justify="right")
    t.add_row("parameters", fmt_int(params))
    t.add_row("epochs, steps", f"{result.epochs_run}, {fmt_int(result.steps)}"
              + ("  (stopped early)" if result.stopped_early else ""))
    if result.best_val_acc is not None:
        best = f"{100 * result.best_val_acc:.2f}% (epoch {(result.best_epoch or 0) + 1})"
        t.add_row("best val accuracy", best)
    if result.test_acc is not None:
        t.add_row("test accuracy", f"{100 * result.test_acc:.2f}%")
    t.add_row("training time", f"{result.seconds:.1f} s")
    t.add_row("checkpoint", str(ckpt))
    console.print(t)


def register(app: typer.Typer) -> None:
    app.command("train")(train_cmd)
