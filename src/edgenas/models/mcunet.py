"""A microcontroller-class network in the ProxylessNAS / MCUNet style, sized for 320 kB SRAM.

Same skeleton as MCUNet's TinyNAS models: a 3x3/2 stem, an expansion-1 MBConv, MBConv
stages with per-block kernel (3/5/7) and expansion (3/4/6) choices, and a linear classifier
straight on the last stage (no 1x1 feature-mix conv: at 1000 classes that layer alone would
need ~200 kB of flash). The block table is ours, not MCUNet's searched one (their configs are
downloaded at run time); it is chosen so the int8 network fits an STM32F746-class budget,
320 kB SRAM (MCUNet's peak-activation count) and 1 MB flash, at 176x176, the resolution of
MCUNet's 320 kB ImageNet model: 706,544 params, 57.1M MACs, peak SRAM 278,784 B (at the
stride-2 24-channel block's depthwise conv), flash 723,512 B.
"""

from __future__ import annotations

from edgenas.blocks import conv_bn_act, make_divisible, mbconv, seq
from edgenas.blocks.base import Block
from edgenas.models.heads import classifier_net
from edgenas.models.registry import register_model

# (kernel, expansion, output channels, stride) per block, ProxylessNAS-style
MCUNET_320KB: tuple[tuple[int, int, int, int], ...] = (
    (3, 1, 8, 1),
    (7, 3, 16, 2), (3, 4, 16, 1),
    (7, 4, 24, 2), (5, 4, 24, 1), (5, 4, 24, 1),
    (7, 6, 40, 2), (5, 4, 40, 1), (5, 4, 40, 1),
    (5, 6, 48, 1), (5, 4, 48, 1), (3, 4, 48, 1),
    (5, 6, 96, 2), (7, 4, 96, 1), (5, 4, 96, 1),
    (5, 6, 160, 1),
)


def tiny_mbconv_spec(blocks: tuple[tuple[int, int, int, int], ...], num_classes: int = 1000,
                     width_mult: float = 1.0, stem: int = 16, dropout: float = 0.0,
                     in_channels: int = 3) -> Block:
    """A ProxylessNAS-style network from a (kernel, expansion, channels, stride) table."""
    channels = make_divisible(stem * width_mult)
    layers: list[Block] = [conv_bn_act(in_channels, channels, 3, 2, act="relu6")]
    for k, e, c, s in blocks:
        out = make_divisible(c * width_mult)
        layers.append(mbconv(channels, out, s, e, k))
        channels = out
    return classifier_net(seq(*layers), channels, num_classes, dropout)


@register_model("mcunet_320kb", resolution=176)
def mcunet_320kb(num_classes: int = 1000, width_mult: float = 1.0, **kw) -> Block:
    """MCUNet-style MBConv net at 176x176 fitting 320 kB SRAM and 1 MB flash (int8)."""
    return tiny_mbconv_spec(MCUNET_320KB, num_classes, width_mult, **kw)
