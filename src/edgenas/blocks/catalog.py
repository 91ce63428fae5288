"""A catalog of the classical blocks, costed side by side for the same input and output.

``compare_blocks`` shows why depthwise and group convolutions are cheap: every block maps
the same ``(cin, H, W)`` input to the same ``(cout, H/s, W/s)`` output, so their params,
MACs and peak SRAM compare directly, and each MAC count is given relative to a plain 3x3 conv.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from edgenas.blocks.base import Block, conv_bn_act, graph_of
from edgenas.blocks.mobilenet import depthwise_separable, mbconv
from edgenas.blocks.resnet import basic_block, bottleneck, resnext_block
from edgenas.blocks.shufflenet import shufflenet_v1_unit, shufflenet_v2_unit
from edgenas.cost.estimate import Precision, estimate
from edgenas.errors import EdgenasError


@dataclass(frozen=True)
class BlockArgs:
    cin: int
    cout: int
    stride: int = 1
    groups: int = 4  # for the grouped conv and ShuffleNetV1


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    description: str
    make: Callable[[BlockArgs], Block]


BLOCK_CATALOG: dict[str, CatalogEntry] = {}
BASELINE = "conv3x3"


def register_block(name: str, description: str) -> Callable[[Callable[[BlockArgs], Block]], Callable]:
    def deco(fn: Callable[[BlockArgs], Block]) -> Callable[[BlockArgs], Block]:
        BLOCK_CATALOG[name] = CatalogEntry(name, description, fn)
        return fn

    return deco


def _quarter(a: BlockArgs) -> int:
    if a.cout % 4:
        raise EdgenasError(f"a bottleneck expands by 4, so out ({a.cout}) must be a multiple of 4")
    return a.cout // 4


register_block(BASELINE, "standard 3x3 conv + BN + ReLU")(
    lambda a: conv_bn_act(a.cin, a.cout, 3, a.stride))
register_block("group_conv3x3", "3x3 conv in {groups} groups")(
    lambda a: conv_bn_act(a.cin, a.cout, 3, a.stride, groups=a.groups))
register_block("depthwise_separable", "3x3 depthwise + 1x1 pointwise (MobileNetV1)")(
    lambda a: depthwise_separable(a.cin, a.cout, a.stride))
register_block("mbconv_e6", "1x1 expand x6, 3x3 depthwise, 1x1 project (MobileNetV2)")(
    lambda a: mbconv(a.cin, a.cout, a.stride, 6))
register_block("mbconv_e6_se_hswish", "MBConv e6 + squeeze-excitation, hard-swish (MobileNetV3)")(
    lambda a: mbconv(a.cin, a.cout, a.stride, 6, act="hardswish", se_ratio=0.25))
register_block("resnet_basic", "two 3x3 convs + shortcut (ResNet-18/34)")(
    lambda a: basic_block(a.cin, a.cout, a.stride))
register_block("bottleneck", "1x1 reduce /4, 3x3, 1x1 expand x4 + shortcut (ResNet-50)")(
    lambda a: bottleneck(a.cin, _quarter(a), a.stride))
register_block("resnext_32x4d", "bottleneck with a 32-group 3x3 (ResNeXt 32x4d width rule)")(
    lambda a: resnext_block(a.cin, _quarter(a), a.stride, 32, 4))
register_block("shufflenet_v1", "1x1 group conv (g={groups}), shuffle, 3x3 depthwise, 1x1 group conv")(
    lambda a: shufflenet_v1_unit(a.cin, a.cout, a.stride, a.groups))
register_block("shufflenet_v2", "channel split, 1x1, 3x3 depthwise, 1x1, concat, shuffle")(
    lambda a: shufflenet_v2_unit(a.cin, a.cout, a.stride))


@dataclass(frozen=True)
class BlockCost:
    name: str
    description: str
    params: int
    macs: int
    peak_sram_bytes: int  # MCUNet's peak-activation count at the given precision
    macs_vs_conv3x3: float


def compare_blocks(cin: int, cout: int, resolution: int, stride: int = 1, groups: int = 4,
                   precision: Precision = "int8") -> tuple[list[BlockCost], dict[str, str]]:
    """Cost of every catalog block on a ``(cin, resolution, resolution)`` input.

    Returns the rows and, for blocks that cannot map ``cin`` to ``cout`` at this stride
    (e.g. a ShuffleNetV2 unit that must keep its width), the reason they were left out.
    """
    for label, v in (("--in", cin), ("--out", cout), ("--resolution", resolution), ("--groups", groups)):
        if v <= 0:
            raise EdgenasError(f"{label} must be a positive integer, got {v}")
    if stride not in (1, 2):
        raise EdgenasError(f"stride must be 1 or 2, got {stride}")
    args = BlockArgs(cin, cout, stride, groups)
    shape = (cin, resolution, resolution)
    base = estimate(graph_of(BLOCK_CATALOG[BASELINE].make(args), shape), precision)
    want = base.graph.shape(base.graph.output)
    rows: list[BlockCost] = []
    skipped: dict[str, str] = {}
    for entry in BLOCK_CATALOG.values():
        try:
            graph = graph_of(entry.make(args), shape)
        except EdgenasError as e:
            skipped[entry.name] = str(e)
            continue
        if graph.shape(graph.output) != want:
            skipped[entry.name] = f"gives {graph.shape(graph.output)}, not {want}"
            continue
        cost = estimate(graph, precision)
        rows.append(BlockCost(entry.name, entry.description.format(groups=groups), cost.params, cost.macs,
                              cost.peak_sram_bytes["mcunet"], cost.macs / base.macs))
    return rows, skipped
