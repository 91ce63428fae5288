"""Topology space: the connections are the choices.

A stem and ``blocks`` conv-BN-ReLU blocks. Searched:

- ``path``: Auto-DeepLab-style downsampling path, the spatial level of every block
  (level l: resolution / 2^l, channels C·2^l); each block keeps its predecessor's level or
  goes one level down (a stride-2 block), never beyond ``levels``.
- ``skip{j}_{i}``: whether node j (0 = stem, i = block i) also feeds block i, on top of its
  predecessor i-1 (ResNet/DenseNet-style skip and dense connections). An earlier output at a
  different level or width is resized by a strided 1x1 conv + BN.
- ``agg{i}``: how block i combines its inputs, ``sum`` or ``concat``; active only when the
  block has a skip input.
- ``resolution`` and ``width`` (C = 16·width, rounded to 8).

Blocks with k possible skips contribute 1 + |agg|·(2^k - 1) choices, so ``size`` is
|res|·|width|·|paths|·∏_i (1 + |agg|·(2^(i-1) - 1)).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from edgenas.blocks import conv_bn_act, join, make_divisible, seq
from edgenas.blocks.base import Block
from edgenas.errors import EdgenasError
from edgenas.ops import Add, BatchNorm2d, Concat, Conv2d, GlobalPool, LayerGraph, Linear, Shape
from edgenas.spaces.base import Arch, Dim, SearchSpace, register_space

AGGREGATIONS = ("sum", "concat")


def downsampling_paths(blocks: int, levels: int) -> tuple[tuple[int, ...], ...]:
    """Every monotone level sequence: each block stays or goes one level down, at most ``levels``."""
    paths = []
    for steps in itertools.product((0, 1), repeat=blocks):
        if sum(steps) <= levels:
            paths.append(tuple(itertools.accumulate(steps)))
    return tuple(paths)


def resize(cin: int, cout: int, stride: int) -> Block:
    """Bring an earlier output to the current level: strided 1x1 conv + BN."""
    return seq(Conv2d(cin, cout, 1, stride, 0), BatchNorm2d(cout))


@dataclass(frozen=True, slots=True)
class TopologyCell:
    """Block i: resize each skip input to the predecessor's shape, combine, conv-BN-ReLU."""

    op: Block
    skips: tuple[int, ...]  # earlier node indices, besides the predecessor
    proj: tuple[tuple[int, Block], ...]  # resizing convs, for the skips that need one
    agg: str

    def build(self) -> nn.Module:
        return _CellModule(self.op.build(), self.skips, {str(j): b.build() for j, b in self.proj}, self.agg)


class _CellModule(nn.Module):
    def __init__(self, op: nn.Module, skips: tuple[int, ...], proj: dict[str, nn.Module], agg: str):
        super().__init__()
        self.op = op
        self.proj = nn.ModuleDict(proj)
        self.skips = skips
        self.agg = agg

    def forward(self, nodes: list[torch.Tensor]) -> torch.Tensor:
        x = nodes[-1]
        extra = [self.proj[str(j)](nodes[j]) if str(j) in self.proj else nodes[j] for j in self.skips]
        if self.agg == "concat" and extra:
            x = torch.cat([x, *extra], 1)
        else:
            for e in extra:
                x = x + e
        return self.op(x)


class _TopologyNetModule(nn.Module):
    def __init__(self, stem: nn.Module, cells: list[nn.Module], head: nn.Module):
        super().__init__()
        self.stem = stem
        self.cells = nn.ModuleList(cells)
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [self.stem(x)]
        for cell in self.cells:
            nodes.append(cell(nodes))
        return self.head(nodes[-1])


@dataclass(frozen=True, slots=True)
class TopologyNet:
    """stem -> cells (each may read any earlier node) -> head; builds and emits the same layers."""

    stem: Block
    cells: tuple[TopologyCell, ...]
    head: Block

    def build(self) -> nn.Module:
        return _TopologyNetModule(self.stem.build(), [c.build() for c in self.cells], self.head.build())

    def emit(self, g: LayerGraph, x: str, name: str) -> str:
        nodes = [self.stem.emit(g, x, join(name, "stem"))]
        for i, cell in enumerate(self.cells):
            base = join(name, f"cells.{i}")
            proj = dict(cell.proj)
            extra = [
                proj[j].emit(g, nodes[j], f"{base}.proj.{j}") if j in proj else nodes[j] for j in cell.skips
            ]
            y = nodes[-1]
            if cell.agg == "concat" and extra:
                y = g.add(f"{base}.cat", Concat(), y, *extra)
            else:
                for k, e in enumerate(extra):
                    y = g.add(f"{base}.add{k}", Add(), y, e)
            nodes.append(cell.op.emit(g, y, f"{base}.op"))
        return self.head.emit(g, nodes[-1], join(name, "head"))


