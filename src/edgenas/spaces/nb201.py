"""NAS-Bench-201 (Dong & Yang, ICLR 2020): 5 ops on the 6 edges of a 4-node cell, 15,625 cells.

The network is the benchmark's own: a 3x3 conv stem (3 -> C) + BN; three stages of N cells at
C, 2C, 4C channels with a ResNet basic block (stride 2) between stages; BN, ReLU, global
pooling and a linear classifier. Node ``j`` of a cell sums ``op(node i)`` over ``i < j``;
the cell's output is node 3. An arch is written in the official string form
``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` (group ``j`` lists the edges into node ``j+1``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from edgenas.blocks.base import Block, Residual, seq
from edgenas.blocks.cell_ops import NB201_OPS, relu_conv_bn
from edgenas.blocks.cells import Cell, CellNode
from edgenas.errors import EdgenasError
from edgenas.models.heads import classifier_net
from edgenas.ops import (
    INPUT,
    Activation,
    BatchNorm2d,
    Conv2d,
    GlobalPool,
    LayerGraph,
    Linear,
    Pool2d,
    Shape,
    numel,
)
from edgenas.spaces.base import Arch, Dim, SearchSpace, register_space

#: operations in NAS-Bench-201's own order
OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: (from node, to node) of each edge, in arch-string order
EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
#: NASLib's op index -> op, and the edge at each position of its key tuple
NASLIB_OPS: tuple[str, ...] = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
NASLIB_EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))


def edge_dim(src: int, dst: int) -> str:
    """Name of the dimension choosing the op on edge ``node src -> node dst``."""
    return f"edge_{src}_{dst}"


def nb201_cell(ops: dict[tuple[int, int], str], channels: int) -> Cell:
    """The NB201 cell with ``ops[(i, j)]`` on edge i -> j; node j sums its incoming edges."""
    nodes = tuple(
        CellNode(
            srcs=tuple(range(j)),
            ops=tuple(NB201_OPS[ops[(i, j)]](channels, 1) for i in range(j)),
        )
        for j in (1, 2, 3)
    )
    return Cell(n_inputs=1, nodes=nodes, outputs=(3,))


def resnet_reduction(cin: int, cout: int) -> Block:
    """NB201's ResNet basic block between stages: two ReLU-Conv-BN, pooled 1x1 shortcut."""
    return Residual(
        seq(relu_conv_bn(cin, cout, 3, 2), relu_conv_bn(cout, cout, 3, 1)),
        shortcut=seq(Pool2d("avg", 2, 2, 0), Conv2d(cin, cout, 1, 1, 0)),
    )


def nb201_network(ops: dict[tuple[int, int], str], num_classes: int = 10, channels: int = 16,
                  cells_per_stage: int = 5) -> Block:
    """The NAS-Bench-201 network for one cell (the same cell in every stage)."""
    blocks: list[Block] = []
    c = channels
    for stage in range(3):
        if stage:
            blocks.append(resnet_reduction(c, 2 * c))
            c *= 2
        blocks += [nb201_cell(ops, c) for _ in range(cells_per_stage)]
    features = seq(
        seq(Conv2d(3, channels, 3, 1), BatchNorm2d(channels)),
        seq(*blocks),
        seq(BatchNorm2d(c), Activation("relu")),
        names=("stem", "cells", "lastact"),
    )
    return classifier_net(features, c, num_classes)


# --- the official arch string and NASLib's key -----------------------------------------------
_STRING = re.compile(r"^\|(.+)\|$")


def to_arch_string(ops: dict[tuple[int, int], str]) -> str:
    groups = ["|" + "|".join(f"{ops[(i, j)]}~{i}" for i in range(j)) + "|" for j in (1, 2, 3)]
    return "+".join(groups)


def parse_arch_string(text: str) -> dict[tuple[int, int], str]:
    """``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` -> {(i, j): op}; malformed text raises."""
    example = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|"
    groups = text.strip().split("+")
    if len(groups) != 3:
        raise EdgenasError(
            f"NB201 arch string {text!r} must have 3 '+'-separated node groups, like {example}"
        )
    ops: dict[tuple[int, int], str] = {}
    for j, group in enumerate(groups, start=1):
        m = _STRING.match(group)
        edges = m.group(1).split("|") if m else []
        if len(edges) != j:
            raise EdgenasError(
                f"NB201 arch string group {j} {group!r} must list {j} edge(s) '|op~i|...|', like {example}"
            )
        for i, edge in enumerate(edges):
            op, sep, src = edge.partition("~")
            if not sep or src != str(i):
                raise EdgenasError(
                    f"NB201 arch string edge {edge!r} into node {j} must read 'op~{i}', like {example}"
                )
            if op not in OPS:
                raise EdgenasError(f"NB201 arch string op {op!r} is unknown; choose one of {', '.join(OPS)}")
            ops[(i, j)] = op
    return ops


def naslib_key(ops: dict[tuple[int, int], str]) -> str:
    """NASLib's key, e.g. ``"(4, 3, 3, 3, 2, 3)"`` (zc_nasbench201.json)."""
    return "(" + ", ".join(str(NASLIB_OPS.index(ops[e])) for e in NASLIB_EDGES) + ")"


