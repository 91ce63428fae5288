"""Composable block specs: one description that both builds an nn.Module and emits its layers.

A block spec is a frozen (hashable) dataclass with two methods:

- ``build()`` returns the nn.Module;
- ``emit(graph, x, name)`` appends the same layers, in ``forward`` order and under the same
  qualified names, to a :class:`LayerGraph` and returns the output node, without torch.

Writing each block once this way is what lets the analytic cost and the module profiler agree.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch import nn

from edgenas.ops import Activation, Add, BatchNorm2d, Conv2d, LayerGraph, Op
from edgenas.ops.specs import Shape


@runtime_checkable
class Block(Protocol):
    def build(self) -> nn.Module: ...

    def emit(self, g: LayerGraph, x: str, name: str) -> str: ...


def join(name: str, child: str) -> str:
    return f"{name}.{child}" if name else child


@dataclass(frozen=True, slots=True)
class Layer:
    """A primitive op used as a block."""

    op: Op

    def build(self) -> nn.Module:
        return self.op.to_module()

    def emit(self, g: LayerGraph, x: str, name: str) -> str:
        return g.add(name, self.op, x)


@dataclass(frozen=True, slots=True)
class Seq:
    """Named children run one after another (an ``nn.Sequential``)."""

    children: tuple[tuple[str, Block], ...]

    def build(self) -> nn.Module:
        return nn.Sequential(OrderedDict((n, b.build()) for n, b in self.children))

    def emit(self, g: LayerGraph, x: str, name: str) -> str:
        for child, block in self.children:
            x = block.emit(g, x, join(name, child))
        return x


def seq(*blocks: Block | Op, names: tuple[str, ...] | None = None) -> Seq:
    """A :class:`Seq` of blocks (ops are wrapped as layers), named "0", "1", ... by default."""
    names = names or tuple(str(i) for i in range(len(blocks)))
    wrapped = tuple(Layer(b) if isinstance(b, Op) else b for b in blocks)
    return Seq(tuple(zip(names, wrapped, strict=True)))


def conv_bn_act(
    cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1,
    act: str | None = "relu",
) -> Seq:
    """Conv (no bias) -> BN -> activation, the unit most CNNs are made of."""
    ops: list[Op] = [Conv2d(cin, cout, kernel, stride, groups=groups), BatchNorm2d(cout)]
    if act is not None:
        ops.append(Activation(act))
    return seq(*ops)


class _ResidualModule(nn.Module):
    def __init__(self, body: nn.Module, shortcut: nn.Module | None, act: nn.Module | None):
        super().__init__()
        self.body = body
        self.shortcut = shortcut
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        out = out + (x if self.shortcut is None else self.shortcut(x))
        return out if self.act is None else self.act(out)


@dataclass(frozen=True, slots=True)
class Residual:
    """``act(body(x) + shortcut(x))``; shortcut None is the identity."""

    body: Block
    shortcut: Block | None = None
    act: str | None = None

    def build(self) -> nn.Module:
        return _ResidualModule(
            self.body.build(),
            None if self.shortcut is None else self.shortcut.build(),
            None if self.act is None else Activation(self.act).to_module(),
        )

    def emit(self, g: LayerGraph, x: str, name: str) -> str:
        out = self.body.emit(g, x, join(name, "body"))
        skip = x if self.shortcut is None else self.shortcut.emit(g, x, join(name, "shortcut"))
        y = g.add(join(name, "add"), Add(), out, skip)
        return y if self.act is None else g.add(join(name, "act"), Activation(self.act))


def graph_of(block: Block, input_shape: Shape) -> LayerGraph:
    """The layer graph of ``block`` on a ``(C, H, W)`` input, built without torch modules."""
    g = LayerGraph(tuple(input_shape))
    block.emit(g, "input", "")
    return g
