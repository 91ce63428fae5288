"""NASNet cell space: the lecture's 3.2e11 count, the growing-input count, cell outputs, both routes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from conftest import assert_routes_agree
from edgenas.cost.profiler import profile_module
from edgenas.errors import EdgenasError
from edgenas.ops import Linear
from edgenas.spaces import get_space


def test_two_input_cells_match_the_lecture_count():
    space = get_space("nasnet")
    m, n, b = 5, 2, 5
    assert space.size() == (2 * 2 * m * m * n) ** b == 320_000_000_000
    assert space.size() == math.prod(len(d.options) for d in space.dims())


def test_growing_inputs_count_from_the_definition():
    # block i (1-based) reads any of the 2 cell inputs or the i-1 earlier blocks: i+1 choices
    space = get_space("nasnet", inputs="growing")
    m, n, b = 5, 2, 5
    expected = math.prod((i + 1) ** 2 * m * m * n for i in range(1, b + 1))
    assert space.size() == expected == 162_000_000_000_000
    assert get_space("nasnet", inputs="growing", separate_reduction=True).size() == expected**2


def test_enumeration_of_a_small_growing_space_has_exactly_size_archs():
    space = get_space("nasnet", inputs="growing", blocks=2, ops=("identity", "avg_pool_3x3"))
    # block 1: 2² inputs · 2² ops · 2 combines = 32; block 2: 3² · 2² · 2 = 72
    assert space.size() == 32 * 72
    assert len(set(space.enumerate())) == 32 * 72


def _chain(space, combine="add"):
    """Block b reads the previous block (state b+1) and the last cell: a chain."""
    values = {}
    for b in range(space.blocks):
        values.update({
            f"block{b}.input0": b + 1, f"block{b}.input1": 1, f"block{b}.op0": "sep_conv_3x3",
            f"block{b}.op1": "identity", f"block{b}.combine": combine,
        })
    return space.make(values)


def _classifier_inputs(space, arch) -> int:
    return next(n.op.in_features for n in space.graph(arch).nodes if isinstance(n.op, Linear))


def test_cell_output_concatenates_the_blocks_no_block_reads():
    growing = get_space("nasnet", inputs="growing")
    # a chain leaves only the last block unread: the last cell outputs 4C = 64 channels
    assert _classifier_inputs(growing, _chain(growing)) == 64
    assert _classifier_inputs(growing, _chain(growing, "concat")) == 64
    # with the two cell inputs only, no block reads another: all 5 blocks, 5 * 64 channels
    two = get_space("nasnet")
    assert _classifier_inputs(two, two.sample(np.random.default_rng(0))) == 5 * 64


@pytest.mark.parametrize(
    "options", [{}, {"inputs": "growing"}, {"inputs": "growing", "separate_reduction": True}]
)
def test_both_cost_routes_agree_and_the_network_runs(options):
    space = get_space("nasnet", **options)
    rng = np.random.default_rng(1)
    archs = [space.sample(rng), space.sample(rng)]
    if not space.separate_reduction:
        archs.append(_chain(space, "concat") if space.inputs == "growing" else archs[0])
    for arch in archs:
        module = space.build(arch)
        analytic = space.cost(arch)
        traced = profile_module(module, (3, 32, 32))
        assert_routes_agree(analytic, traced, module)
        assert module.eval()(torch.randn(2, 3, 32, 32)).shape == (2, 10)
        assert space.parse(arch.model_dump_json()) == arch


def test_concat_blocks_cost_a_1x1_conv_back_to_c_channels():
    space = get_space("nasnet", inputs="growing")
    add, cat = space.cost(_chain(space, "add")), space.cost(_chain(space, "concat"))
    # per concat block: a 1x1 conv 2C -> C and a BN of C; C = 16, 32, 64 in the 3 stages, one
    # cell per stage at layers=5 besides the 2 reductions (which reuse the design): 5 cells in all
    per_cell = {c: 5 * (2 * c * c + 2 * c) for c in (16, 32, 64)}
    cells_at = {16: 1, 32: 2, 64: 2}  # cells 0 | 1 (red), 2 | 3 (red), 4
    assert cat.params - add.params == sum(per_cell[c] * k for c, k in cells_at.items())


def test_bad_options_and_values_raise_clear_errors():
    with pytest.raises(EdgenasError, match="inputs='all' is unknown"):
        get_space("nasnet", inputs="all")
    with pytest.raises(EdgenasError, match="nasnet ops must be distinct names"):
        get_space("nasnet", ops=("identity", "conv_9x9"))
    space = get_space("nasnet")
    values = dict(space.sample(np.random.default_rng(2)).values)
    with pytest.raises(EdgenasError, match=r"'block3.input1' = 2 is not allowed; choose one of 0, 1"):
        space.make({**values, "block3.input1": 2})
    with pytest.raises(EdgenasError, match=r"'block0.combine'.*choose one of \"add\", \"concat\""):
        space.make({**values, "block0.combine": "mul"})


def test_arch_strings_round_trip_and_bad_strings_raise():
    for options in ({}, {"inputs": "growing", "separate_reduction": True}):
        space = get_space("nasnet", **options)
        rng = np.random.default_rng(5)
        for _ in range(20):
            arch = space.sample(rng)
            assert space.from_string(space.to_string(arch)) == arch
            assert space.parse(space.to_string(arch)) == arch
    space = get_space("nasnet", blocks=2)
    arch = space.from_string("sep_conv_3x3~0 + identity~1; max_pool_3x3~1 & avg_pool_3x3~1")
    assert (arch["block0.combine"], arch["block1.combine"]) == ("add", "concat")
    assert (arch["block1.op0"], arch["block1.input0"]) == ("max_pool_3x3", 1)
    with pytest.raises(EdgenasError, match="must list 2 blocks"):
        space.from_string("sep_conv_3x3~0 + identity~1")
    with pytest.raises(EdgenasError, match="must read 'op~input"):
        space.from_string("sep_conv_3x3~0 * identity~1; identity~0 + identity~1")
    with pytest.raises(EdgenasError, match=r"'block1.op1' = 'conv_9x9' is not allowed"):
        space.from_string("sep_conv_3x3~0 + identity~1; identity~0 + conv_9x9~1")
