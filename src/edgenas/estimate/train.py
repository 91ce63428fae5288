"""Short-schedule training: the accuracy estimate of a candidate network, reproducible on CPU.

``train(model, data, TrainConfig(...))`` runs SGD (momentum, Nesterov) or AdamW under a cosine
schedule with optional linear warmup, label smoothing, an epoch or step budget and early
stopping on validation accuracy. Every random draw (shuffling, augmentation, dropout) is
seeded from the config's seed and the epoch number, so the same seed gives bit-identical
weights on the same machine, and a run resumed from a checkpoint continues exactly as an
uninterrupted one would. A NaN or infinite loss raises :class:`TrainingDiverged`.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from edgenas.errors import EdgenasError
from edgenas.estimate.data import Dataset

OptimizerName = Literal["sgd", "adamw"]
CHECKPOINT_FORMAT = "edgenas-checkpoint-v1"


class TrainingDiverged(EdgenasError):
    """The loss became NaN or infinite; a search runner records the trial as failed."""

    def __init__(self, epoch: int, step: int, loss: float) -> None:
        super().__init__(
            f"training diverged: loss is {loss} at epoch {epoch + 1}, step {step:,}; "
            "lower the learning rate or add warmup"
        )
        self.epoch, self.step, self.loss = epoch, step, loss


@dataclass(frozen=True)
class TrainConfig:
    """How to train; defaults suit a small network on a small dataset."""

    epochs: int = 5
    max_steps: int | None = None  # a step budget; stops early within the last epoch
    batch_size: int = 128
    optimizer: OptimizerName = "sgd"
    lr: float | None = None  # None: 0.05 for SGD, 0.002 for AdamW
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float | None = None  # None: 5e-4 for SGD, 0.05 for AdamW
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.1
    patience: int | None = None  # stop after this many epochs without a better val accuracy
    restore_best: bool = True  # end with the weights of the best val epoch
    seed: int = 0
    threads: int | None = None  # torch threads during training; None: leave as is
    eval_batch_size: int = 1000
    channels_last: bool = True  # NHWC: ~1.5x faster convolutions on CPU

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise EdgenasError(f"unknown optimizer {self.optimizer!r}; use one of {', '.join(OPTIMIZERS)}")
        checks = [
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.max_steps is None or self.max_steps >= 1, f"max steps must be >= 1, got {self.max_steps}"),
            (self.batch_size >= 1, f"batch size must be >= 1, got {self.batch_size}"),
            (self.lr is None or (math.isfinite(self.lr) and self.lr > 0),
             f"learning rate must be > 0, got {self.lr}"),
            (0 <= self.label_smoothing < 1, f"label smoothing must be in [0, 1), got {self.label_smoothing}"),
            (self.warmup_epochs >= 0, f"warmup epochs must be >= 0, got {self.warmup_epochs}"),
            (self.patience is None or self.patience >= 1, f"patience must be >= 1, got {self.patience}"),
        ]
        for ok, message in checks:
            if not ok:
                raise EdgenasError(f"{message}; fix the training settings")

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else OPTIMIZERS[self.optimizer].lr

    @property
    def decay(self) -> float:
        return self.weight_decay if self.weight_decay is not None else OPTIMIZERS[self.optimizer].weight_decay

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


# --- optimizers -----------------------------------------------------------------------------
@dataclass(frozen=True)
class OptimizerEntry:
    make: Callable[[list[dict[str, Any]], TrainConfig], torch.optim.Optimizer]
    lr: float
    weight_decay: float


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """No weight decay on BN parameters and biases (1-D tensors), as timm does."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


OPTIMIZERS: dict[str, OptimizerEntry] = {
    "sgd": OptimizerEntry(
        lambda groups, c: torch.optim.SGD(groups, lr=c.learning_rate, momentum=c.momentum,
                                          nesterov=c.nesterov and c.momentum > 0),
        lr=0.05, weight_decay=5e-4,
    ),
    "adamw": OptimizerEntry(lambda groups, c: torch.optim.AdamW(groups, lr=c.learning_rate),
                            lr=0.002, weight_decay=0.05),
}


