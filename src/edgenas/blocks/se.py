"""Squeeze-and-excitation (Hu et al. 2018), as MobileNetV3 and EfficientNet use it.

``x * gate(fc2(act(fc1(avgpool(x)))))``: a per-channel gate computed from global context.
The product is a broadcasting :class:`~edgenas.ops.Mul`, so it costs no MACs, only the two
1x1 convs on a 1x1 map do.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from edgenas.blocks.base import join
from edgenas.ops import Activation, Conv2d, GlobalPool, LayerGraph, Mul


class _SEModule(nn.Module):
    def __init__(self, channels: int, squeeze: int, act: str, gate: str) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.act = Activation(act).to_module()
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.gate = Activation(gate).to_module()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.gate(self.fc2(self.act(self.fc1(self.pool(x)))))
        return scale * x


@dataclass(frozen=True, slots=True)
class SqueezeExcite:
    """SE gate over ``channels`` with a ``squeeze``-wide bottleneck (1x1 convs with bias)."""

    channels: int
    squeeze: int
    act: str = "relu"
    gate: str = "hardsigmoid"  # MobileNetV3; "sigmoid" for SENet / EfficientNet

    def build(self) -> nn.Module:
        return _SEModule(self.channels, self.squeeze, self.act, self.gate)

    def emit(self, g: LayerGraph, x: str, name: str) -> str:
        s = g.add(join(name, "pool"), GlobalPool(), x)
        s = g.add(join(name, "fc1"), Conv2d(self.channels, self.squeeze, 1, 1, 0, bias=True), s)
        s = g.add(join(name, "act"), Activation(self.act), s)
        s = g.add(join(name, "fc2"), Conv2d(self.squeeze, self.channels, 1, 1, 0, bias=True), s)
        s = g.add(join(name, "gate"), Activation(self.gate), s)
        return g.add(join(name, "mul"), Mul(), s, x)
