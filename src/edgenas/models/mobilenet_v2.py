"""MobileNetV2 (Sandler et al. 2018), channel-for-channel as torchvision defines it."""

from __future__ import annotations

from edgenas.blocks import conv_bn_act, make_divisible, mbconv, seq
from edgenas.blocks.base import Block
from edgenas.models.heads import classifier_net
from edgenas.models.registry import register_model

# (expand ratio t, output channels c, repeats n, first stride s)
MOBILENET_V2_SETTING = (
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
    (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
)


def mobilenet_v2_spec(num_classes: int = 1000, width_mult: float = 1.0, dropout: float = 0.2,
                      in_channels: int = 3) -> Block:
    channels = make_divisible(32 * width_mult)
    last = make_divisible(1280 * max(1.0, width_mult))
    layers: list[Block] = [conv_bn_act(in_channels, channels, 3, 2, act="relu6")]
    for t, c, n, s in MOBILENET_V2_SETTING:
        out = make_divisible(c * width_mult)
        for i in range(n):
            layers.append(mbconv(channels, out, s if i == 0 else 1, t))
            channels = out
    layers.append(conv_bn_act(channels, last, 1, act="relu6"))
    return classifier_net(seq(*layers), last, num_classes, dropout)


@register_model("mobilenet_v2")
def mobilenet_v2(num_classes: int = 1000, width_mult: float = 1.0, **kw) -> Block:
    """MobileNetV2: inverted residuals with linear bottlenecks."""
    return mobilenet_v2_spec(num_classes, width_mult, **kw)


@register_model("mcu_mobilenet_v2_w035_r144", resolution=144)
def mcu_mobilenet_v2(num_classes: int = 1000, width_mult: float = 0.35, **kw) -> Block:
    """MobileNetV2 at width 0.35 for 144x144 input, a microcontroller-class baseline."""
    return mobilenet_v2_spec(num_classes, width_mult, **kw)
