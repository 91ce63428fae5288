"""NASNet's cell-level space (Zoph et al., CVPR 2018), as taught in MIT's EfficientML lecture.

A cell is built from B blocks. Block ``b`` picks two inputs, an op of M candidates for each,
and one of N combine ops; its output is a new hidden state. Hidden states are numbered
0 (cell before last), 1 (last cell), then 2 + b for block ``b``.

- ``inputs="two"`` (the lecture's count): each input is one of the two cell inputs, so a
  cell has (2·2·M·M·N)^B designs: 200^5 = 320,000,000,000 for M=5, N=2, B=5.
- ``inputs="growing"`` (NASNet proper): block ``b`` may also read any earlier block, so it
  has (b+2)² input choices and the count is ∏_b (b+2)²·M²·N.

``add`` sums the two op outputs; ``concat`` concatenates them and a 1x1 ReLU-Conv-BN brings
2C channels back to C, so every hidden state has C channels. The cell outputs the
concatenation of the blocks no other block of the cell reads (all blocks when
``inputs="two"``), as NASNet does. By default the reduction cell reuses the normal cell's
design (ops on the cell inputs get stride 2); ``separate_reduction=True`` searches it too.
The network is the same CIFAR skeleton as DARTS: stem, ``layers`` cells with reductions at
1/3 and 2/3 of the depth, global pool, linear classifier.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from edgenas.blocks.base import Block
from edgenas.blocks.cell_ops import NASNET_OPS, relu_conv_bn
from edgenas.blocks.cells import Cell, CellNode, cell_network, two_input_preprocess
from edgenas.errors import EdgenasError
from edgenas.ops import Shape
from edgenas.spaces.base import Arch, Dim, SearchSpace, register_space

DEFAULT_OPS: tuple[str, ...] = ("identity", "sep_conv_3x3", "sep_conv_5x5", "avg_pool_3x3", "max_pool_3x3")
COMBINES: tuple[str, ...] = ("add", "concat")
_BLOCK = re.compile(r"(\w+)~(\d+)\s*([+&])\s*(\w+)~(\d+)")
INPUT_MODES: tuple[str, ...] = ("two", "growing")


@dataclass(frozen=True, slots=True)
class BlockGene:
    """One block of a NASNet cell: ``combine(op0(state[input0]), op1(state[input1]))``."""

    input0: int
    input1: int
    op0: str
    op1: str
    combine: str


def unused_blocks(genes: Sequence[BlockGene]) -> tuple[int, ...]:
    """States (2 + b) of the blocks no later block of the cell reads: the cell's outputs."""
    read = {g.input0 for g in genes} | {g.input1 for g in genes}
    return tuple(2 + b for b in range(len(genes)) if 2 + b not in read)


def nasnet_cell(genes: Sequence[BlockGene], c_pp: int, c_p: int, c: int, reduction: bool,
                reduction_prev: bool) -> tuple[Cell, int]:
    """A NASNet cell and its output channels (C per output block)."""
    nodes = []
    for g in genes:
        ops = tuple(
            NASNET_OPS[op](c, 2 if reduction and src < 2 else 1)
            for op, src in ((g.op0, g.input0), (g.op1, g.input1))
        )
        post = relu_conv_bn(2 * c, c, 1) if g.combine == "concat" else None
        nodes.append(CellNode(srcs=(g.input0, g.input1), ops=ops, combine=g.combine, post=post))  # type: ignore[arg-type]
    outputs = unused_blocks(genes)
    cell = Cell(n_inputs=2, nodes=tuple(nodes), outputs=outputs,
                preprocess=two_input_preprocess(c_pp, c_p, c, reduction_prev))
    return cell, len(outputs) * c


