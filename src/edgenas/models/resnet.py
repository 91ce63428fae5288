"""ResNet-18/34/50/101 and ResNeXt-50 (32x4d), channel-for-channel as torchvision defines them.

Stem: 7x7/2 conv (64) -> BN -> ReLU -> 3x3/2 max pool; four stages of 64, 128, 256, 512
planes (the first at stride 1, the others at stride 2); global pool; linear classifier.
``width_mult`` scales the planes (rounded to multiples of 8; 1.0 is torchvision exactly).
"""

from __future__ import annotations

from collections.abc import Callable

from edgenas.blocks import basic_block, bottleneck, conv_bn_act, make_divisible, seq
from edgenas.blocks.base import Block
from edgenas.models.heads import classifier_net
from edgenas.models.registry import register_model
from edgenas.ops import Pool2d

STAGE_PLANES = (64, 128, 256, 512)


def resnet_spec(block: str, layers: tuple[int, int, int, int], num_classes: int = 1000,
                width_mult: float = 1.0, groups: int = 1, base_width: int = 64,
                in_channels: int = 3) -> Block:
    """A ResNet of ``basic`` or ``bottleneck`` blocks repeated ``layers`` times per stage."""
    stem = make_divisible(64 * width_mult)
    make: Callable[[int, int, int], Block]
    if block == "basic":
        expansion, make = 1, basic_block
    else:
        expansion = 4

        def make(cin: int, planes: int, stride: int) -> Block:
            return bottleneck(cin, planes, stride, groups, base_width)

    stages: list[Block] = []
    channels = stem
    for i, (planes, n) in enumerate(zip(STAGE_PLANES, layers, strict=True)):
        planes = make_divisible(planes * width_mult)
        units = []
        for j in range(n):
            units.append(make(channels, planes, 2 if i > 0 and j == 0 else 1))
            channels = planes * expansion
        stages.append(seq(*units))
    features = seq(
        conv_bn_act(in_channels, stem, 7, 2), Pool2d("max", 3, 2, 1), *stages,
        names=("stem", "maxpool", "layer1", "layer2", "layer3", "layer4"),
    )
    return classifier_net(features, channels, num_classes)


@register_model("resnet18")
def resnet18(num_classes: int = 1000, width_mult: float = 1.0, **kw) -> Block:
    """ResNet-18: basic blocks [2, 2, 2, 2]."""
    return resnet_spec("basic", (2, 2, 2, 2), num_classes, width_mult, **kw)


@register_model("resnet34")
def resnet34(num_classes: int = 1000, width_mult: float = 1.0, **kw) -> Block:
    """ResNet-34: basic blocks [3, 4, 6, 3]."""
    return resnet_spec("basic", (3, 4, 6, 3), num_classes, width_mult, **kw)


@register_model("resnet50")
def resnet50(num_classes: int = 1000, width_mult: float = 1.0, **kw) -> Block:
    """ResNet-50: bottlenecks [3, 4, 6, 3], stride on the 3x3 conv (v1.5)."""
    return resnet_spec("bottleneck", (3, 4, 6, 3), num_classes, width_mult, **kw)


@register_model("resnet101")
def resnet101(num_classes: int = 1000, width_mult: float = 1.0, **kw) -> Block:
    """ResNet-101: bottlenecks [3, 4, 23, 3]."""
    return resnet_spec("bottleneck", (3, 4, 23, 3), num_classes, width_mult, **kw)


@register_model("resnext50_32x4d")
def resnext50_32x4d(num_classes: int = 1000, width_mult: float = 1.0, **kw) -> Block:
    """ResNeXt-50 32x4d: bottlenecks whose 3x3 conv has 32 groups, 4 channels each at 64 planes."""
    return resnet_spec("bottleneck", (3, 4, 6, 3), num_classes, width_mult, groups=32, base_width=4, **kw)


@register_model("wide_resnet50_2")
def wide_resnet50_2(num_classes: int = 1000, width_mult: float = 1.0, **kw) -> Block:
    """Wide ResNet-50-2: ResNet-50 with twice as wide 3x3 convs (base width 128)."""
    return resnet_spec("bottleneck", (3, 4, 6, 3), num_classes, width_mult, base_width=128, **kw)