def cosine_with_warmup(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    """LR factor at a step: linear warmup from ~0 to 1, then cosine decay to 0 at the end."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


# --- results and checkpoints ----------------------------------------------------------------
@dataclass
class TrainResult:
    """What a training run measured; accuracies are fractions in [0, 1]."""

    train_loss: list[float] = field(default_factory=list)  # mean loss of each epoch
    val_acc: list[float] = field(default_factory=list)  # after each epoch (empty: no val split)
    test_acc: float | None = None
    best_val_acc: float | None = None
    best_epoch: int | None = None  # 0-based epoch of the best val accuracy
    epochs_run: int = 0
    steps: int = 0
    seconds: float = 0.0
    stopped_early: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EpochStats:
    epoch: int  # 0-based
    epochs: int  # planned in all (fewer than the config's under a step budget)
    train_loss: float
    val_acc: float | None
    lr: float
    seconds: float


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` atomically (temp file, then rename): a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": CHECKPOINT_FORMAT, **state}, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint written by :func:`save_checkpoint`, loaded with ``weights_only=True``."""
    path = Path(path)
    if not path.is_file():
        raise EdgenasError(f"checkpoint {path} does not exist; give the path of a saved checkpoint")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # zip, pickle and EOF errors all mean the same thing here
        reason = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        raise EdgenasError(
            f"checkpoint {path} is corrupt, truncated or not a weights-only file ({reason}); "
            "delete it and train again"
        ) from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise EdgenasError(f"{path} is not an edgenas checkpoint; give a file saved by edgenas train")
    return state


def load_model_state(model: nn.Module, state: dict[str, Any], path: str | Path = "checkpoint",
                     final: bool = False) -> None:
    """Load a checkpoint's weights into ``model``; a different network is an EdgenasError.

    ``final``: the weights :func:`train` returned (the best val epoch's when it kept them),
    rather than the last epoch's, which resuming needs.
    """
    weights = state.get("best_model") if final else None
    try:
        model.load_state_dict(weights if weights is not None else state["model"])
    except (RuntimeError, KeyError) as e:
        first = str(e).strip().splitlines()
        detail = first[1].strip() if len(first) > 1 else (first[0] if first else "")
        raise EdgenasError(
            f"checkpoint {path} holds weights of another network ({detail[:100]}); "
            "pass the same model or arch it was trained with"
        ) from None


# --- training -------------------------------------------------------------------------------
@contextlib.contextmanager
def isolated_rng(seed: int, threads: int | None) -> Iterator[None]:
    """Seed torch's global RNG (dropout) and set threads, restoring both afterwards."""
    before = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if threads is not None:
            torch.set_num_threads(threads)
        try:
            yield
        finally:
            torch.set_num_threads(before)


@torch.inference_mode()
def evaluate(model: nn.Module, data: Dataset, split: str = "test", batch_size: int = 1000) -> float:
    """Top-1 accuracy on a split, in eval mode (the model's mode is restored)."""
    was_training = model.training
    model.eval()
    correct = total = 0
    for x, y in data.loader(split, batch_size, shuffle=False, augment=False, drop_last=False):
        correct += int((model(x).argmax(1) == y).sum())
        total += len(y)
    model.train(was_training)
    return correct / total


class _Progress:
    """A rich progress bar on stderr, or nothing (``enabled=False`` or not a terminal)."""

    def __init__(self, enabled: bool, total: int, done: int) -> None:
        self.bar = None
        if enabled and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                TextColumn("{task.fields[info]}"), console=Console(stderr=True), transient=False,
            )
            self.task = self.bar.add_task("train", total=total, completed=done, info="")

    def __enter__(self) -> _Progress:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def update(self, advance: int, info: str) -> None:
        if self.bar is not None:
            self.bar.update(self.task, advance=advance, info=info)


def train(
    model: nn.Module, data: Dataset, config: TrainConfig | None = None, *,
    progress: bool = True, checkpoint: str | Path | None = None, resume: str | Path | None = None,
    on_epoch: Callable[[EpochStats], None] | None = None, extra: dict[str, Any] | None = None,
) -> TrainResult:
    """Train ``model`` in place on ``data`` and measure its val and test accuracy.

    ``checkpoint``: written after every epoch (model, optimizer, scheduler, epoch, config,
    history, plus ``extra``, e.g. the arch); ``resume``: continue from such a file with the
    config stored in it unless ``config`` is given. ``on_epoch`` sees each epoch's numbers.
    """
    state = load_checkpoint(resume) if resume is not None else None
    if config is None:
        config = TrainConfig.from_dict(state["config"]) if state is not None else TrainConfig()
    with isolated_rng(config.seed, config.threads):
        return _run(model, data, config, progress, checkpoint, state, resume, on_epoch, extra or {})


