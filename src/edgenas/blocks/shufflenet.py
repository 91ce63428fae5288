"""ShuffleNet units: V1 (Zhang et al. 2018) and V2 (Ma et al. 2018).

V1: 1x1 group conv -> channel shuffle -> 3x3 depthwise -> 1x1 group conv; added to the
input at stride 1, concatenated with a 3x3 average pool of it at stride 2; then ReLU.
V2: split the channels in half, transform one half, concatenate, shuffle (stride 1); at
stride 2 both branches see the whole input and downsample.
"""

from __future__ import annotations

from edgenas.blocks.base import Block, Layer, Residual, Seq, conv_bn_act, seq
from edgenas.blocks.branches import ChannelShuffle, ChannelSlice, Parallel
from edgenas.errors import EdgenasError
from edgenas.ops import Pool2d


def shufflenet_v1_unit(cin: int, cout: int, stride: int = 1, groups: int = 3,
                       group_first: bool = True, mid: int | None = None) -> Block:
    """ShuffleNetV1 unit; ``group_first`` False leaves the first 1x1 ungrouped (the first unit
    of the first stage, whose input is too thin to split); ``mid`` defaults to ``cout // 4``."""
    mid = cout // 4 if mid is None else mid
    branch_out = cout - cin if stride != 1 else cout
    if stride == 1 and cin != cout:
        raise EdgenasError(f"a stride-1 ShuffleNetV1 unit keeps channels; got {cin} -> {cout}")
    if branch_out <= 0:
        raise EdgenasError(
            f"a stride-{stride} ShuffleNetV1 unit concatenates its input, so out ({cout}) must exceed "
            f"in ({cin})"
        )
    g1 = groups if group_first else 1
    layers: list[Block] = [conv_bn_act(cin, mid, 1, groups=g1)]
    if g1 > 1:
        layers.append(ChannelShuffle(groups))
    layers += [
        conv_bn_act(mid, mid, 3, stride, groups=mid, act=None),
        conv_bn_act(mid, branch_out, 1, groups=groups, act=None),
    ]
    body = seq(*layers)
    if stride == 1:
        return Residual(body, act="relu")
    pool = Layer(Pool2d("avg", 3, stride, 1))
    return Parallel((("shortcut", pool), ("body", body)), act="relu")


def _v2_branch(cin: int, c: int, stride: int) -> Seq:
    return seq(
        conv_bn_act(cin, c, 1),
        conv_bn_act(c, c, 3, stride, groups=c, act=None),
        conv_bn_act(c, c, 1),
    )


def shufflenet_v2_unit(cin: int, cout: int, stride: int = 1) -> Block:
    """ShuffleNetV2 unit, torchvision's ``InvertedResidual``: split / branch / concat / shuffle."""
    if cout % 2:
        raise EdgenasError(f"a ShuffleNetV2 unit needs an even output width, got {cout}")
    half = cout // 2
    if stride == 1:
        if cin != cout:
            raise EdgenasError(f"a stride-1 ShuffleNetV2 unit keeps channels; got {cin} -> {cout}")
        branches: tuple = (
            ("branch1", ChannelSlice(0, half)),
            ("branch2", seq(ChannelSlice(half, cin), _v2_branch(half, half, 1))),
        )
    else:
        branch1 = seq(conv_bn_act(cin, cin, 3, stride, groups=cin, act=None), conv_bn_act(cin, half, 1))
        branches = (("branch1", branch1), ("branch2", _v2_branch(cin, half, stride)))
    return seq(Parallel(branches), ChannelShuffle(2), names=("body", "shuffle"))
