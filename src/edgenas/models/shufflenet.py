"""ShuffleNetV1 (g = 3) and ShuffleNetV2, channel-for-channel as their reference code defines them.

ShuffleNetV2 follows torchvision (``shufflenet_v2_x*``). ShuffleNetV1 follows the paper's
Table 1 and Megvii's reference code: stem 3x3/2 conv (24) + 3x3/2 max pool; three stages of
[4, 8, 4] units, the first of each at stride 2; bottleneck = output / 4; the very first
1x1 conv is not grouped.
"""

from __future__ import annotations

from edgenas.blocks import conv_bn_act, seq, shufflenet_v1_unit, shufflenet_v2_unit
from edgenas.blocks.base import Block
from edgenas.errors import EdgenasError
from edgenas.models.heads import classifier_net
from edgenas.models.registry import register_model
from edgenas.ops import Pool2d

STAGE_REPEATS = (4, 8, 4)
# ShuffleNetV2 stage widths (stem, stage 2, 3, 4, last conv) per width, from torchvision
V2_WIDTHS: dict[float, tuple[int, int, int, int, int]] = {
    0.5: (24, 48, 96, 192, 1024),
    1.0: (24, 116, 232, 464, 1024),
    1.5: (24, 176, 352, 704, 1024),
    2.0: (24, 244, 488, 976, 2048),
}
# ShuffleNetV1 stage-2 output channels at 1x per group count (paper, Table 1); doubling per stage
V1_STAGE2: dict[int, int] = {1: 144, 2: 200, 3: 240, 4: 272, 8: 384}


def _stages(channels: int, widths: tuple[int, ...], unit) -> list[Block]:
    stages: list[Block] = []
    for width, n in zip(widths, STAGE_REPEATS, strict=True):
        units = []
        for i in range(n):
            units.append(unit(channels, width, 2 if i == 0 else 1, i))
            channels = width
        stages.append(seq(*units))
    return stages


def shufflenet_v2_spec(num_classes: int = 1000, width_mult: float = 1.0, in_channels: int = 3) -> Block:
    if width_mult not in V2_WIDTHS:
        raise EdgenasError(
            f"ShuffleNetV2 has no width {width_mult}; use one of {', '.join(map(str, V2_WIDTHS))}"
        )
    stem, *stage_widths, last = V2_WIDTHS[width_mult]
    stages = _stages(stem, tuple(stage_widths), lambda cin, cout, s, i: shufflenet_v2_unit(cin, cout, s))
    features = seq(
        conv_bn_act(in_channels, stem, 3, 2), Pool2d("max", 3, 2, 1), *stages,
        conv_bn_act(stage_widths[-1], last, 1),
        names=("conv1", "maxpool", "stage2", "stage3", "stage4", "conv5"),
    )
    return classifier_net(features, last, num_classes)


def _register_v2(name: str, width: float) -> None:
    def factory(num_classes: int = 1000, width_mult: float = width, **kw) -> Block:
        return shufflenet_v2_spec(num_classes, width_mult, **kw)

    factory.__doc__ = f"ShuffleNetV2 {width}x: channel split, two branches, concat, shuffle."
    register_model(name)(factory)


for _name, _width in (("shufflenet_v2_x0_5", 0.5), ("shufflenet_v2_x1_0", 1.0),
                      ("shufflenet_v2_x1_5", 1.5), ("shufflenet_v2_x2_0", 2.0)):
    _register_v2(_name, _width)


def shufflenet_v1_spec(num_classes: int = 1000, width_mult: float = 1.0, groups: int = 3,
                       in_channels: int = 3) -> Block:
    if groups not in V1_STAGE2:
        raise EdgenasError(f"ShuffleNetV1 has no {groups}-group variant; use one of {sorted(V1_STAGE2)}")
    # every width must split into `groups` groups, and so must its bottleneck (width / 4)
    quantum = 4 * groups
    base = max(quantum, round(V1_STAGE2[groups] * width_mult / quantum) * quantum)
    stem = 24
    stages = _stages(
        stem, (base, 2 * base, 4 * base),
        lambda cin, cout, s, i: shufflenet_v1_unit(cin, cout, s, groups, group_first=cin != stem),
    )
    features = seq(
        conv_bn_act(in_channels, stem, 3, 2), Pool2d("max", 3, 2, 1), *stages,
        names=("conv1", "maxpool", "stage2", "stage3", "stage4"),
    )
    return classifier_net(features, 4 * base, num_classes)


@register_model("shufflenet_v1")
def shufflenet_v1(num_classes: int = 1000, width_mult: float = 1.0, **kw) -> Block:
    """ShuffleNetV1 1x, g=3: group 1x1 convs + channel shuffle; 137.5M MACs, paper says ~140M.

    Counted exactly, this network has 137,460,672 conv + linear MACs and 1,865,728 params
    (BN included) at 224x224; 87% of the MACs are in the grouped 1x1 convs. The paper's
    Table 2 gives "140 MFLOPs" without saying what it counts; adding the 3x3 max/avg pool
    windows (1,481,760 ops) gives 138.9M, and Megvii's reference code reports 138M, so the
    gap is rounding and bookkeeping, not a different architecture.
    """
    return shufflenet_v1_spec(num_classes, width_mult, **kw)
