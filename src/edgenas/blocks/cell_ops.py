"""Candidate operations of cell search spaces (NAS-Bench-201, DARTS, NASNet) as block specs.

Each factory ``(channels, stride) -> Block`` maps ``channels`` to ``channels`` (halving the
resolution when ``stride`` is 2), so a cell can place any op on any edge. The op tables
``NB201_OPS``, ``DARTS_OPS`` and ``NASNET_OPS`` are registries: a space picks ops by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from edgenas.blocks.base import Block, Layer, join, seq
from edgenas.errors import EdgenasError
from edgenas.ops import Activation, BatchNorm2d, Concat, Conv2d, LayerGraph, Pool2d, View, Zero

OpFactory = Callable[[int, int], Block]


def relu_conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, dilation: int = 1,
                 groups: int = 1) -> Block:
    """ReLU -> Conv (no bias) -> BN, the conv unit of NAS-Bench-201 and DARTS cells."""
    return seq(
        Activation("relu"),
        Conv2d(cin, cout, kernel, stride, groups=groups, dilation=dilation),
        BatchNorm2d(cout),
    )


def dil_conv(cin: int, cout: int, kernel: int, stride: int, dilation: int) -> Block:
    """DARTS DilConv: ReLU, dilated depthwise kxk conv, 1x1 conv, BN."""
    return seq(
        Activation("relu"),
        Conv2d(cin, cin, kernel, stride, groups=cin, dilation=dilation),
        Conv2d(cin, cout, 1, 1, 0),
        BatchNorm2d(cout),
    )


def sep_conv(cin: int, cout: int, kernel: int, stride: int) -> Block:
    """DARTS SepConv: two (ReLU, depthwise kxk, 1x1, BN) units, the first carrying the stride."""
    return seq(
        Activation("relu"),
        Conv2d(cin, cin, kernel, stride, groups=cin),
        Conv2d(cin, cin, 1, 1, 0),
        BatchNorm2d(cin),
        Activation("relu"),
        Conv2d(cin, cin, kernel, 1, groups=cin),
        Conv2d(cin, cout, 1, 1, 0),
        BatchNorm2d(cout),
    )


@dataclass(frozen=True, slots=True)
class Identity:
    """The skip connection: its output is its input (a zero-cost view)."""

    def build(self) -> nn.Module:
        return nn.Identity()

    def emit(self, g: LayerGraph, x: str, name: str) -> str:
        return g.add(name, View(shape=g.shape(x)), x)


class _StridedZero(nn.Module):
    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


@dataclass(frozen=True, slots=True)
class StridedZero:
    """The 'none' op of a reduction edge: zeros at the strided resolution."""

    stride: int = 2

    def build(self) -> nn.Module:
        return _StridedZero(self.stride)

    def emit(self, g: LayerGraph, x: str, name: str) -> str:
        c, h, w = g.shape(x)
        s = self.stride
        sliced = g.add(join(name, "slice"), View(shape=(c, -(-h // s), -(-w // s))), x)
        return g.add(name, Zero(), sliced)


def zero(stride: int = 1) -> Block:
    """The 'none' op: all zeros (strided on a reduction edge)."""
    return Layer(Zero()) if stride == 1 else StridedZero(stride)


class _FactorizedReduceModule(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.relu = nn.ReLU()
        self.conv_1 = nn.Conv2d(cin, cout // 2, 1, 2, 0, bias=False)
        self.conv_2 = nn.Conv2d(cin, cout - cout // 2, 1, 2, 0, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        out = torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1)
        return self.bn(out)


@dataclass(frozen=True, slots=True)
class FactorizedReduce:
    """DARTS/NASNet stride-2 skip: two offset 1x1 stride-2 convs, concatenated, then BN.

    The input's height and width must be even (both halves then have the same size).
    """

    cin: int
    cout: int

    def build(self) -> nn.Module:
        return _FactorizedReduceModule(self.cin, self.cout)

    def emit(self, g: LayerGraph, x: str, name: str) -> str:
        c, h, w = g.shape(x)
        if h % 2 or w % 2:
            raise EdgenasError(
                f"FactorizedReduce at {name!r} needs an even input size, got {h}x{w}; "
                "use a resolution divisible by 4"
            )
        x = g.add(join(name, "relu"), Activation("relu"), x)
        a = g.add(join(name, "conv_1"), Conv2d(self.cin, self.cout // 2, 1, 2, 0), x)
        shifted = g.add(join(name, "shift"), View(shape=(c, h - 1, w - 1)), x)
        b = g.add(join(name, "conv_2"), Conv2d(self.cin, self.cout - self.cout // 2, 1, 2, 0), shifted)
        cat = g.add(join(name, "cat"), Concat(), a, b)
        return g.add(join(name, "bn"), BatchNorm2d(self.cout), cat)


def skip(channels: int, stride: int) -> Block:
    """Identity, or FactorizedReduce on a stride-2 edge."""
    return Identity() if stride == 1 else FactorizedReduce(channels, channels)


def pool(mode: str, channels: int, stride: int) -> Block:
    """3x3 max or average pooling, padding 1; average pooling excludes the padding."""
    return Layer(Pool2d(mode, 3, stride, 1, count_include_pad=False))


NB201_OPS: dict[str, OpFactory] = {
    "none": lambda c, s: zero(s),
    "skip_connect": skip,
    "nor_conv_1x1": lambda c, s: relu_conv_bn(c, c, 1, s),
    "nor_conv_3x3": lambda c, s: relu_conv_bn(c, c, 3, s),
    "avg_pool_3x3": lambda c, s: pool("avg", c, s),
}

DARTS_OPS: dict[str, OpFactory] = {
    "none": lambda c, s: zero(s),
    "max_pool_3x3": lambda c, s: pool("max", c, s),
    "avg_pool_3x3": lambda c, s: pool("avg", c, s),
    "skip_connect": skip,
    "sep_conv_3x3": lambda c, s: sep_conv(c, c, 3, s),
    "sep_conv_5x5": lambda c, s: sep_conv(c, c, 5, s),
    "dil_conv_3x3": lambda c, s: dil_conv(c, c, 3, s, 2),
    "dil_conv_5x5": lambda c, s: dil_conv(c, c, 5, s, 2),
}

NASNET_OPS: dict[str, OpFactory] = {
    "identity": skip,
    "sep_conv_3x3": lambda c, s: sep_conv(c, c, 3, s),
    "sep_conv_5x5": lambda c, s: sep_conv(c, c, 5, s),
    "avg_pool_3x3": lambda c, s: pool("avg", c, s),
    "max_pool_3x3": lambda c, s: pool("max", c, s),
    "conv_1x1": lambda c, s: relu_conv_bn(c, c, 1, s),
    "conv_3x3": lambda c, s: relu_conv_bn(c, c, 3, s),
    "dil_conv_3x3": lambda c, s: dil_conv(c, c, 3, s, 2),
    "sep_conv_7x7": lambda c, s: sep_conv(c, c, 7, s),
}


def make_op(table: dict[str, OpFactory], name: str, channels: int, stride: int) -> Block:
    if name not in table:
        raise EdgenasError(f"unknown cell op {name!r}; choose one of {', '.join(table)}")
    return table[name](channels, stride)
