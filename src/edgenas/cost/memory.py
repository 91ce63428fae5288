"""Peak activation memory (SRAM) of a layer graph, by two methods chosen from a registry.

Fused ops (BN, activations, views) share their input's buffer, so a *buffer* is made by a
conv, linear, pool, add, concat... and read by later ops. Both methods walk the ops that
make buffers in execution order.

- ``mcunet``: at every conv/linear, input + output, plus every buffer kept alive across it
  (e.g. a residual block's input), except the one the layer's own output is added into in
  place. This is MCUNet's ``count_peak_activation_size`` generalised to any skip topology.
- ``liveness``: true lifetimes; a buffer lives from the op that makes it to its last reader,
  and the peak is the largest sum of live buffers at any op.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from edgenas.ops.graph import INPUT, LayerGraph, Node
from edgenas.ops.specs import numel


@dataclass(frozen=True, slots=True)
class Peak:
    bytes: int
    layer: str  # where the peak happens


@dataclass(slots=True)
class _Buffers:
    steps: list[Node]  # ops that make a buffer, in order
    buffer_of: dict[str, str]  # node name -> name of the node that made its buffer
    size: dict[str, int]  # buffer -> elements
    start: dict[str, int]  # buffer -> step that makes it (input: -1)
    last: dict[str, int]  # buffer -> last step that reads it
    first_reader: dict[str, int]  # buffer -> first step that reads it


def _buffers(graph: LayerGraph) -> _Buffers:
    buffer_of = {INPUT: INPUT}
    size = {INPUT: numel(graph.input_shape)}
    start, last, first = {INPUT: -1}, {INPUT: -1}, {}
    steps: list[Node] = []
    for node in graph.nodes:
        if node.op.aliases_input:
            buffer_of[node.name] = buffer_of[node.inputs[0]]
            continue
        s = len(steps)
        steps.append(node)
        for src in node.inputs:
            buf = buffer_of[src]
            last[buf] = s
            first.setdefault(buf, s)
        buffer_of[node.name] = node.name
        size[node.name] = numel(node.shape)
        start[node.name] = s
        last[node.name] = s
    out = buffer_of[graph.output]
    last[out] = max(last[out], len(steps) - 1)
    return _Buffers(steps, buffer_of, size, start, last, first)


def peak_liveness(graph: LayerGraph, b: _Buffers | None = None) -> Peak:
    b = b or _buffers(graph)
    n = len(b.steps)
    delta = [0] * (n + 1)
    for buf, elems in b.size.items():
        delta[max(b.start[buf], 0)] += elems
        delta[max(b.last[buf], 0) + 1] -= elems
    best, where, live = 0, INPUT, 0
    for s in range(n):
        live += delta[s]
        if live > best:
            best, where = live, b.steps[s].name
    return Peak(best, where)


def peak_mcunet(graph: LayerGraph, b: _Buffers | None = None) -> Peak:
    b = b or _buffers(graph)
    n = len(b.steps)
    # across[s]: elements of every buffer made before step s and read after it
    delta = [0] * (n + 1)
    for buf, elems in b.size.items():
        if b.last[buf] > b.start[buf] + 1:
            delta[b.start[buf] + 1] += elems
            delta[b.last[buf]] -= elems
    best, where, across = 0, INPUT, 0
    for s, node in enumerate(b.steps):
        across += delta[s]
        if node.op.kind not in ("conv", "linear"):
            continue
        own_input = b.buffer_of[node.inputs[0]]
        skip = {own_input}
        reader = b.first_reader.get(node.name)
        if reader is not None and b.steps[reader].op.kind == "add":
            # the layer's output is accumulated into the residual buffer in place
            skip.update(b.buffer_of[i] for i in b.steps[reader].inputs)
        mem = numel(graph.shape(node.inputs[0])) + numel(node.shape) + across
        mem -= sum(b.size[buf] for buf in skip if b.start[buf] < s < b.last[buf])
        if mem > best:
            best, where = mem, node.name
    return Peak(best, where)


def peaks(graph: LayerGraph) -> dict[str, Peak]:
    """Every registered method's peak, sharing one buffer analysis."""
    b = _buffers(graph)
    return {name: fn(graph, b) for name, fn in PEAK_METHODS.items()}


PEAK_METHODS: dict[str, Callable[[LayerGraph, _Buffers | None], Peak]] = {
    "mcunet": peak_mcunet,
    "liveness": peak_liveness,
}
