"""Building blocks: each a spec that builds an nn.Module and emits its analytic layers."""

from edgenas.blocks.base import Block, Layer, Residual, Seq, conv_bn_act, graph_of, join, seq
from edgenas.blocks.branches import ChannelShuffle, ChannelSlice, Parallel, channel_shuffle
from edgenas.blocks.mobilenet import depthwise_separable, make_divisible, mbconv
from edgenas.blocks.resnet import basic_block, bottleneck, bottleneck_width, projection, resnext_block
from edgenas.blocks.se import SqueezeExcite
from edgenas.blocks.shufflenet import shufflenet_v1_unit, shufflenet_v2_unit

__all__ = [
    "Block", "ChannelShuffle", "ChannelSlice", "Layer", "Parallel", "Residual", "Seq",
    "SqueezeExcite", "basic_block", "bottleneck", "bottleneck_width", "channel_shuffle",
    "conv_bn_act", "depthwise_separable", "graph_of", "join", "make_divisible", "mbconv",
    "projection", "resnext_block", "seq", "shufflenet_v1_unit", "shufflenet_v2_unit",
]
