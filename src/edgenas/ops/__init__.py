"""Primitive operation specs, their exact costs, and the layer graph that strings them together."""

from edgenas.ops.graph import INPUT, LayerGraph, Node
from edgenas.ops.specs import (
    Activation,
    Add,
    BatchNorm2d,
    Concat,
    Conv2d,
    Dropout,
    GlobalPool,
    Linear,
    Mul,
    Op,
    Opaque,
    Pool2d,
    Shape,
    View,
    Zero,
    depthwise,
    numel,
    pointwise,
)

__all__ = [
    "INPUT", "Activation", "Add", "BatchNorm2d", "Concat", "Conv2d", "Dropout", "GlobalPool", "LayerGraph",
    "Linear", "Mul", "Node", "Op", "Opaque", "Pool2d", "Shape", "View", "Zero", "depthwise",
    "numel", "pointwise",
]
