"""NAS-Bench-201 space: exact size, official arch strings, and the benchmark's own params/FLOPs."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from conftest import NB201_DIR, assert_routes_agree
from edgenas.cost.profiler import profile_module
from edgenas.errors import EdgenasError
from edgenas.spaces import get_space
from edgenas.spaces.nb201 import OPS, nb201_flops

ZC_JSON = NB201_DIR / "zc_nasbench201.json"
CSV_12EPOCH = NB201_DIR / "nb201_12epoch.csv"
needs_data = pytest.mark.skipif(
    not ZC_JSON.exists() or not CSV_12EPOCH.exists(),
    reason=f"NAS-Bench-201 reference data not found in {NB201_DIR}",
)
# dataset -> (resolution, classes) of the network the benchmark measured
DATASETS = {"cifar10": (32, 10), "cifar100": (32, 100), "ImageNet16-120": (16, 120)}



@pytest.fixture(scope="module")
def space():
    return get_space("nb201")


def test_size_and_enumeration_cover_all_15625_cells(space):
    assert space.size() == 5**6 == 15_625
    archs = list(space.enumerate())
    assert len(archs) == 15_625
    assert len({space.to_string(a) for a in archs}) == 15_625


def test_arch_string_and_naslib_key_follow_the_readme_mapping(space):
    arch = space.from_naslib("(4, 3, 3, 3, 2, 3)")
    assert space.to_string(arch) == (
        "|avg_pool_3x3~0|+|nor_conv_1x1~0|nor_conv_1x1~1|"
        "+|nor_conv_1x1~0|nor_conv_3x3~1|nor_conv_1x1~2|"
    )
    assert arch["edge_0_1"] == "avg_pool_3x3" and arch["edge_1_3"] == "nor_conv_3x3"
    assert space.to_naslib(arch) == "(4, 3, 3, 3, 2, 3)"
    rng = np.random.default_rng(0)
    for _ in range(50):
        a = space.sample(rng)
        assert space.from_string(space.to_string(a)) == a
        assert space.from_naslib(space.to_naslib(a)) == a
        assert space.parse(a.model_dump_json()) == a
        assert space.parse(space.to_string(a)) == a


@needs_data
def test_every_benchmark_cell_string_is_one_of_our_archs(space):
    with CSV_12EPOCH.open() as f:
        official = {row["cellstr"] for row in csv.DictReader(f)}
    assert official == {space.to_string(a) for a in space.enumerate()}
    keys = json.loads(ZC_JSON.read_text())["nasbench201"]["cifar10"]
    assert {space.to_string(space.from_naslib(k)) for k in keys} <= official


@pytest.mark.parametrize(
    "text",
    [
        "|nor_conv_3x3~0|+|none~0|none~1|",  # two groups
        "|nor_conv_3x3~0|+|none~0|+|none~0|none~1|none~2|",  # group 2 lists one edge
        "|conv_7x7~0|+|none~0|none~1|+|none~0|none~1|none~2|",  # unknown op
        "|none~1|+|none~0|none~1|+|none~0|none~1|none~2|",  # edge into node 1 from node 1
        "none~0|+|none~0|none~1|+|none~0|none~1|none~2|",  # missing bar
        "",
    ],
)
def test_malformed_arch_strings_raise_a_clear_error(space, text):
    with pytest.raises(EdgenasError, match="NB201 arch string"):
        space.from_string(text)


def test_bad_field_values_name_the_allowed_ops(space):
    good = {f"edge_{i}_{j}": "none" for i, j in ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))}
    with pytest.raises(EdgenasError, match=r"edge_1_2.*choose one of.*nor_conv_3x3"):
        space.make({**good, "edge_1_2": "conv_5x5"})
    with pytest.raises(EdgenasError, match="not a dimension"):
        space.make({**good, "edge_3_0": "none"})
    with pytest.raises(EdgenasError, match="NASLib NB201 key"):
        space.from_naslib("(4, 3, 3)")


def test_mutate_changes_exactly_one_edge(space):
    rng = np.random.default_rng(1)
    for _ in range(30):
        a = space.sample(rng)
        b = space.mutate(a, rng)
        assert sum(a[k] != b[k] for k in a.values) == 1


def test_params_by_hand_for_one_cell(space):
    # (4, 3, 3, 3, 2, 3): avg pool, four 1x1 ReLU-Conv-BN and one 3x3 per cell
    cell = {c: 4 * (c * c + 2 * c) + 9 * c * c + 2 * c for c in (16, 32, 64)}
    stem = 3 * 16 * 9 + 2 * 16
    reductions = sum(9 * ci * co + 2 * co + 9 * co * co + 2 * co + ci * co for ci, co in ((16, 32), (32, 64)))
    head = 2 * 64 + 64 * 10 + 10
    expected = stem + 5 * sum(cell.values()) + reductions + head
    assert expected == 428_346
    assert space.cost(space.from_naslib("(4, 3, 3, 3, 2, 3)"), num_classes=10).params == expected


@pytest.mark.slow
@needs_data
def test_params_and_flops_match_the_benchmark_for_all_491_archs_of_each_dataset():
    data = json.loads(ZC_JSON.read_text())["nasbench201"]
    checked = 0
    for dataset, (resolution, classes) in DATASETS.items():
        space = get_space("nb201", resolution=resolution)
        for key, entry in data[dataset].items():
            graph = space.graph(space.from_naslib(key), classes)
            params = sum(n.op.params() for n in graph.nodes)
            # the cifar10 entries were measured with a 10-class head (they differ from cifar100's)
            assert params == round(entry["params"] * 1e6), (dataset, key)
            assert nb201_flops(graph) == round(entry["flops"] * 1e6), (dataset, key)
            checked += 1
    assert checked == 3 * 491


@pytest.mark.parametrize(
    "cell",
    [
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
        "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
        "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    ],
)
def test_built_network_matches_the_analytic_graph(space, cell):
    arch = space.from_string(cell)
    module = space.build(arch)
    analytic = space.cost(arch)
    traced = profile_module(module, (3, 32, 32))
    assert_routes_agree(analytic, traced, module)
    assert module.eval()(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_none_edges_really_output_zeros_and_imagenet16_shapes():
    space = get_space("nb201", resolution=16)
    arch = space.from_string("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    module = space.build(arch, num_classes=120).eval()
    out = module(torch.randn(2, 3, 16, 16))
    assert out.shape == (2, 120)
    # every cell outputs zeros, so the logits are the classifier's bias whatever the image
    bias = dict(module.named_parameters())["classifier.0.bias"]
    assert torch.allclose(out, bias.expand(2, 120))
    assert set(space.describe()["ops"]) == set(OPS)
