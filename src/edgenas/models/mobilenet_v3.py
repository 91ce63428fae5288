"""MobileNetV3 small and large (Howard et al. 2019), channel-for-channel as torchvision defines them.

MBConv blocks with an explicit expanded width, optional squeeze-excitation (hardsigmoid gate,
``make_divisible(expanded // 4, 8)`` channels) and ReLU or hard-swish; a hard-swish 3x3/2 stem,
a 1x1 conv to 6x the last width, then a linear -> hard-swish -> dropout -> linear head.
"""

from __future__ import annotations

from edgenas.blocks import conv_bn_act, make_divisible, mbconv, seq
from edgenas.blocks.base import Block
from edgenas.models.heads import mlp_classifier_net
from edgenas.models.registry import register_model

# (input, kernel, expanded, output, SE, activation, stride), torchvision's bneck_conf rows
Setting = tuple[int, int, int, int, bool, str, int]
SMALL: tuple[Setting, ...] = (
    (16, 3, 16, 16, True, "relu", 2),
    (16, 3, 72, 24, False, "relu", 2),
    (24, 3, 88, 24, False, "relu", 1),
    (24, 5, 96, 40, True, "hardswish", 2),
    (40, 5, 240, 40, True, "hardswish", 1),
    (40, 5, 240, 40, True, "hardswish", 1),
    (40, 5, 120, 48, True, "hardswish", 1),
    (48, 5, 144, 48, True, "hardswish", 1),
    (48, 5, 288, 96, True, "hardswish", 2),
    (96, 5, 576, 96, True, "hardswish", 1),
    (96, 5, 576, 96, True, "hardswish", 1),
)
LARGE: tuple[Setting, ...] = (
    (16, 3, 16, 16, False, "relu", 1),
    (16, 3, 64, 24, False, "relu", 2),
    (24, 3, 72, 24, False, "relu", 1),
    (24, 5, 72, 40, True, "relu", 2),
    (40, 5, 120, 40, True, "relu", 1),
    (40, 5, 120, 40, True, "relu", 1),
    (40, 3, 240, 80, False, "hardswish", 2),
    (80, 3, 200, 80, False, "hardswish", 1),
    (80, 3, 184, 80, False, "hardswish", 1),
    (80, 3, 184, 80, False, "hardswish", 1),
    (80, 3, 480, 112, True, "hardswish", 1),
    (112, 3, 672, 112, True, "hardswish", 1),
    (112, 5, 672, 160, True, "hardswish", 2),
    (160, 5, 960, 160, True, "hardswish", 1),
    (160, 5, 960, 160, True, "hardswish", 1),
)


def mobilenet_v3_spec(setting: tuple[Setting, ...], last_channel: int, num_classes: int = 1000,
                      width_mult: float = 1.0, dropout: float = 0.2, in_channels: int = 3) -> Block:
    def adjust(c: int) -> int:
        return make_divisible(c * width_mult)

    layers: list[Block] = [conv_bn_act(in_channels, adjust(setting[0][0]), 3, 2, act="hardswish")]
    for cin, k, hidden, cout, se, act, s in setting:
        layers.append(mbconv(adjust(cin), adjust(cout), s, kernel=k, act=act, hidden=adjust(hidden),
                             se_ratio=0.25 if se else 0.0))
    last_in = adjust(setting[-1][3])
    layers.append(conv_bn_act(last_in, 6 * last_in, 1, act="hardswish"))
    return mlp_classifier_net(seq(*layers), 6 * last_in, adjust(last_channel), num_classes,
                              "hardswish", dropout)


@register_model("mobilenet_v3_small")
def mobilenet_v3_small(num_classes: int = 1000, width_mult: float = 1.0, **kw) -> Block:
    """MobileNetV3-Small: NAS-found MBConv + SE + hard-swish, for low-resource phones."""
    return mobilenet_v3_spec(SMALL, 1024, num_classes, width_mult, **kw)


@register_model("mobilenet_v3_large")
def mobilenet_v3_large(num_classes: int = 1000, width_mult: float = 1.0, **kw) -> Block:
    """MobileNetV3-Large: NAS-found MBConv + SE + hard-swish, for high-resource phones."""
    return mobilenet_v3_spec(LARGE, 1280, num_classes, width_mult, **kw)