def _run(
    model: nn.Module, data: Dataset, config: TrainConfig, progress: bool, checkpoint: str | Path | None,
    state: dict[str, Any] | None, resume: str | Path | None, on_epoch: Callable[[EpochStats], None] | None,
    extra: dict[str, Any],
) -> TrainResult:
    start = time.perf_counter()
    loader = data.loader("train", config.batch_size, seed=config.seed)
    steps_per_epoch = len(loader)
    total_steps = config.epochs * steps_per_epoch
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)
    epochs = -(-total_steps // steps_per_epoch)
    optimizer = OPTIMIZERS[config.optimizer].make(_param_groups(model, config.decay), config)
    warmup = round(config.warmup_epochs * steps_per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_with_warmup(total_steps, warmup))
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    has_val = len(data.val) > 0

    result = TrainResult()
    best_state: dict[str, torch.Tensor] | None = None
    first_epoch = 0
    if state is not None:
        load_model_state(model, state, resume or "checkpoint")
        saved_with = state.get("config", {}).get("optimizer")
        try:
            if saved_with != config.optimizer:
                raise ValueError
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
        except (ValueError, KeyError):
            raise EdgenasError(
                f"checkpoint {resume} holds {saved_with} optimizer state that does not fit this "
                f"{config.optimizer} run; resume with --optimizer {saved_with}"
            ) from None
        first_epoch = int(state["epoch"]) + 1
        hist = state.get("result", {})
        result = TrainResult(**{k: v for k, v in hist.items() if k in {f.name for f in fields(TrainResult)}})
        best_state = state.get("best_model")
    step = result.steps
    bad_epochs = 0 if result.best_epoch is None else result.epochs_run - 1 - result.best_epoch
    done_early = result.stopped_early or step >= total_steps

    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    model.train()
    with _Progress(progress, total_steps, step) as bar:
        for epoch in range(first_epoch, epochs):
            if done_early:
                break
            t0 = time.perf_counter()
            torch.manual_seed(config.seed * 1_000_003 + epoch)  # dropout draws, reproducible on resume
            loader.set_epoch(epoch)
            loss_sum = torch.zeros(())
            n_batches = 0
            for x, y in loader:
                if config.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                loss = criterion(model(x), y)
                if not torch.isfinite(loss.detach()):
                    raise TrainingDiverged(epoch, step, loss.item())
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                loss_sum += loss.detach()
                n_batches += 1
                step += 1
                bar.update(1, f"epoch {epoch + 1}/{epochs}  loss {loss.item():.3f}")
                if step >= total_steps:
                    break
            result.train_loss.append(float(loss_sum) / max(1, n_batches))
            result.epochs_run = epoch + 1
            result.steps = step
            val = evaluate(model, data, "val", config.eval_batch_size) if has_val else None
            if val is not None:
                result.val_acc.append(val)
                if result.best_val_acc is None or val > result.best_val_acc:
                    result.best_val_acc, result.best_epoch, bad_epochs = val, epoch, 0
                    if config.restore_best:
                        best_state = copy.deepcopy(model.state_dict())
                else:
                    bad_epochs += 1
                if config.patience is not None and bad_epochs >= config.patience:
                    result.stopped_early = True
            model.train()
            lr = optimizer.param_groups[0]["lr"]
            if val is not None:
                bar.update(0, f"epoch {epoch + 1}/{epochs}  loss {result.train_loss[-1]:.3f}  val {val:.2%}")
            result.seconds = _elapsed(state, start)
            if checkpoint is not None:
                saved = {
                    "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "epoch": epoch, "config": config.to_dict(),
                    "result": result.to_dict(), "best_model": best_state, **extra,
                }
                save_checkpoint(checkpoint, saved)
            if on_epoch is not None:
                on_epoch(EpochStats(epoch, epochs, result.train_loss[-1], val, lr, time.perf_counter() - t0))
            if result.stopped_early or step >= total_steps:
                break

    if config.restore_best and best_state is not None:
        model.load_state_dict(best_state)
    result.test_acc = evaluate(model, data, "test", config.eval_batch_size) if len(data.test) else None
    result.seconds = _elapsed(state, start)
    if checkpoint is not None and result.epochs_run > first_epoch:
        save_checkpoint(checkpoint, {**saved, "result": result.to_dict()})  # now with the test accuracy
    return result


def _elapsed(state: dict[str, Any] | None, start: float) -> float:
    before = float(state.get("result", {}).get("seconds", 0.0)) if state is not None else 0.0
    return before + time.perf_counter() - start
