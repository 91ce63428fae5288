"""ResNet blocks (He et al. 2016) and the ResNeXt block (Xie et al. 2017), as torchvision has them.

The bottleneck puts its stride on the 3x3 conv ("ResNet v1.5"); the shortcut is the identity
unless the shape changes, then a 1x1 conv (stride s) + BN projection.
"""

from __future__ import annotations

from edgenas.blocks.base import Block, Residual, conv_bn_act, seq
from edgenas.errors import EdgenasError
from edgenas.ops import BatchNorm2d, Conv2d


def projection(cin: int, cout: int, stride: int = 1) -> Block | None:
    """Shortcut of a residual block: None (identity) when the shape is kept, else 1x1 conv + BN."""
    if stride == 1 and cin == cout:
        return None
    return seq(Conv2d(cin, cout, 1, stride, 0), BatchNorm2d(cout))


def basic_block(cin: int, planes: int, stride: int = 1) -> Residual:
    """ResNet-18/34 unit: 3x3 conv-BN-ReLU, 3x3 conv-BN, add the shortcut, ReLU."""
    body = seq(conv_bn_act(cin, planes, 3, stride), conv_bn_act(planes, planes, 3, act=None))
    return Residual(body, projection(cin, planes, stride), act="relu")


def bottleneck_width(planes: int, groups: int = 1, base_width: int = 64) -> int:
    """Channels of the 3x3 conv: torchvision's ``int(planes * base_width / 64) * groups``."""
    width = int(planes * (base_width / 64.0)) * groups
    if width <= 0:
        raise EdgenasError(
            f"bottleneck width int({planes} * {base_width} / 64) * {groups} is 0; "
            "raise planes or base_width"
        )
    return width


def bottleneck(cin: int, planes: int, stride: int = 1, groups: int = 1, base_width: int = 64,
               expansion: int = 4) -> Residual:
    """ResNet-50+ unit: 1x1 reduce -> 3x3 (stride, groups) -> 1x1 expand to ``planes * expansion``."""
    width = bottleneck_width(planes, groups, base_width)
    cout = planes * expansion
    body = seq(
        conv_bn_act(cin, width, 1),
        conv_bn_act(width, width, 3, stride, groups=groups),
        conv_bn_act(width, cout, 1, act=None),
    )
    return Residual(body, projection(cin, cout, stride), act="relu")


def resnext_block(cin: int, planes: int, stride: int = 1, cardinality: int = 32,
                  base_width: int = 4) -> Residual:
    """ResNeXt unit: a bottleneck whose 3x3 conv has ``cardinality`` groups of ``base_width``-ish
    channels (32x4d: 32 groups, width ``int(planes * 4 / 64) * 32``)."""
    return bottleneck(cin, planes, stride, groups=cardinality, base_width=base_width)
