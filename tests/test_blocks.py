"""Block specs: both cost routes agree exactly, forward shapes match, hand-computed costs hold."""

import pytest
import torch
from torch import nn

from conftest import assert_routes_agree
from edgenas.blocks import (
    ChannelShuffle,
    ChannelSlice,
    Parallel,
    SqueezeExcite,
    basic_block,
    bottleneck,
    bottleneck_width,
    channel_shuffle,
    conv_bn_act,
    graph_of,
    mbconv,
    resnext_block,
    seq,
    shufflenet_v1_unit,
    shufflenet_v2_unit,
)
from edgenas.blocks.catalog import BLOCK_CATALOG, BlockArgs
from edgenas.cost import estimate
from edgenas.cost.profiler import graph_from_module, profile_module
from edgenas.errors import EdgenasError
from edgenas.ops import Conv2d, Mul

BLOCKS = {
    "basic_s1": (lambda: basic_block(32, 32), (32, 9, 9)),
    "basic_s2_proj": (lambda: basic_block(32, 64, 2), (32, 9, 9)),
    "bottleneck_proj": (lambda: bottleneck(64, 16), (64, 8, 8)),
    "bottleneck_s2": (lambda: bottleneck(256, 128, 2), (256, 7, 7)),
    "resnext_s2": (lambda: resnext_block(256, 128, 2), (256, 8, 8)),
    "mbconv_v3_se": (lambda: mbconv(24, 40, 2, kernel=5, act="hardswish", hidden=96, se_ratio=0.25),
                     (24, 10, 10)),
    "mbconv_v3_se_residual": (lambda: mbconv(40, 40, 1, kernel=5, act="hardswish", hidden=240,
                                             se_ratio=0.25), (40, 6, 6)),
    "mbconv_no_expand_se": (lambda: mbconv(16, 16, 2, hidden=16, se_ratio=0.25), (16, 8, 8)),
    "shuffle_v1_s1": (lambda: shufflenet_v1_unit(240, 240, 1, 3), (240, 6, 6)),
    "shuffle_v1_s2_first": (lambda: shufflenet_v1_unit(24, 240, 2, 3, group_first=False), (24, 9, 9)),
    "shuffle_v2_s1": (lambda: shufflenet_v2_unit(116, 116), (116, 7, 7)),
    "shuffle_v2_s2": (lambda: shufflenet_v2_unit(24, 116, 2), (24, 9, 9)),
    "se": (lambda: SqueezeExcite(32, 8, gate="sigmoid"), (32, 5, 5)),
}


