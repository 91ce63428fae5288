"""Analytic cost of a layer graph: params, MACs, flash bytes, peak SRAM, per layer and total.

Pure functions over the layer graph, fast enough to call inside a search loop.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Literal

from edgenas.cost.memory import peaks
from edgenas.errors import EdgenasError
from edgenas.ops.graph import LayerGraph, Node
from edgenas.ops.specs import BatchNorm2d, Conv2d, Opaque, Shape, numel

Precision = Literal["int8", "fp32"]
BYTES_PER_ELEMENT: dict[str, int] = {"int8": 1, "fp32": 4}
BIAS_BYTES = 4  # int32 accumulator biases at int8, fp32 at fp32


@dataclass(frozen=True, slots=True)
class LayerCost:
    name: str
    type: str
    input_shapes: tuple[Shape, ...]
    output_shape: Shape
    params: int
    macs: int
    other_ops: int
    flash_bytes: int
    activation_bytes: int


@dataclass(frozen=True)
class Cost:
    """What a network costs: ``macs`` counts conv + linear (BN folded); ``all_ops`` adds the rest.

    Totals are computed eagerly; the per-layer table only when asked for (search loops
    never ask). ``graph`` is None for costs summed from cached parts (no per-layer table).
    """

    params: int
    macs: int
    all_ops: int
    flash_bytes: int
    peak_sram_bytes: dict[str, int]
    peak_layer: dict[str, str]
    precision: str
    graph: LayerGraph | None = field(default=None, repr=False, compare=False)

    @cached_property
    def layers(self) -> tuple[LayerCost, ...]:
        if self.graph is None:
            raise EdgenasError("this cost was summed from cached parts; build the graph for per-layer costs")
        return per_layer(self.graph, self.precision)  # type: ignore[arg-type]

    def to_dict(self, per_layer: bool = True) -> dict:
        d = {
            "params": self.params,
            "macs": self.macs,
            "all_ops": self.all_ops,
            "flash_bytes": self.flash_bytes,
            "peak_sram_bytes": dict(self.peak_sram_bytes),
            "peak_layer": dict(self.peak_layer),
            "precision": self.precision,
        }
        if per_layer:
            d["per_layer"] = [asdict(layer) for layer in self.layers]
        return d


def op_type(node: Node) -> str:
    """A readable op name: Conv3x3, DWConv3x3, PWConv(g=4), relu, maxpool..."""
    op = node.op
    if isinstance(op, Conv2d):
        if op.groups == op.in_channels == op.out_channels and op.groups > 1:
            return f"DWConv{op.kernel[0]}x{op.kernel[1]}"
        prefix = "PWConv" if op.kernel == (1, 1) else f"Conv{op.kernel[0]}x{op.kernel[1]}"
        return prefix if op.groups == 1 else f"{prefix}(g={op.groups})"
    if isinstance(op, Opaque):
        return op.type_name
    if hasattr(op, "fn"):
        return op.fn
    if hasattr(op, "mode"):
        return f"{op.mode}pool"
    return type(op).__name__


def _folded_bn(graph: LayerGraph) -> set[str]:
    """Conv/linear layers whose only reader is a BN: the BN folds into their bias."""
    n_readers: dict[str, int] = {}
    bn_readers: set[str] = set()
    for node in graph.nodes:
        for src in node.inputs:
            n_readers[src] = n_readers.get(src, 0) + 1
        if isinstance(node.op, BatchNorm2d):
            bn_readers.add(node.inputs[0])
    kinds = {n.name: n.op.kind for n in graph.nodes}
    return {
        name for name in bn_readers
        if n_readers[name] == 1 and kinds.get(name) in ("conv", "linear")
    }


def _check_precision(precision: str) -> int:
    if precision not in BYTES_PER_ELEMENT:
        raise EdgenasError(f"unknown precision {precision!r}; use int8 or fp32")
    return BYTES_PER_ELEMENT[precision]


def _flash(node: Node, folded: set[str], bpe: int) -> int:
    op = node.op
    if isinstance(op, BatchNorm2d):
        return 0 if node.inputs[0] in folded else op.params() * BIAS_BYTES
    if isinstance(op, Opaque):
        return op.params() * bpe
    weights = op.weights()
    if not weights:
        return 0
    biases = op.biases()
    if not biases and node.name in folded:
        biases = node.shape[0] if op.kind == "conv" else node.shape[-1]
    return weights * bpe + biases * (BIAS_BYTES if bpe == 1 else bpe)


def per_layer(graph: LayerGraph, precision: Precision = "int8") -> tuple[LayerCost, ...]:
    """One row per layer: shapes, params, MACs, flash and activation bytes."""
    bpe = _check_precision(precision)
    folded = _folded_bn(graph)
    shapes = {n.name: n.shape for n in graph.nodes}
    shapes["input"] = graph.input_shape
    rows = []
    for node in graph.nodes:
        op, ins = node.op, [shapes[s] for s in node.inputs]
        rows.append(
            LayerCost(
                name=node.name,
                type=op_type(node),
                input_shapes=tuple(ins),
                output_shape=node.shape,
                params=op.params(),
                macs=op.macs(ins, node.shape),
                other_ops=op.other_ops(ins, node.shape),
                flash_bytes=_flash(node, folded, bpe),
                activation_bytes=0 if op.aliases_input else numel(node.shape) * bpe,
            )
        )
    return tuple(rows)


def estimate(graph: LayerGraph, precision: Precision = "int8") -> Cost:
    """Exact cost of ``graph`` at ``precision`` (weights and activations)."""
    bpe = _check_precision(precision)
    folded = _folded_bn(graph)
    shapes = {n.name: n.shape for n in graph.nodes}
    shapes["input"] = graph.input_shape
    params = macs = other = flash = 0
    for node in graph.nodes:
        op = node.op
        ins = [shapes[s] for s in node.inputs]
        params += op.params()
        macs += op.macs(ins, node.shape)
        other += op.other_ops(ins, node.shape)
        flash += _flash(node, folded, bpe)
    found = peaks(graph)
    return Cost(
        params=params,
        macs=macs,
        all_ops=macs + other,
        flash_bytes=flash,
        peak_sram_bytes={k: p.bytes * bpe for k, p in found.items()},
        peak_layer={k: p.layer for k, p in found.items()},
        precision=precision,
        graph=graph,
    )
