"""DARTS space: exact size from the definition, published model sizes, both cost routes agree."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from conftest import assert_routes_agree
from edgenas.cost.profiler import profile_module
from edgenas.errors import EdgenasError
from edgenas.spaces import get_space
from edgenas.spaces.darts import OPS

# genotypes as published in DARTS' and P-DARTS' genotypes.py
DARTS_V2 = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
    "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
    "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
    "('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
)
PDARTS = (
    "Genotype(normal=[('skip_connect', 0), ('dil_conv_3x3', 1), ('skip_connect', 0),('sep_conv_3x3', 1), "
    "('sep_conv_3x3', 1), ('sep_conv_3x3', 3), ('sep_conv_3x3',0), ('dil_conv_5x5', 4)], "
    "normal_concat=range(2, 6), reduce=[('avg_pool_3x3', 0), ('sep_conv_5x5', 1), ('sep_conv_3x3', 0), "
    "('dil_conv_5x5', 2), ('max_pool_3x3', 0), ('dil_conv_3x3', 1), ('dil_conv_3x3', 1), "
    "('dil_conv_5x5', 3)], reduce_concat=range(2, 6))"
)



@pytest.fixture(scope="module")
def space():
    return get_space("darts")


def test_size_is_derived_from_the_definition(space):
    # a node reading states 0..s-1 keeps two (op, input) edges with distinct inputs; the two
    # edges are summed, so their order does not matter: count the distinct sets by brute force
    per_node = []
    for s in (2, 3, 4, 5):
        edges = itertools.product(itertools.product(OPS, range(s)), repeat=2)
        per_node.append(len({frozenset(pair) for pair in edges if pair[0][1] != pair[1][1]}))
    assert per_node == [math.comb(s, 2) * 8 * 8 for s in (2, 3, 4, 5)] == [64, 192, 384, 640]
    per_cell = math.prod(per_node)
    assert space.size() == per_cell**2 == 9_119_789_245_425_254_400
    assert isinstance(space.size(), int)


@pytest.mark.parametrize(("genotype", "params"), [(DARTS_V2, 3_349_342), (PDARTS, 3_433_798)])
def test_published_cifar10_models_have_their_published_parameter_counts(genotype, params):
    # DARTS' train.py logs "param size = 3.349342MB" (auxiliary head excluded) for DARTS_V2 at
    # 36 channels and 20 cells; P-DARTS reports 3,433,798 the same way
    space = get_space("darts", channels=36, layers=20)
    arch = space.from_string(genotype)
    assert space.cost(arch).params == params
    assert space.from_string(space.to_string(arch)) == arch


def test_genotype_order_within_a_node_does_not_matter(space):
    arch = space.from_string(DARTS_V2)
    node4 = "('sep_conv_3x3', 1), ('skip_connect', 0)"
    swapped = DARTS_V2.replace(node4, "('skip_connect', 0), ('sep_conv_3x3', 1)")
    assert swapped != DARTS_V2
    assert space.from_string(swapped) == arch
    assert arch["normal.node4.inputs"] == (0, 1)
    assert (arch["normal.node4.op0"], arch["normal.node4.op1"]) == ("skip_connect", "sep_conv_3x3")
    assert space.parse(arch.model_dump_json()) == arch


def test_malformed_archs_name_the_field_and_the_fix(space):
    values = dict(space.from_string(DARTS_V2).values)
    with pytest.raises(EdgenasError, match=r"'normal.node3.inputs'.*must differ"):
        space.make({**values, "normal.node3.inputs": [1, 1]})
    with pytest.raises(EdgenasError, match=r"'reduce.node3.inputs'.*one of \[0, 1\], \[0, 2\], \[1, 2\]"):
        space.make({**values, "reduce.node3.inputs": [0, 3]})
    with pytest.raises(EdgenasError, match=r"'normal.node5.op1'.*choose one of.*sep_conv_3x3"):
        space.make({**values, "normal.node5.op1": "conv_7x7"})
    with pytest.raises(EdgenasError, match=r"normal=.*reduce="):
        space.from_string("Genotype(normal=[('sep_conv_3x3', 0)])")
    with pytest.raises(EdgenasError, match=r"8 \(op, input\) pairs"):
        space.from_string("Genotype(normal=[('sep_conv_3x3', 0)], reduce=[('sep_conv_3x3', 0)])")


def test_both_cost_routes_agree_and_the_network_runs(space):
    rng = np.random.default_rng(0)
    for arch in [space.from_string(DARTS_V2), space.sample(rng), space.sample(rng)]:
        module = space.build(arch)
        analytic = space.cost(arch)
        traced = profile_module(module, (3, 32, 32))
        assert_routes_agree(analytic, traced, module)
        assert module.eval()(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_reduction_cells_sit_at_one_and_two_thirds(space):
    graph = space.graph(space.from_string(DARTS_V2))
    # 8 cells: reductions at 2 and 5 halve the resolution and double C (16 -> 32 -> 64)
    out = {i: graph.shape(f"features.cells.{i}.cat") for i in range(8)}
    assert [out[i][1] for i in range(8)] == [32, 32, 16, 16, 16, 8, 8, 8]
    assert [out[i][0] for i in range(8)] == [64, 64, 128, 128, 128, 256, 256, 256]


def test_a_small_darts_network_trains():
    torch.manual_seed(0)
    space = get_space("darts", channels=4, layers=3, resolution=8)
    net = space.build(space.from_string(DARTS_V2), num_classes=3)
    x, y = torch.randn(16, 3, 8, 8), torch.arange(16) % 3
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    losses = []
    for _ in range(15):
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