def parse_naslib_key(key: str | Sequence[int]) -> dict[tuple[int, int], str]:
    if isinstance(key, str):
        try:
            idx = [int(t) for t in key.strip().strip("()").split(",")]
        except ValueError:
            idx = []
    else:
        idx = [int(t) for t in key]
    if len(idx) != 6 or any(not 0 <= i < len(NASLIB_OPS) for i in idx):
        raise EdgenasError(f"NASLib NB201 key {key!r} must be 6 op indices 0-4, like '(4, 3, 3, 3, 2, 3)'")
    return {e: NASLIB_OPS[i] for e, i in zip(NASLIB_EDGES, idx, strict=True)}


# --- NAS-Bench-201's FLOP convention -------------------------------------------------------------
def nb201_flops(graph: LayerGraph) -> int:
    """FLOPs as NAS-Bench-201 reports them (``flops`` in NASLib's data, in units of 1, not M).

    NB201's counter is not plain MACs. Per layer of the graph: conv and linear MACs (no bias
    term), 2 per output element of a BN, 1 per element of a ReLU, kernel² per output element of
    a pooling layer, input + output elements of the global pool; adds and zero ops count 0.
    On an edge, ReLU-Conv-BN thus costs its MACs plus 3 per output element. A remainder of
    2·C·W of the stem output (1,024 at 32x32, 512 at 16x16) is arch-independent and has no
    layer to explain it; it is added as fitted.

    How it was derived: least squares over all 491 archs of each dataset of NASLib's
    zc_nasbench201.json, with conv/linear MACs, pooled outputs k²·out, ReLU-Conv-BN outputs
    and a constant as regressors, gave coefficients of exactly 1, 1, 3 and a constant per
    dataset (63,168 cifar10; 68,928 cifar100; 23,616 ImageNet16-120). The classifier explains
    64 per class; the per-layer terms above explain 60·H·W + 64 of the rest; 2·C·W is left.
    The rule reproduces all 1,473 values exactly (tests/test_space_nb201.py).
    """
    shapes = {n.name: n.shape for n in graph.nodes}
    shapes[INPUT] = graph.input_shape
    total = 0
    stem: Shape | None = None
    for node in graph.nodes:
        op, out = node.op, node.shape
        ins = [shapes[s] for s in node.inputs]
        if isinstance(op, Conv2d | Linear):
            total += op.macs(ins, out)
            stem = stem or out
        elif isinstance(op, BatchNorm2d):
            total += 2 * numel(out)
        elif isinstance(op, Activation):
            total += numel(ins[0])
        elif isinstance(op, Pool2d):
            total += op.kernel_size**2 * numel(out)
        elif isinstance(op, GlobalPool):
            total += numel(ins[0]) + numel(out)
    if stem is not None:
        total += 2 * stem[0] * stem[2]
    return total


@register_space("nb201")
class NB201Space(SearchSpace):
    """NAS-Bench-201: one op of 5 on each of 6 edges; 5^6 = 15,625 cells.

    Options: ``resolution`` (32 for CIFAR, 16 for ImageNet16-120), ``channels`` (C=16) and
    ``cells_per_stage`` (N=5), as in the benchmark.
    """

    name = "nb201"

    def __init__(self, resolution: int = 32, channels: int = 16, cells_per_stage: int = 5) -> None:
        if resolution < 4 or resolution % 4:
            raise EdgenasError(f"nb201 resolution must be a multiple of 4, got {resolution}; use 32 or 16")
        if channels <= 0 or cells_per_stage < 0:
            raise EdgenasError("nb201 channels must be positive and cells_per_stage non-negative")
        self.resolution = resolution
        self.channels = channels
        self.cells_per_stage = cells_per_stage
        self._dims = tuple(Dim(edge_dim(i, j), OPS) for i, j in EDGES)

    def dims(self) -> Sequence[Dim]:
        return self._dims

    def describe(self) -> dict[str, Any]:
        return {
            "resolution": self.resolution, "channels": self.channels,
            "cells_per_stage": self.cells_per_stage, "ops": list(OPS),
        }

    def input_shape(self, arch: Arch) -> Shape:
        return (3, self.resolution, self.resolution)

    def cell_ops(self, arch: Arch) -> dict[tuple[int, int], str]:
        return {(i, j): arch.values[edge_dim(i, j)] for i, j in EDGES}

    def _from_ops(self, ops: dict[tuple[int, int], str]) -> Arch:
        return self.make({edge_dim(i, j): op for (i, j), op in ops.items()})

    def block(self, arch: Arch, num_classes: int = 10) -> Block:
        return nb201_network(self.cell_ops(arch), num_classes, self.channels, self.cells_per_stage)

    def to_string(self, arch: Arch) -> str:
        """The official NB201 arch string."""
        return to_arch_string(self.cell_ops(arch))

    def from_string(self, text: str) -> Arch:
        """Parse the official arch string (``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``)."""
        return self._from_ops(parse_arch_string(text))

    def to_naslib(self, arch: Arch) -> str:
        """NASLib's key tuple string, e.g. ``"(4, 3, 3, 3, 2, 3)"``."""
        return naslib_key(self.cell_ops(arch))

    def from_naslib(self, key: str | Sequence[int]) -> Arch:
        return self._from_ops(parse_naslib_key(key))

    def parse(self, data: str | dict[str, Any]) -> Arch:
        """JSON as written by ``Arch.model_dump_json()``, or an official arch string."""
        if isinstance(data, str) and data.strip().startswith("|"):
            return self.from_string(data)
        return super().parse(data)
