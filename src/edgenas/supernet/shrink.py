"""Progressive shrinking (Once-for-All): train the full network, then make it elastic step by step.

Phases, each with its own optimizer and cosine schedule, sampling random subnets every step:

1. ``full``: the largest network only (random resolution).
2. ``kernel``: random kernel sizes per block.
3. ``depth``: random kernels and stage depths.
4. ``expand``: random kernels, depths and expand ratios; the hidden channels of every block
   are first sorted by importance so that slicing keeps the most important ones.

OFA splits depth and expand into two sub-phases each ({3,4} then {2,3,4}); here each
dimension gets one phase over all its options. Every shrinking step can distil from the
full network as it was after phase 1 (soft-target cross entropy, teacher in train mode as
OFA runs it). Each step averages the loss of ``subnets_per_step`` random subnets.
All draws are seeded from (seed, phase, epoch), so a run resumed from a checkpoint ends
with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgenas.errors import EdgenasError
from edgenas.estimate.data import Dataset
from edgenas.estimate.inherit import recalibrate_bn
from edgenas.estimate.train import (
    OPTIMIZERS,
    TrainConfig,
    TrainingDiverged,
    _param_groups,
    cosine_with_warmup,
    evaluate,
    isolated_rng,
    save_checkpoint,
)
from edgenas.spaces.base import Arch
from edgenas.supernet.checkpoint import KIND, SupernetSetup
from edgenas.supernet.ofa import OFASupernet

#: phase name -> the dimensions it samples at random (the others stay at their largest option)
PHASES: dict[str, tuple[str, ...]] = {
    "full": (),
    "kernel": ("kernel",),
    "depth": ("kernel", "depth"),
    "expand": ("kernel", "depth", "expand"),
}


@dataclass(frozen=True)
class ShrinkConfig:
    """How to train a supernet; optimizer fields mean what they mean in :class:`TrainConfig`."""

    epochs: int = 3  # per shrinking phase
    full_epochs: int | None = None  # of the full-network phase (None: ``epochs``)
    phases: tuple[str, ...] = ("full", "kernel", "depth", "expand")
    subnets_per_step: int = 2
    distill: bool = True
    kd_ratio: float = 1.0
    batch_size: int = 64
    optimizer: str = "sgd"
    lr: float | None = None  # full phase (None: the optimizer's default)
    shrink_lr: float | None = None  # shrinking phases (None: 0.4 x the full phase's)
    weight_decay: float | None = None
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.1
    bn_batches: int = 5  # BN recalibration batches when measuring subnets after each epoch
    seed: int = 0
    threads: int | None = None
    channels_last: bool = True  # NHWC: ~3x faster MBConv training on CPU

    def __post_init__(self) -> None:
        object.__setattr__(self, "phases", tuple(self.phases))
        unknown = [p for p in self.phases if p not in PHASES]
        if unknown or not self.phases:
            raise EdgenasError(
                f"unknown supernet phase {unknown[0] if unknown else '(none given)'}; "
                f"use some of {', '.join(PHASES)} in that order"
            )
        checks = [
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.full_epochs is None or self.full_epochs >= 1,
             f"full epochs must be >= 1, got {self.full_epochs}"),
            (self.subnets_per_step >= 1, f"subnets per step must be >= 1, got {self.subnets_per_step}"),
            (self.kd_ratio >= 0, f"kd ratio must be >= 0, got {self.kd_ratio}"),
            (self.bn_batches >= 1, f"BN batches must be >= 1, got {self.bn_batches}"),
            (self.shrink_lr is None or self.shrink_lr > 0, f"shrink lr must be > 0, got {self.shrink_lr}"),
        ]
        for ok, message in checks:
            if not ok:
                raise EdgenasError(f"{message}; fix the supernet training settings")
        self.train_config("full")  # validates the optimizer settings

    def phase_epochs(self, phase: str) -> int:
        return (self.full_epochs or self.epochs) if phase == "full" else self.epochs

    def train_config(self, phase: str) -> TrainConfig:
        """The optimizer and schedule settings of one phase."""
        base = TrainConfig(
            epochs=self.phase_epochs(phase), batch_size=self.batch_size, optimizer=self.optimizer,  # type: ignore[arg-type]
            lr=self.lr, weight_decay=self.weight_decay, warmup_epochs=self.warmup_epochs,
            label_smoothing=self.label_smoothing, seed=self.seed,
        )
        if phase == "full":
            return base
        lr = self.shrink_lr if self.shrink_lr is not None else 0.4 * base.learning_rate
        return TrainConfig(**{**base.to_dict(), "lr": lr})

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["phases"] = list(self.phases)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShrinkConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class StepInfo:
    phase: str
    phase_index: int
    step: int  # within the phase, 1-based
    steps: int  # of the phase
    loss: float


@dataclass(frozen=True)
class EpochRecord:
    """One epoch of one phase; accuracies (fractions) of the largest and smallest subnets on val."""

    phase: str
    epoch: int  # 0-based, within the phase
    epochs: int
    loss: float
    max_val: float
    min_val: float
    seconds: float


@torch.no_grad()
def subnet_accuracy(supernet: OFASupernet, arch: Arch, data: Dataset, *, split: str = "val",
                    bn_batches: int = 10, batch_size: int = 64, seed: int = 0) -> tuple[float, nn.Module]:
    """Accuracy of ``arch``'s subnet on ``split`` after recalibrating its BN on training batches.

    The supernet's BN statistics mix every subnet and resolution it trained; OFA recomputes
    each subnet's before measuring it. Returns (accuracy, the recalibrated subnet).
    """
    subnet = supernet.extract_subnet(arch)
    batches = data.loader("train", batch_size, shuffle=True, augment=False, seed=seed)
    recalibrate_bn(subnet, batches, bn_batches)
    return evaluate(subnet.eval(), data, split), subnet


def _soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return -(target * F.log_softmax(logits, dim=1)).sum(1).mean()


def _make_optimizer(model: nn.Module, config: TrainConfig, steps: int):
    optimizer = OPTIMIZERS[config.optimizer].make(_param_groups(model, config.decay), config)
    warmup = round(config.warmup_epochs * steps / max(1, config.epochs))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_with_warmup(steps, warmup))
    return optimizer, scheduler


def _next_position(state: dict[str, Any] | None, config: ShrinkConfig) -> tuple[int, int]:
    """(phase index, epoch) to start at: after the last one a checkpoint saved."""
    if state is None:
        return 0, 0
    phase, epoch = int(state["phase"]), int(state["epoch"])
    if epoch + 1 < config.phase_epochs(config.phases[phase]):
        return phase, epoch + 1
    return phase + 1, 0


def train_supernet(
    supernet: OFASupernet, data: dict[int, Dataset], config: ShrinkConfig, setup: SupernetSetup, *,
    checkpoint: str | Path | None = None, resume: dict[str, Any] | None = None,
    on_step: Callable[[StepInfo], None] | None = None, on_epoch: Callable[[EpochRecord], None] | None = None,
) -> list[EpochRecord]:
    """Progressive shrinking of ``supernet`` in place; ``data`` maps each resolution to its dataset.

    ``checkpoint`` is written after every epoch; ``resume`` is such a checkpoint's contents
    (its weights are loaded here) to continue from.
    """
    resolutions = sorted(data)
    missing = set(supernet.space.resolutions) - set(resolutions)
    if missing:
        raise EdgenasError(
            f"no data at resolution(s) {sorted(missing)}; load the dataset at every resolution of the space"
        )
    with isolated_rng(config.seed, config.threads):
        return _run(supernet, data, resolutions, config, setup, checkpoint, resume, on_step, on_epoch)


def _run(
    supernet: OFASupernet, data: dict[int, Dataset], resolutions: list[int], config: ShrinkConfig,
    setup: SupernetSetup, checkpoint: str | Path | None, resume: dict[str, Any] | None,
    on_step: Callable[[StepInfo], None] | None, on_epoch: Callable[[EpochRecord], None] | None,
) -> list[EpochRecord]:
    history = [EpochRecord(**r) for r in (resume or {}).get("history", [])]
    start_phase, start_epoch = _next_position(resume, config)
    teacher: nn.Module | None = None
    if resume is not None:
        supernet.load_state_dict(resume["model"])
        if resume.get("teacher") is not None:
            teacher = supernet.space.build(supernet.max_arch(), supernet.num_classes)
            teacher.load_state_dict(resume["teacher"])
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    index = {r: i for i, r in enumerate(resolutions)}
    layout = torch.channels_last if config.channels_last else torch.contiguous_format
    supernet.to(memory_format=layout)
    max_arch, min_arch = supernet.max_arch(), supernet.min_arch()
    epoch_counter = sum(config.phase_epochs(p) for p in config.phases[:start_phase]) + start_epoch
    for pi in range(start_phase, len(config.phases)):
        phase = config.phases[pi]
        elastic = PHASES[phase]
        train_config = config.train_config(phase)
        first = start_epoch if pi == start_phase else 0
        if first == 0 and "expand" in elastic and (pi == 0 or "expand" not in PHASES[config.phases[pi - 1]]):
            supernet.sort_channels()
        if config.distill and phase != "full" and teacher is None:
            teacher = supernet.extract_subnet(max_arch)  # the full network, frozen from here on
            teacher.requires_grad_(False)
        if teacher is not None:
            teacher.to(memory_format=layout)
        loaders = [data[r].loader("train", config.batch_size, seed=config.seed) for r in resolutions]
        steps_per_epoch = min(len(loader) for loader in loaders)
        total = train_config.epochs * steps_per_epoch
        optimizer, scheduler = _make_optimizer(supernet, train_config, total)
        if first > 0 and resume is not None:
            optimizer.load_state_dict(resume["optimizer"])
            scheduler.load_state_dict(resume["scheduler"])
        for epoch in range(first, train_config.epochs):
            t0 = time.perf_counter()
            torch.manual_seed(config.seed * 1_000_003 + epoch_counter)
            rng = np.random.default_rng((config.seed, pi, epoch))
            supernet.train()
            loss_sum, n = 0.0, 0
            for loader in loaders:
                loader.set_epoch(epoch_counter)
            for b, batches in enumerate(zip(*loaders, strict=False)):
                optimizer.zero_grad(set_to_none=True)
                step_loss = 0.0
                for _ in range(config.subnets_per_step):
                    values = supernet.sample_values(rng, elastic)
                    x, y = batches[index[values["resolution"]]]
                    x = x.contiguous(memory_format=layout)
                    supernet.set_active(values)
                    logits = supernet(x)
                    loss = criterion(logits, y)
                    if teacher is not None and config.kd_ratio > 0:
                        with torch.no_grad():
                            soft = F.softmax(teacher.train()(x), dim=1)
                        loss = loss + config.kd_ratio * _soft_cross_entropy(logits, soft)
                    if not torch.isfinite(loss.detach()):
                        raise TrainingDiverged(epoch, epoch * steps_per_epoch + b, loss.item())
                    (loss / config.subnets_per_step).backward()
                    step_loss += loss.item() / config.subnets_per_step
                optimizer.step()
                scheduler.step()
                loss_sum += step_loss
                n += 1
                if on_step is not None:
                    on_step(StepInfo(phase, pi, epoch * steps_per_epoch + b + 1, total, step_loss))
            supernet.set_active(supernet.max_values())
            common = {"bn_batches": config.bn_batches, "batch_size": config.batch_size, "seed": config.seed}
            max_val, _ = subnet_accuracy(supernet, max_arch, data[max_arch["resolution"]], **common)
            min_val, _ = subnet_accuracy(supernet, min_arch, data[min_arch["resolution"]], **common)
            record = EpochRecord(phase, epoch, train_config.epochs, loss_sum / max(1, n), max_val, min_val,
                                 time.perf_counter() - t0)
            history.append(record)
            epoch_counter += 1
            if checkpoint is not None:
                save_checkpoint(checkpoint, {
                    "kind": KIND, "setup": setup.to_dict(), "config": config.to_dict(),
                    "model": supernet.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "phase": pi, "epoch": epoch,
                    "teacher": None if teacher is None else teacher.state_dict(),
                    "history": [asdict(r) for r in history],
                })
            if on_epoch is not None:
                on_epoch(record)
    supernet.set_active(supernet.max_values())
    return history
