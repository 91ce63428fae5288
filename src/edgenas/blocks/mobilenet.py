"""MobileNet blocks: depthwise-separable conv (V1), inverted residual / MBConv (V2, V3 with SE)."""

from __future__ import annotations

from edgenas.blocks.base import Block, Residual, Seq, conv_bn_act, seq
from edgenas.blocks.se import SqueezeExcite
from edgenas.ops import BatchNorm2d, Conv2d


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round channels to a multiple of ``divisor`` without dropping more than 10% (MobileNet)."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def depthwise_separable(cin: int, cout: int, stride: int = 1, kernel: int = 3,
                        act: str = "relu") -> Seq:
    """MobileNetV1 unit: kxk depthwise conv then 1x1 pointwise conv, each with BN + act."""
    return seq(
        conv_bn_act(cin, cin, kernel, stride, groups=cin, act=act),
        conv_bn_act(cin, cout, 1, 1, act=act),
    )


def mbconv(cin: int, cout: int, stride: int = 1, expand: float = 6, kernel: int = 3,
           act: str = "relu6", *, hidden: int | None = None, se_ratio: float = 0.0,
           se_act: str = "relu", se_gate: str = "hardsigmoid") -> Block:
    """MobileNetV2 inverted residual: 1x1 expand, kxk depthwise, 1x1 linear projection.

    Residual when stride is 1 and channels are kept; no expand conv when ``expand`` is 1
    (or ``hidden``, the expanded width given directly as MobileNetV3 does, equals ``cin``).
    ``se_ratio`` > 0 adds a squeeze-excitation gate after the depthwise conv with
    ``make_divisible(int(hidden * se_ratio), 8)`` channels (MobileNetV3: 0.25, hardsigmoid).
    """
    if hidden is None:
        hidden = round(cin * expand)
        has_expand = expand != 1
    else:
        has_expand = hidden != cin
    layers: list[Block] = []
    if has_expand:
        layers.append(conv_bn_act(cin, hidden, 1, act=act))
    layers.append(conv_bn_act(hidden, hidden, kernel, stride, groups=hidden, act=act))
    if se_ratio > 0:
        squeeze = make_divisible(int(hidden * se_ratio), 8)
        layers.append(SqueezeExcite(hidden, squeeze, se_act, se_gate))
    layers.append(seq(Conv2d(hidden, cout, 1, 1, 0), BatchNorm2d(cout)))
    body = seq(*layers)
    return Residual(body) if stride == 1 and cin == cout else body
