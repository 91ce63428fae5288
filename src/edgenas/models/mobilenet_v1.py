"""MobileNetV1 (Howard et al. 2017): a 3x3/2 stem and 13 depthwise-separable units."""

from __future__ import annotations

from edgenas.blocks import conv_bn_act, depthwise_separable, make_divisible, seq
from edgenas.blocks.base import Block
from edgenas.models.heads import classifier_net
from edgenas.models.registry import register_model

# (output channels, stride) of each depthwise-separable unit, from the paper's Table 1
MOBILENET_V1_SETTING = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1),
)


def mobilenet_v1_spec(num_classes: int = 1000, width_mult: float = 1.0, dropout: float = 0.0,
                      in_channels: int = 3) -> Block:
    channels = make_divisible(32 * width_mult)
    layers: list[Block] = [conv_bn_act(in_channels, channels, 3, 2)]
    for c, s in MOBILENET_V1_SETTING:
        out = make_divisible(c * width_mult)
        layers.append(depthwise_separable(channels, out, s))
        channels = out
    return classifier_net(seq(*layers), channels, num_classes, dropout)


@register_model("mobilenet_v1")
def mobilenet_v1(num_classes: int = 1000, width_mult: float = 1.0, **kw) -> Block:
    """MobileNetV1: depthwise-separable convs (569M MACs, 4.2M params in the paper)."""
    return mobilenet_v1_spec(num_classes, width_mult, **kw)
