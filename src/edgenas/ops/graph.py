"""A layer graph: the architecture description both cost routes share.

Nodes are added in execution order (the order of ``forward``), which is what the memory
analysis assumes. The builder infers shapes as it goes, so a malformed architecture fails
at the node that is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgenas.errors import EdgenasError
from edgenas.ops.specs import Op, Shape

INPUT = "input"


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    op: Op
    inputs: tuple[str, ...]
    shape: Shape


class LayerGraph:
    """Ops in execution order, each naming the nodes it reads; ``"input"`` is the image."""

    def __init__(self, input_shape: Shape) -> None:
        if any(d <= 0 for d in input_shape):
            raise EdgenasError(f"input shape {input_shape} must be positive")
        self.input_shape: Shape = tuple(input_shape)
        self.nodes: list[Node] = []
        self._shapes: dict[str, Shape] = {INPUT: self.input_shape}

    def add(self, name: str, op: Op, *inputs: str) -> str:
        """Append ``op`` reading ``inputs`` (default: the last node); returns the node name."""
        if name in self._shapes:
            raise EdgenasError(f"duplicate layer name {name!r}")
        srcs = inputs or (self.output,)
        try:
            shape = op.infer([self._shapes[s] for s in srcs])
        except KeyError as e:
            raise EdgenasError(f"layer {name!r} reads unknown layer {e.args[0]!r}") from None
        self.nodes.append(Node(name, op, tuple(srcs), shape))
        self._shapes[name] = shape
        return name

    def shape(self, name: str) -> Shape:
        return self._shapes[name]

    @property
    def output(self) -> str:
        return self.nodes[-1].name if self.nodes else INPUT

    def __len__(self) -> int:
        return len(self.nodes)