@pytest.mark.parametrize("name", BLOCKS)
def test_build_and_emit_agree_exactly(name):
    make, shape = BLOCKS[name]
    spec = make()
    module = spec.build().eval()
    analytic = estimate(graph_of(spec, shape))
    traced = profile_module(module, shape)
    assert_routes_agree(analytic, traced, module)
    out = module(torch.randn(2, *shape))
    g = analytic.graph
    assert tuple(out.shape) == (2, *g.shape(g.output))


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("name", sorted(BLOCK_CATALOG))
def test_catalog_blocks_agree_and_keep_the_contract(name, stride):
    args = BlockArgs(48, 96, stride, groups=4) if stride == 2 else BlockArgs(64, 64, 1, groups=4)
    spec = BLOCK_CATALOG[name].make(args)
    shape = (args.cin, 8, 8)
    module = spec.build()
    analytic, traced = estimate(graph_of(spec, shape)), profile_module(module, shape)
    assert (analytic.params, analytic.macs, analytic.peak_sram_bytes) == (
        traced.params, traced.macs, traced.peak_sram_bytes,
    )
    assert analytic.graph.shape(analytic.graph.output) == (args.cout, 8 // stride, 8 // stride)


def test_bottleneck_is_8_5x_cheaper_than_a_3x3_conv_at_2048_channels():
    # the lecture's comparison, per output pixel: 2048*512 + 512*512*9 + 512*2048 vs 2048*2048*9
    hw = 7 * 7
    block = estimate(graph_of(bottleneck(2048, 512), (2048, 7, 7))).macs
    conv = estimate(graph_of(conv_bn_act(2048, 2048, 3), (2048, 7, 7))).macs
    assert block == 4_456_448 * hw
    assert conv == 37_748_736 * hw
    assert round(conv / block, 1) == 8.5


def test_resnext_width_rule_and_params_by_hand():
    assert bottleneck_width(64, 32, 4) == 128  # ResNeXt-50 32x4d, stage 1
    assert bottleneck_width(512, 32, 4) == 1024  # stage 4
    assert bottleneck_width(64, 1, 64) == 64  # plain ResNet
    with pytest.raises(EdgenasError, match="raise planes"):
        bottleneck_width(8, 32, 4)
    # 256 -> 128 (1x1) -> 128 (3x3, 32 groups of 4) -> 256, identity shortcut
    cost = estimate(graph_of(resnext_block(256, 64), (256, 4, 4)))
    assert cost.params == 256 * 128 + 256 + 128 * 4 * 9 + 256 + 128 * 256 + 512
    assert cost.macs == (256 * 128 + 128 * 4 * 9 + 128 * 256) * 16


def test_projection_shortcut_only_when_the_shape_changes():
    same = estimate(graph_of(basic_block(16, 16), (16, 4, 4)))
    wider = estimate(graph_of(basic_block(16, 32), (16, 4, 4)))
    assert not any(n.name.startswith("shortcut") for n in same.graph.nodes)
    # 3x3 16->32 + 3x3 32->32 + 1x1 16->32 projection, each followed by BN
    assert wider.params == (16 * 32 * 9 + 64) + (32 * 32 * 9 + 64) + (16 * 32 + 64)


def test_squeeze_excite_costs_and_traces_to_a_broadcast_mul():
    se = SqueezeExcite(16, 8)
    cost = estimate(graph_of(se, (16, 5, 5)))
    assert cost.params == 16 * 8 + 8 + 8 * 16 + 16
    assert cost.macs == 16 * 8 + 8 * 16  # two 1x1 convs on a 1x1 map
    traced = graph_from_module(se.build(), (16, 5, 5))
    muls = [n for n in traced.nodes if isinstance(n.op, Mul)]
    assert len(muls) == 1 and muls[0].shape == (16, 5, 5)
    x = torch.randn(1, 16, 5, 5)
    m = se.build().eval()
    gate = nn.functional.hardsigmoid(m.fc2(torch.relu(m.fc1(x.mean((2, 3), keepdim=True)))))
    torch.testing.assert_close(m(x), x * gate)


def test_v3_mbconv_squeeze_width_and_no_expand_conv_when_hidden_equals_input():
    g = graph_of(mbconv(16, 16, 2, hidden=16, se_ratio=0.25), (16, 8, 8))
    convs = [n for n in g.nodes if isinstance(n.op, Conv2d)]
    assert convs[0].op.groups == 16  # depthwise first: no expansion
    assert convs[1].op.out_channels == 8  # make_divisible(16 // 4, 8)
    g = graph_of(mbconv(24, 40, 2, hidden=88, se_ratio=0.25), (24, 8, 8))
    assert [n.op.out_channels for n in g.nodes if isinstance(n.op, Conv2d)] == [88, 88, 24, 88, 40]


@pytest.mark.parametrize("groups", [2, 3, 4, 8])
def test_channel_shuffle_output_i_comes_from_group_i_mod_g(groups):
    c = 24
    x = torch.arange(c, dtype=torch.float32).view(1, c, 1, 1).expand(2, c, 3, 3)
    out = channel_shuffle(x, groups)
    src = out[0, :, 0, 0].long()
    per_group = c // groups
    for i in range(c):
        assert src[i] == (i % groups) * per_group + i // groups
        assert src[i] // per_group == i % groups  # from group i mod g
    # the standard view-transpose-view shuffle, and the inverse shuffle undoes it
    ref = x.view(2, groups, per_group, 3, 3).transpose(1, 2).contiguous().view(2, c, 3, 3)
    assert torch.equal(out, ref)
    assert torch.equal(channel_shuffle(out, per_group), x)


def test_shufflenet_v2_unit_passes_half_the_channels_through_to_even_outputs():
    unit = shufflenet_v2_unit(32, 32).build().eval()
    x = torch.randn(1, 32, 6, 6)
    out = unit(x)
    # after the 2-group shuffle, output channel 2j is channel j of the untouched half
    assert torch.equal(out[:, 0::2], x[:, :16])


def test_shufflenet_v1_stride2_unit_concatenates_the_pooled_input():
    unit = shufflenet_v1_unit(24, 240, 2, 3, group_first=False).build().eval()
    x = torch.rand(1, 24, 8, 8)  # non-negative: the final ReLU keeps the pooled half as is
    out = unit(x)
    assert out.shape == (1, 240, 4, 4)
    torch.testing.assert_close(out[:, :24], nn.functional.avg_pool2d(x, 3, 2, 1))


def test_parallel_concatenates_branches_in_order():
    spec = Parallel((("a", ChannelSlice(0, 2)), ("b", seq(Conv2d(4, 3, 1, 1, 0)))), act="relu")
    g = graph_of(spec, (4, 5, 5))
    assert g.shape(g.output) == (5, 5, 5)
    assert estimate(g).macs == 4 * 3 * 25


def test_malformed_branch_blocks_fail_with_a_fix():
    with pytest.raises(EdgenasError, match="exceeds the 4 input channels"):
        graph_of(ChannelSlice(2, 6), (4, 3, 3))
    with pytest.raises(EdgenasError, match="do not divide 10 channels"):
        graph_of(ChannelShuffle(3), (10, 3, 3))
    with pytest.raises(EdgenasError, match="keeps channels"):
        shufflenet_v2_unit(32, 64, 1)
    with pytest.raises(EdgenasError, match="must exceed"):
        shufflenet_v1_unit(64, 64, 2)


@pytest.mark.parametrize("name", ["resnext_s2", "mbconv_v3_se", "shuffle_v1_s2_first", "shuffle_v2_s1"])
def test_macs_equal_fvcore_conv_linear_count(name):
    from fvcore.nn import FlopCountAnalysis

    make, shape = BLOCKS[name]
    spec = make()
    flops = FlopCountAnalysis(spec.build().eval(), torch.zeros(1, *shape))
    flops.unsupported_ops_warnings(False)
    flops.uncalled_modules_warnings(False)
    assert estimate(graph_of(spec, shape)).macs == flops.by_operator()["conv"]
