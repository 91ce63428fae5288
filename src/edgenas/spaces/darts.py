"""DARTS (Liu et al., ICLR 2019): normal and reduction cells of 4 nodes, each summing 2 ops.

A cell has two input states (0: output of the cell before last, 1: of the last cell) and 4
intermediate nodes 2..5. Node ``s`` picks two *distinct* earlier states ``i < j`` and an op of
8 for each; the cell outputs the concatenation of nodes 2..5. One dimension per node holds
the input pair (so every combination of dimension values is a valid arch and ``size`` is
their product), and one per op: ``normal.node3.inputs = (0, 2)``, ``normal.node3.op0`` (on
state 0), ``normal.node3.op1`` (on state 2). Archs count distinct genotypes, as DARTS does
(different genotypes may still compute the same function, e.g. when ops are ``none``).

The network is DARTS' NetworkCIFAR without the auxiliary head: a 3x3 conv stem to 3C, then
``layers`` cells with reduction cells at 1/3 and 2/3 of the depth (channels doubling).
"""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Sequence
from typing import Any

from edgenas.blocks.base import Block
from edgenas.blocks.cell_ops import DARTS_OPS
from edgenas.blocks.cells import Cell, CellNode, cell_network, two_input_preprocess
from edgenas.errors import EdgenasError
from edgenas.ops import Shape
from edgenas.spaces.base import Arch, Dim, SearchSpace, register_space

OPS: tuple[str, ...] = tuple(DARTS_OPS)  # DARTS' PRIMITIVES, in its order
CELLS: tuple[str, ...] = ("normal", "reduce")
NODES: tuple[int, ...] = (2, 3, 4, 5)

Gene = tuple[tuple[str, int], ...]  # DARTS genotype half: ((op, input), ...), two per node


def input_pairs(node: int) -> tuple[tuple[int, int], ...]:
    """The unordered pairs of distinct states node ``node`` may read."""
    return tuple(itertools.combinations(range(node), 2))


