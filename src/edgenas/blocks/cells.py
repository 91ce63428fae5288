"""Cells as block specs: a small DAG of ops over a list of states, and stacks of such cells.

A cell starts with its input states (optionally preprocessed), then appends one state per
node: node ``j`` applies one op to each of its source states and combines the results by
sum or channel concatenation (with an optional ``post`` block, e.g. a 1x1 conv restoring the
channel count). The cell's output is one state, or the concatenation of several. The same
description builds the nn.Module and emits the layer graph, in the same order and with the
same qualified names, so both cost routes agree exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from edgenas.blocks.base import Block, join, seq
from edgenas.blocks.cell_ops import FactorizedReduce, relu_conv_bn
from edgenas.errors import EdgenasError
from edgenas.ops import Add, BatchNorm2d, Concat, Conv2d, GlobalPool, LayerGraph, Linear

Combine = Literal["add", "concat"]


@dataclass(frozen=True, slots=True)
class CellNode:
    """One node: ``combine(op_k(state[srcs[k]]) for k)``, then ``post`` if given."""

    srcs: tuple[int, ...]
    ops: tuple[Block, ...]
    combine: Combine = "add"
    post: Block | None = None

    def __post_init__(self) -> None:
        if len(self.srcs) != len(self.ops) or not self.ops:
            raise EdgenasError("a cell node needs one op per source and at least one source")
        if self.combine not in ("add", "concat"):
            raise EdgenasError(f"unknown combine {self.combine!r}; use add or concat")


class _NodeModule(nn.Module):
    def __init__(self, spec: CellNode) -> None:
        super().__init__()
        self.ops = nn.ModuleList(op.build() for op in spec.ops)
        self.concat = spec.combine == "concat"
        if spec.post is not None:
            self.post = spec.post.build()
        self.has_post = spec.post is not None

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        if self.concat and len(xs) > 1:
            y = torch.cat([op(x) for op, x in zip(self.ops, xs, strict=True)], dim=1)
        else:
            y = self.ops[0](xs[0])
            for op, x in zip(self.ops[1:], xs[1:], strict=True):
                y = y + op(x)
        return self.post(y) if self.has_post else y


class _CellModule(nn.Module):
    def __init__(self, spec: Cell) -> None:
        super().__init__()
        if spec.preprocess:
            self.preprocess = nn.ModuleList(p.build() for p in spec.preprocess)
        self.has_preprocess = bool(spec.preprocess)
        self.nodes = nn.ModuleList(_NodeModule(n) for n in spec.nodes)
        self.srcs = [n.srcs for n in spec.nodes]
        self.outputs = spec.outputs

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        states = [p(x) for p, x in zip(self.preprocess, xs, strict=True)] if self.has_preprocess else list(xs)
        for node, srcs in zip(self.nodes, self.srcs, strict=True):
            states.append(node(*[states[s] for s in srcs]))
        if len(self.outputs) == 1:
            return states[self.outputs[0]]
        return torch.cat([states[i] for i in self.outputs], dim=1)


@dataclass(frozen=True, slots=True)
class Cell:
    """A cell with ``n_inputs`` input states; states are numbered inputs first, then nodes."""

    n_inputs: int
    nodes: tuple[CellNode, ...]
    outputs: tuple[int, ...]
    preprocess: tuple[Block, ...] = ()  # empty, or one block per input

    def __post_init__(self) -> None:
        if self.preprocess and len(self.preprocess) != self.n_inputs:
            raise EdgenasError(f"a cell with {self.n_inputs} inputs needs as many preprocess blocks")
        for j, node in enumerate(self.nodes):
            if any(not 0 <= s < self.n_inputs + j for s in node.srcs):
                raise EdgenasError(f"cell node {j} reads a state that does not exist yet: {node.srcs}")
        n_states = self.n_inputs + len(self.nodes)
        if not self.outputs or any(not 0 <= o < n_states for o in self.outputs):
            raise EdgenasError(f"cell outputs {self.outputs} must name states 0..{n_states - 1}")

    def build(self) -> nn.Module:
        return _CellModule(self)

    def emit(self, g: LayerGraph, x: str, name: str) -> str:
        return self.emit_cell(g, (x,), name)

    def emit_cell(self, g: LayerGraph, xs: tuple[str, ...], name: str) -> str:
        if len(xs) != self.n_inputs:
            raise EdgenasError(f"cell {name!r} takes {self.n_inputs} inputs, got {len(xs)}")
        states = [
            p.emit(g, x, join(name, f"preprocess.{i}"))
            for i, (p, x) in enumerate(zip(self.preprocess, xs, strict=True))
        ] if self.preprocess else list(xs)
        for j, node in enumerate(self.nodes):
            base = join(name, f"nodes.{j}")
            outs: list[str] = []
            y = ""
            for k, (op, s) in enumerate(zip(node.ops, node.srcs, strict=True)):
                out = op.emit(g, states[s], join(base, f"ops.{k}"))
                if node.combine == "concat" and len(node.ops) > 1:
                    outs.append(out)
                else:
                    y = out if k == 0 else g.add(join(base, f"add{k}"), Add(), y, out)
            if outs:
                y = g.add(join(base, "cat"), Concat(), *outs)
            if node.post is not None:
                y = node.post.emit(g, y, join(base, "post"))
            states.append(y)
        if len(self.outputs) == 1:
            return states[self.outputs[0]]
        return g.add(join(name, "cat"), Concat(), *(states[i] for i in self.outputs))


class _CellStackModule(nn.Module):
    def __init__(self, spec: CellStack) -> None:
        super().__init__()
        self.stem = spec.stem.build()
        self.cells = nn.ModuleList(c.build() for c in spec.cells)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return s1


@dataclass(frozen=True, slots=True)
class CellStack:
    """Stem, then two-input cells (DARTS/NASNet): cell ``i`` reads the outputs of cells i-2, i-1.

    The stem's output stands in for both missing predecessors of the first cell.
    """

    stem: Block
    cells: tuple[Cell, ...]

    def build(self) -> nn.Module:
        return _CellStackModule(self)

    def emit(self, g: LayerGraph, x: str, name: str) -> str:
        s0 = s1 = self.stem.emit(g, x, join(name, "stem"))
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell.emit_cell(g, (s0, s1), join(name, f"cells.{i}"))
        return s1


#: builds cell ``i`` from (C_prev_prev, C_prev, C, reduction, reduction_prev) -> (cell, out channels)
CellFactory = Callable[[int, int, int, bool, bool], tuple[Cell, int]]


def reduction_layers(layers: int) -> tuple[int, ...]:
    """DARTS/NASNet-CIFAR placement: reduction cells at 1/3 and 2/3 of the depth."""
    return tuple(sorted({layers // 3, 2 * layers // 3}))


def cell_network(make_cell: CellFactory, channels: int, layers: int, num_classes: int,
                 stem_multiplier: int = 3) -> Block:
    """DARTS' NetworkCIFAR skeleton: 3x3 conv stem (3 -> stem_multiplier*C) + BN, ``layers``
    two-input cells (channels doubling at each reduction), global pool, linear classifier."""
    if layers < 1 or channels < 1:
        raise EdgenasError(f"a cell network needs layers >= 1 and channels >= 1, got {layers}, {channels}")
    c_stem = stem_multiplier * channels
    stem = seq(Conv2d(3, c_stem, 3, 1), BatchNorm2d(c_stem))
    reductions = reduction_layers(layers)
    c_pp, c_p, c = c_stem, c_stem, channels
    cells: list[Cell] = []
    reduction_prev = False
    for i in range(layers):
        reduction = i in reductions
        if reduction:
            c *= 2
        cell, c_out = make_cell(c_pp, c_p, c, reduction, reduction_prev)
        cells.append(cell)
        c_pp, c_p, reduction_prev = c_p, c_out, reduction
    return seq(
        CellStack(stem, tuple(cells)), GlobalPool(flatten=True), seq(Linear(c_p, num_classes)),
        names=("features", "pool", "classifier"),
    )


def two_input_preprocess(c_pp: int, c_p: int, c: int, reduction_prev: bool) -> tuple[Block, Block]:
    """DARTS' cell preprocessing: 1x1 ReLU-Conv-BN to C (FactorizedReduce after a reduction)."""
    pre0 = FactorizedReduce(c_pp, c) if reduction_prev else relu_conv_bn(c_pp, c, 1)
    return pre0, relu_conv_bn(c_p, c, 1)
