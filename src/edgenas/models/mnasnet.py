"""MnasNet-B1 as torchvision builds it (Tan et al. 2019): ReLU MBConv stacks, no SE.

Stem 3x3/2 conv, a depthwise-separable unit without a final activation, six stacks of
inverted residuals (kernel 3 or 5, expansion 3 or 6), a 1x1 conv to 1280, linear head.
Widths are ``alpha`` times [32, 16, 24, 40, 80, 96, 192, 320] rounded to multiples of 8.
"""

from __future__ import annotations

from edgenas.blocks import conv_bn_act, make_divisible, mbconv, seq
from edgenas.blocks.base import Block
from edgenas.models.heads import classifier_net
from edgenas.models.registry import register_model

DEPTHS = (32, 16, 24, 40, 80, 96, 192, 320)
# (kernel, stride, expansion, repeats) of the stacks producing DEPTHS[2:]
STACKS = ((3, 2, 3, 3), (5, 2, 3, 3), (5, 2, 6, 3), (3, 1, 6, 2), (5, 2, 6, 4), (3, 1, 6, 1))


def mnasnet_spec(num_classes: int = 1000, width_mult: float = 1.0, dropout: float = 0.2,
                 in_channels: int = 3) -> Block:
    # torchvision's _round_to_multiple_of(d * alpha, 8) is make_divisible with the same 0.9 rule
    d = [make_divisible(c * width_mult) for c in DEPTHS]
    layers: list[Block] = [
        conv_bn_act(in_channels, d[0], 3, 2),
        mbconv(d[0], d[1], 1, expand=1, act="relu"),  # depthwise separable, linear pointwise
    ]
    channels = d[1]
    for (k, s, e, n), out in zip(STACKS, d[2:], strict=True):
        for i in range(n):
            layers.append(mbconv(channels, out, s if i == 0 else 1, e, k, act="relu"))
            channels = out
    layers.append(conv_bn_act(channels, 1280, 1))
    return classifier_net(seq(*layers), 1280, num_classes, dropout)


def _register(name: str, alpha: float) -> None:
    def factory(num_classes: int = 1000, width_mult: float = alpha, **kw) -> Block:
        return mnasnet_spec(num_classes, width_mult, **kw)

    factory.__doc__ = f"MnasNet-B1 depth multiplier {alpha}: mobile NAS-found ReLU MBConv network."
    register_model(name)(factory)


for _name, _alpha in (("mnasnet0_5", 0.5), ("mnasnet0_75", 0.75), ("mnasnet1_0", 1.0), ("mnasnet1_3", 1.3)):
    _register(_name, _alpha)