def darts_cell(gene: Gene, c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool) -> Cell:
    """A DARTS cell from its genotype half; stride-2 ops on the cell inputs when reducing."""
    nodes = []
    for k in range(len(gene) // 2):
        (op_a, i), (op_b, j) = gene[2 * k], gene[2 * k + 1]
        ops = tuple(
            DARTS_OPS[op](c, 2 if reduction and src < 2 else 1) for op, src in ((op_a, i), (op_b, j))
        )
        nodes.append(CellNode(srcs=(i, j), ops=ops))
    return Cell(
        n_inputs=2,
        nodes=tuple(nodes),
        outputs=tuple(range(2, 2 + len(nodes))),
        preprocess=two_input_preprocess(c_pp, c_p, c, reduction_prev),
    )


def darts_network(normal: Gene, reduce: Gene, num_classes: int = 10, channels: int = 16,
                  layers: int = 8, stem_multiplier: int = 3) -> Block:
    """DARTS' NetworkCIFAR (no auxiliary head, no drop path) for a genotype."""
    n_nodes = len(normal) // 2

    def make(c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool) -> tuple[Cell, int]:
        cell = darts_cell(reduce if reduction else normal, c_pp, c_p, c, reduction, reduction_prev)
        return cell, n_nodes * c

    return cell_network(make, channels, layers, num_classes, stem_multiplier)


_GENE = re.compile(r"(normal|reduce)\s*=\s*(\[[^\]]*\])")


def parse_genotype(text: str) -> dict[str, Gene]:
    """``Genotype(normal=[('sep_conv_3x3', 0), ...], ..., reduce=[...], ...)`` -> both halves."""
    found = dict(_GENE.findall(text))
    example = "Genotype(normal=[('sep_conv_3x3', 0), ('skip_connect', 1), ...], reduce=[...])"
    if set(found) != set(CELLS):
        raise EdgenasError(f"DARTS genotype must give normal=[...] and reduce=[...], like {example}")
    genes: dict[str, Gene] = {}
    for cell, body in found.items():
        try:
            gene = tuple((str(op), int(i)) for op, i in ast.literal_eval(body))
        except (ValueError, SyntaxError, TypeError):
            raise EdgenasError(
                f"DARTS genotype {cell}={body} must be a list of ('op', input) pairs"
            ) from None
        if len(gene) != 2 * len(NODES):
            raise EdgenasError(
                f"DARTS genotype {cell} must list {2 * len(NODES)} (op, input) pairs, got {len(gene)}"
            )
        genes[cell] = gene
    return genes


@register_space("darts")
class DartsSpace(SearchSpace):
    """DARTS' cell space: 8 ops, 4 nodes of 2 distinct inputs; normal and reduction cell.

    Options: ``channels`` (initial C, 16), ``layers`` (cells, 8), ``resolution`` (32, a multiple
    of 4), ``stem_multiplier`` (3). DARTS' search network is channels=16, layers=8; its
    evaluation network channels=36, layers=20.
    """

    name = "darts"

    def __init__(self, channels: int = 16, layers: int = 8, resolution: int = 32,
                 stem_multiplier: int = 3) -> None:
        if resolution < 4 or resolution % 4:
            raise EdgenasError(f"darts resolution must be a multiple of 4, got {resolution}; use 32")
        if channels < 1 or channels % 2 or layers < 1 or stem_multiplier < 1:
            raise EdgenasError("darts needs an even channels >= 2, layers >= 1 and stem_multiplier >= 1")
        self.channels, self.layers = channels, layers
        self.resolution, self.stem_multiplier = resolution, stem_multiplier
        dims = []
        for cell in CELLS:
            for node in NODES:
                dims.append(Dim(f"{cell}.node{node}.inputs", input_pairs(node)))
                dims += [Dim(f"{cell}.node{node}.op{k}", OPS) for k in (0, 1)]
        self._dims = tuple(dims)

    def dims(self) -> Sequence[Dim]:
        return self._dims

    def describe(self) -> dict[str, Any]:
        return {
            "channels": self.channels, "layers": self.layers, "resolution": self.resolution,
            "stem_multiplier": self.stem_multiplier, "ops": list(OPS), "nodes": len(NODES),
        }

    def input_shape(self, arch: Arch) -> Shape:
        return (3, self.resolution, self.resolution)

    def make(self, values: dict[str, Any]) -> Arch:
        """Validate; a node's inputs may come in any order (its ops swap with them)."""
        if isinstance(values, dict):
            values = dict(values)
            for cell, node in itertools.product(CELLS, NODES):
                self._canonical_node(values, f"{cell}.node{node}", node)
        return super().make(values)

    @staticmethod
    def _canonical_node(values: dict[str, Any], prefix: str, node: int) -> None:
        """Sort a node's input pair (swapping its ops along); equal inputs raise."""
        key, op0, op1 = f"{prefix}.inputs", f"{prefix}.op0", f"{prefix}.op1"
        pair = values.get(key)
        if not (isinstance(pair, list | tuple) and len(pair) == 2 and all(isinstance(p, int) for p in pair)):
            return  # the generic validation names the bad value
        if pair[0] == pair[1]:
            raise EdgenasError(
                f"arch field {key!r} = {list(pair)}: a node's two inputs must differ; "
                f"choose two of the states 0..{node - 1}"
            )
        if pair[0] > pair[1] and op0 in values and op1 in values:
            values[key] = (pair[1], pair[0])
            values[op0], values[op1] = values[op1], values[op0]

    def genes(self, arch: Arch) -> dict[str, Gene]:
        genes = {}
        for cell in CELLS:
            gene: list[tuple[str, int]] = []
            for node in NODES:
                v = {f: arch.values[f"{cell}.node{node}.{f}"] for f in ("inputs", "op0", "op1")}
                gene += [(v["op0"], v["inputs"][0]), (v["op1"], v["inputs"][1])]
            genes[cell] = tuple(gene)
        return genes

    def from_genes(self, normal: Gene, reduce: Gene) -> Arch:
        values: dict[str, Any] = {}
        for cell, gene in zip(CELLS, (normal, reduce), strict=True):
            for k, node in enumerate(NODES):
                (op_a, i), (op_b, j) = gene[2 * k], gene[2 * k + 1]
                values[f"{cell}.node{node}.inputs"] = (i, j)
                values[f"{cell}.node{node}.op0"], values[f"{cell}.node{node}.op1"] = op_a, op_b
        return self.make(values)

    def block(self, arch: Arch, num_classes: int = 10) -> Block:
        genes = self.genes(arch)
        return darts_network(genes["normal"], genes["reduce"], num_classes, self.channels,
                             self.layers, self.stem_multiplier)

    def to_string(self, arch: Arch) -> str:
        """DARTS' own genotype notation."""
        genes = self.genes(arch)
        concat = list(range(2, 2 + len(NODES)))
        return (
            f"Genotype(normal={list(genes['normal'])}, normal_concat={concat}, "
            f"reduce={list(genes['reduce'])}, reduce_concat={concat})"
        )

    def from_string(self, text: str) -> Arch:
        """Parse a DARTS genotype string (as printed by DARTS and its successors)."""
        genes = parse_genotype(text)
        return self.from_genes(genes["normal"], genes["reduce"])

    def parse(self, data: str | dict[str, Any]) -> Arch:
        """JSON as written by ``Arch.model_dump_json()``, or a DARTS genotype string."""
        if isinstance(data, str) and data.lstrip().startswith("Genotype"):
            return self.from_string(data)
        return super().parse(data)