@register_space("topology")
class TopologySpace(SearchSpace):
    """Skip/dense connections, sum or concat, and an Auto-DeepLab downsampling path."""

    name = "topology"

    def __init__(
        self,
        blocks: int = 6,
        levels: int = 3,
        resolutions: Sequence[int] = (32, 48, 64),
        widths: Sequence[float] = (0.5, 1.0, 1.5),
        aggregations: Sequence[str] = AGGREGATIONS,
    ) -> None:
        if blocks < 1 or levels < 0:
            raise EdgenasError(f"need blocks >= 1 and levels >= 0, got blocks={blocks}, levels={levels}")
        bad = sorted(set(aggregations) - set(AGGREGATIONS))
        if bad or not aggregations:
            raise EdgenasError(f"unknown aggregation {bad}; use {', '.join(AGGREGATIONS)}")
        self.n_blocks, self.levels = int(blocks), int(levels)
        self.resolutions = tuple(int(r) for r in resolutions)
        self.widths = tuple(float(w) for w in widths)
        self.aggregations = tuple(aggregations)
        self.paths = downsampling_paths(self.n_blocks, self.levels)
        dims = [Dim("resolution", self.resolutions), Dim("width", self.widths), Dim("path", self.paths)]
        for i in range(2, self.n_blocks + 1):
            dims += [Dim(f"skip{j}_{i}", (False, True)) for j in range(i - 1)]
            dims.append(Dim(f"agg{i}", self.aggregations))
        self._dims = tuple(dims)

    def dims(self) -> Sequence[Dim]:
        return self._dims

    def skips(self, values: dict[str, Any], i: int) -> tuple[int, ...]:
        return tuple(j for j in range(i - 1) if values[f"skip{j}_{i}"])

    def active(self, values: dict[str, Any]) -> Sequence[str]:
        names = ["resolution", "width", "path"]
        for i in range(2, self.n_blocks + 1):
            names += [f"skip{j}_{i}" for j in range(i - 1)]
            if self.skips(values, i):
                names.append(f"agg{i}")
        return names

    def size(self) -> int:
        n = len(self.resolutions) * len(self.widths) * len(self.paths)
        for i in range(2, self.n_blocks + 1):
            n *= 1 + len(self.aggregations) * (2 ** (i - 1) - 1)
        return n

    def input_shape(self, arch: Arch) -> Shape:
        r = int(arch.values["resolution"])
        return (3, r, r)

    def block(self, arch: Arch, num_classes: int = 10) -> Block:
        v = arch.values
        base = make_divisible(16 * float(v["width"]))
        levels = (0, *v["path"])  # node 0 (stem) is at level 0
        ch = [base * 2**lvl for lvl in levels]
        cells = []
        for i in range(1, self.n_blocks + 1):
            skips = self.skips(v, i) if i >= 2 else ()
            agg = v[f"agg{i}"] if skips else "sum"
            proj = tuple(
                (j, resize(ch[j], ch[i - 1], 2 ** (levels[i - 1] - levels[j])))
                for j in skips if (levels[j], ch[j]) != (levels[i - 1], ch[i - 1])
            )
            cin = ch[i - 1] * (1 + len(skips)) if agg == "concat" else ch[i - 1]
            stride = 2 if levels[i] > levels[i - 1] else 1
            cells.append(TopologyCell(conv_bn_act(cin, ch[i], 3, stride), skips, proj, agg))
        head = seq(GlobalPool(flatten=True), Linear(ch[-1], num_classes))
        return TopologyNet(conv_bn_act(3, base, 3, 1), tuple(cells), head)

    def to_string(self, arch: Arch) -> str:
        """``r32_w1|p0-0-1-1-2-2|2:0+|3:sum(0,1)|...``: path, then each block's extra inputs."""
        v = arch.values
        parts = [f"r{v['resolution']}_w{v['width']:g}", "p" + "-".join(map(str, v["path"]))]
        for i in range(2, self.n_blocks + 1):
            skips = self.skips(v, i)
            if skips:
                parts.append(f"{i}:{v[f'agg{i}']}({','.join(map(str, skips))})")
        return "|".join(parts)

    def describe(self) -> dict[str, Any]:
        return {
            "blocks": self.n_blocks, "levels": self.levels, "paths": len(self.paths),
            "resolutions": list(self.resolutions), "widths": list(self.widths),
            "aggregations": list(self.aggregations),
        }