@register_space("nasnet")
class NasnetSpace(SearchSpace):
    """NASNet cells: B blocks of (2 inputs, 2 ops of M, 1 combine of N).

    Options: ``blocks`` (B=5), ``ops`` (M candidate op names; default the 5 of the lecture:
    identity, 3x3 and 5x5 separable conv, 3x3 average and max pooling), ``inputs`` ("two" or
    "growing"), ``separate_reduction`` (False), ``channels`` (C=16), ``layers`` (cells, 5),
    ``resolution`` (32).
    """

    name = "nasnet"

    def __init__(self, blocks: int = 5, ops: Sequence[str] = DEFAULT_OPS, inputs: str = "two",
                 separate_reduction: bool = False, channels: int = 16, layers: int = 5,
                 resolution: int = 32, stem_multiplier: int = 3) -> None:
        if inputs not in INPUT_MODES:
            raise EdgenasError(f"nasnet inputs={inputs!r} is unknown; use one of {', '.join(INPUT_MODES)}")
        unknown = [o for o in ops if o not in NASNET_OPS]
        if unknown or not ops or len(set(ops)) != len(ops):
            raise EdgenasError(
                f"nasnet ops must be distinct names from {', '.join(NASNET_OPS)}; got {list(ops)}"
            )
        if blocks < 1 or channels < 2 or channels % 2 or layers < 1:
            raise EdgenasError("nasnet needs blocks >= 1, an even channels >= 2 and layers >= 1")
        if resolution < 4 or resolution % 4:
            raise EdgenasError(f"nasnet resolution must be a multiple of 4, got {resolution}; use 32")
        self.blocks, self.ops, self.inputs = blocks, tuple(ops), inputs
        self.separate_reduction = separate_reduction
        self.channels, self.layers, self.resolution = channels, layers, resolution
        self.stem_multiplier = stem_multiplier
        self.cells = ("normal", "reduce") if separate_reduction else ("",)
        dims = []
        for cell in self.cells:
            for b in range(blocks):
                states = (0, 1) if inputs == "two" else tuple(range(b + 2))
                dims += [
                    Dim(self._key(cell, b, "input0"), states),
                    Dim(self._key(cell, b, "input1"), states),
                    Dim(self._key(cell, b, "op0"), self.ops),
                    Dim(self._key(cell, b, "op1"), self.ops),
                    Dim(self._key(cell, b, "combine"), COMBINES),
                ]
        self._dims = tuple(dims)

    @staticmethod
    def _key(cell: str, block: int, field: str) -> str:
        return f"{cell}.block{block}.{field}" if cell else f"block{block}.{field}"

    def dims(self) -> Sequence[Dim]:
        return self._dims

    def describe(self) -> dict[str, Any]:
        return {
            "blocks": self.blocks, "ops": list(self.ops), "combines": list(COMBINES),
            "inputs": self.inputs, "separate_reduction": self.separate_reduction,
            "channels": self.channels, "layers": self.layers, "resolution": self.resolution,
        }

    def size(self) -> int:
        # the generic product, spelled out: per cell ∏_b inputs²·M²·N
        m, n = len(self.ops), len(COMBINES)
        per_cell = math.prod(
            (2 if self.inputs == "two" else b + 2) ** 2 * m * m * n for b in range(self.blocks)
        )
        return per_cell ** len(self.cells)

    def input_shape(self, arch: Arch) -> Shape:
        return (3, self.resolution, self.resolution)

    def genes(self, arch: Arch, cell: str = "normal") -> tuple[BlockGene, ...]:
        """The blocks of the normal (or ``"reduce"``) cell of ``arch``."""
        prefix = cell if self.separate_reduction else ""
        v = arch.values
        return tuple(
            BlockGene(*(v[self._key(prefix, b, f)] for f in ("input0", "input1", "op0", "op1", "combine")))
            for b in range(self.blocks)
        )

    def block(self, arch: Arch, num_classes: int = 10) -> Block:
        normal, reduce = self.genes(arch, "normal"), self.genes(arch, "reduce")

        def make(c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool) -> tuple[Cell, int]:
            return nasnet_cell(reduce if reduction else normal, c_pp, c_p, c, reduction, reduction_prev)

        return cell_network(make, self.channels, self.layers, num_classes, self.stem_multiplier)

    def to_string(self, arch: Arch) -> str:
        """``op~in + op~in`` (add) or ``op~in & op~in`` (concat) per block, ``;`` between blocks."""
        sign = {"add": "+", "concat": "&"}

        def cell_str(genes: Sequence[BlockGene]) -> str:
            return "; ".join(f"{g.op0}~{g.input0} {sign[g.combine]} {g.op1}~{g.input1}" for g in genes)

        if not self.separate_reduction:
            return cell_str(self.genes(arch))
        normal, reduce = cell_str(self.genes(arch, "normal")), cell_str(self.genes(arch, "reduce"))
        return f"normal: {normal} | reduce: {reduce}"

    def from_string(self, text: str) -> Arch:
        """Parse the form :meth:`to_string` writes."""
        if self.separate_reduction:
            m = re.fullmatch(r"\s*normal:(.*)\|\s*reduce:(.*)", text)
            if not m:
                raise EdgenasError(f"nasnet arch {text!r} must read 'normal: <blocks> | reduce: <blocks>'")
            parts = {"normal": m.group(1), "reduce": m.group(2)}
        else:
            parts = {"": text}
        values: dict[str, Any] = {}
        for cell, body in parts.items():
            blocks = [b.strip() for b in body.split(";")]
            if len(blocks) != self.blocks:
                raise EdgenasError(
                    f"nasnet cell {body.strip()!r} must list {self.blocks} blocks separated by ';'"
                )
            for b, block in enumerate(blocks):
                m = _BLOCK.fullmatch(block)
                if not m:
                    raise EdgenasError(
                        f"nasnet block {block!r} must read 'op~input + op~input' (add) or "
                        "'op~input & op~input' (concat), e.g. 'sep_conv_3x3~0 + identity~1'"
                    )
                op0, in0, sign, op1, in1 = m.groups()
                for field, value in (("op0", op0), ("input0", int(in0)), ("op1", op1), ("input1", int(in1)),
                                     ("combine", "add" if sign == "+" else "concat")):
                    values[self._key(cell, b, field)] = value
        return self.make(values)

    def parse(self, data: str | dict[str, Any]) -> Arch:
        """JSON as written by ``Arch.model_dump_json()``, or the :meth:`to_string` form."""
        if isinstance(data, str) and not data.lstrip().startswith("{"):
            return self.from_string(data)
        return super().parse(data)
