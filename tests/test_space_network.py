"""Network-level spaces (mobilenet, mcunet, resnet, topology): exact sizes, costs, strings."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgenas.errors import EdgenasError
from edgenas.spaces import get_space
from edgenas.spaces.mcunet import MCUNetSpace, MobileNetSpace
from edgenas.spaces.resnet import ResNetSpace
from edgenas.spaces.topology import TopologySpace, downsampling_paths

TINY_STAGES = [[16, 1, [1, 2]], [24, 2, [1, 2]]]


@pytest.mark.parametrize("cls", [MobileNetSpace, MCUNetSpace])
@pytest.mark.parametrize("stages", [TINY_STAGES, [[16, 1, [1, 2]], [24, 2, [2]]]])
def test_mobilenet_size_formula_matches_brute_force(cls, stages):
    space = cls(resolutions=(32,), widths=(0.5, 1.0), kernels=(3, 5), expands=(3, 6), stages=stages)
    per_block = 2 * 2
    expected = 1 * 2 * math.prod(sum(per_block**d for d in depths) for _, _, depths in stages)
    assert space.size() == expected  # 800 and 640
    archs = list(space.enumerate())
    assert len(archs) == expected
    assert len({space.to_string(a) for a in archs}) == expected  # distinct networks, not just keys


def test_mobilenet_space_reproduces_mobilenet_v2_published_counts():
    v2 = MobileNetSpace(
        resolutions=(224,), widths=(1.0,), kernels=(3,), expands=(6,), head=1280,
        stages=[[24, 2, [2]], [32, 2, [3]], [64, 2, [4]], [96, 1, [3]], [160, 2, [3]], [320, 1, [1]]],
    )
    assert v2.size() == 1
    (arch,) = v2.enumerate()
    cost = v2.cost(arch, num_classes=1000)
    assert (cost.params, cost.macs) == (3_504_872, 300_774_272)  # torchvision's MobileNetV2
    assert cost.peak_sram_bytes["mcunet"] == 112 * 112 * 96 + 56 * 56 * 96


def test_default_mcunet_and_mobilenet_sizes():
    # |res|·|width|·(9^2 + 9^3 + 9^4)^5·9 for the OFA skeleton with a fixed 1-block last stage
    stage = 9**2 + 9**3 + 9**4
    assert get_space("mcunet").size() == 9 * 8 * stage**5 * 9
    assert get_space("mobilenet").size() == 9 * 3 * stage**5 * 9


def test_inactive_blocks_are_normalised_and_resolution_sets_the_input():
    space = get_space("mcunet")
    values = {d.name: d.options[-1] for d in space.dims()}
    values["d0"] = 2
    arch = space.make(values)
    assert arch["k0_2"] == 3 and arch["e0_3"] == 3  # beyond depth: first option
    assert arch["k0_1"] == 7
    assert space.input_shape(arch) == (3, 176, 176)
    assert space.graph(arch).input_shape == (3, 176, 176)


def test_string_form_round_trips_and_is_readable():
    space = get_space("mcunet")
    rng = np.random.default_rng(0)
    for _ in range(20):
        arch = space.sample(rng)
        text = space.to_string(arch)
        assert text.startswith(f"r{arch['resolution']}_w{arch['width']:g}|")
        assert text.count("|") == len(space.stages)
        assert space.parse(text) == arch
    with pytest.raises(EdgenasError, match="allowed depths: 2, 3, 4"):
        space.parse("r96_w0.3|k3e3|k3e3,k3e3|k3e3,k3e3|k3e3,k3e3|k3e3,k3e3|k3e3")


@pytest.mark.parametrize("name", ["mcunet", "mobilenet", "resnet"])
def test_cached_chain_cost_equals_the_full_estimate(name):
    space = get_space(name)
    rng = np.random.default_rng(5)
    for _ in range(50):
        arch = space.sample(rng)
        full = space.cost(arch, num_classes=100)
        fast = space.fast_cost(arch.values, num_classes=100)
        assert (fast.params, fast.macs, fast.all_ops, fast.flash_bytes) == (
            full.params, full.macs, full.all_ops, full.flash_bytes,
        )
        assert fast.peak_sram_bytes == full.peak_sram_bytes
        assert fast.peak_layer == full.peak_layer


def test_resnet_size_and_brute_force():
    space = ResNetSpace(resolutions=(32,), widths=(0.5,), depths=((1, 2), (1,)), ratios=(0.25, 0.5),
                        channels=(32, 64), stem="cifar")
    assert space.size() == 2 * 2 * 2 == len(list(space.enumerate()))
    assert get_space("resnet").size() == 4 * 3 * (3 * 3 * 4 * 3) * 3**4


def test_resnet_bottleneck_cost_by_hand():
    space = ResNetSpace(resolutions=(8,), widths=(1.0,), depths=((1,),), ratios=(0.25,), channels=(32,),
                        stem="cifar")
    (arch,) = space.enumerate()
    cost = space.cost(arch, num_classes=10)
    stem = 3 * 64 * 9 + 2 * 64  # 3x3 conv 3->64 + BN
    mid = 8  # 32 * 0.25
    body = 64 * mid + 2 * mid + mid * mid * 9 + 2 * mid + mid * 32 + 2 * 32
    shortcut = 64 * 32 + 2 * 32  # 1x1 projection, channels change
    head = 32 * 10 + 10
    assert cost.params == stem + body + shortcut + head
    assert cost.macs == 64 * (3 * 64 * 9 + 64 * mid + mid * mid * 9 + mid * 32 + 64 * 32) + 320


def test_topology_paths_and_size_by_brute_force():
    assert len(downsampling_paths(6, 3)) == sum(math.comb(6, k) for k in range(4)) == 42
    assert (0, 1, 1) in downsampling_paths(3, 1) and (0, 1, 2) not in downsampling_paths(3, 1)
    space = TopologySpace(blocks=3, levels=1, resolutions=(32,), widths=(1.0,))
    assert space.size() == 4 * (1 + 2 * 1) * (1 + 2 * 3) == 84
    assert len(list(space.enumerate())) == 84


def _topology(path, skip, agg):
    space = TopologySpace(blocks=2, levels=1, resolutions=(8,), widths=(1.0,))
    return space, space.make({"resolution": 8, "width": 1.0, "path": path, "skip0_2": skip, "agg2": agg})


def test_topology_concat_and_sum_costs_by_hand():
    stem, block1, head = 3 * 16 * 9 + 32, 16 * 16 * 9 + 32, 32 * 10 + 10
    space, cat = _topology((0, 1), True, "concat")  # block 2 reads [node1, stem] -> 32 ch, stride 2
    cost = space.cost(cat)
    assert cost.params == stem + block1 + (32 * 32 * 9 + 64) + head
    assert cost.macs == (3 * 16 * 9 + 16 * 16 * 9) * 64 + 32 * 32 * 9 * 16 + 320
    space, add = _topology((0, 1), True, "sum")  # block 2 reads node1 + stem -> 16 ch
    assert space.cost(add).params == stem + block1 + (16 * 32 * 9 + 64) + head
    assert space.to_string(add) == "r8_w1|p0-1|2:sum(0)"
    space, plain = _topology((0, 1), False, "concat")  # no skip: agg inactive, normalised
    assert plain["agg2"] == "sum" and "agg2" not in space.active(plain.values)


def test_topology_skip_across_levels_gets_a_strided_projection():
    space, arch = _topology((1, 1), True, "sum")  # stem at 8x8x16, node1 at 4x4x32
    layers = {layer.name: layer for layer in space.cost(arch).layers}
    proj = layers["cells.1.proj.0.0"]
    assert proj.input_shapes == ((16, 8, 8),) and proj.output_shape == (32, 4, 4)
    assert proj.params == 16 * 32 and proj.macs == 16 * 32 * 16
    assert layers["cells.1.add0"].output_shape == (32, 4, 4)
