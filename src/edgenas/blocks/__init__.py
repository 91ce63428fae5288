"""Building blocks: each a spec that builds an nn.Module and emits its analytic layers."""

from edgenas.blocks.base import Block, Layer, Residual, Seq, conv_bn_act, graph_of, join, seq
from edgenas.blocks.mobilenet import depthwise_separable, make_divisible, mbconv

__all__ = [
    "Block", "Layer", "Residual", "Seq", "conv_bn_act", "depthwise_separable", "graph_of",
    "join", "make_divisible", "mbconv", "seq",
]
