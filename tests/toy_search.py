"""A tiny real search space and evaluators for runner tests (importable by worker processes)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from edgenas.blocks import conv_bn_act, seq
from edgenas.ops import GlobalPool, Linear
from edgenas.spaces.base import Arch, Dim, SearchSpace


class ToySpace(SearchSpace):
    """width x depth x kernel of a small CNN: 4 * 3 * 2 = 24 archs with real costs."""

    name = "toy"

    def dims(self):
        return [Dim("width", (4, 8, 16, 32)), Dim("depth", (1, 2, 3)), Dim("kernel", (3, 5))]

    def block(self, arch: Arch, num_classes: int = 10):
        w, k = arch["width"], arch["kernel"]
        layers = [conv_bn_act(1, w, k)] + [conv_bn_act(w, w, k) for _ in range(arch["depth"] - 1)]
        return seq(*layers, GlobalPool(flatten=True), Linear(w, num_classes))

    def input_shape(self, arch: Arch):
        return (1, 16, 16)


def score(arch: Arch) -> float:
    """A smooth made-up accuracy: wider, deeper, bigger kernels are better."""
    return 50 + arch["width"] + 5 * arch["depth"] + arch["kernel"]


def evaluate(arch: Arch) -> dict[str, float]:
    return {"accuracy": score(arch)}


class SlowLoggingEvaluator:
    """Sleeps, then logs the arch it evaluated: lets a test see every evaluation that happened."""

    def __init__(self, log: str, delay: float = 0.15, fail_depth: int | None = None) -> None:
        self.log, self.delay, self.fail_depth = log, delay, fail_depth

    def __call__(self, arch: Arch) -> dict[str, float]:
        time.sleep(self.delay)
        if arch["depth"] == self.fail_depth:
            raise RuntimeError("loss is NaN")
        with Path(self.log).open("a") as f:
            f.write(f"{arch.id} {os.getpid()}\n")
        return evaluate(arch)
