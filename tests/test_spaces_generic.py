"""Contracts every registered search space keeps (new spaces are picked up automatically)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from conftest import assert_routes_agree
from edgenas.cost.profiler import profile_module
from edgenas.spaces import get_space, list_spaces

SPACES = list_spaces()
N_COST_CHECKS = 50  # archs per space, as issue 4 asks
# Cell spaces repeat one cell many times; fewer repeats check the same cell code at a third of
# the cost (the default depths are checked on a few archs too).
SHALLOW = {"darts": {"layers": 5}, "nasnet": {"layers": 2}, "nb201": {"cells_per_stage": 2}}
N_DEFAULT_DEPTH = 3


def build_cheaply(space, arch, num_classes=10):
    """Build on the meta device (no weight init): the profiler runs on meta tensors anyway."""
    try:
        with torch.device("meta"):
            return space.build(arch, num_classes)
    except Exception:  # a module that insists on real tensors at init
        return space.build(arch, num_classes)


def archs(space, n, seed=0):
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


@pytest.mark.parametrize("name", SPACES)
def test_json_round_trip_and_stable_id(name):
    space = get_space(name)
    for arch in archs(space, 20):
        back = space.parse(arch.model_dump_json())
        assert back == arch and back.id == arch.id and back.space == name
        assert space.parse(arch.model_dump()) == arch


@pytest.mark.parametrize("name", SPACES)
def test_mutate_changes_exactly_one_active_choice(name):
    space = get_space(name)
    rng = np.random.default_rng(1)
    for arch in archs(space, 30, seed=1):
        child = space.mutate(arch, rng)
        changed = [d for d in space.active(child.values) if child.values[d] != arch.values[d]]
        assert len(changed) == 1, (space.to_string(arch), space.to_string(child), changed)
        assert child != arch


@pytest.mark.parametrize("name", SPACES)
def test_crossover_children_are_valid_mixes_of_their_parents(name):
    space = get_space(name)
    rng = np.random.default_rng(2)
    pool = archs(space, 20, seed=2)
    for a, b in zip(pool[::2], pool[1::2], strict=True):
        child = space.crossover(a, b, rng)
        assert space.make(dict(child.values)) == child
        for d in space.active(child.values):
            assert child.values[d] in (a.values[d], b.values[d])
        space.graph(child)  # builds: shapes are consistent


@pytest.mark.parametrize("name", SPACES)
def test_encoding_has_fixed_length_and_zeroes_inactive_dims(name):
    space = get_space(name)
    width = sum(len(d.options) for d in space.dims())
    for arch in archs(space, 20, seed=3):
        code = space.encode(arch)
        assert code.shape == (width,)
        assert code.sum() == len(space.active(arch.values))
        assert set(np.unique(code)) <= {0.0, 1.0}


@pytest.mark.parametrize("name", SPACES)
def test_size_is_exact_where_enumerable(name):
    space = get_space(name)
    if space.size() > 20_000:
        pytest.skip(f"{name} has {space.size():,} archs; exact sizes are checked on small configs")
    assert sum(1 for _ in space.enumerate()) == space.size()


@pytest.mark.slow
@pytest.mark.parametrize("name", SPACES)
def test_analytic_cost_equals_module_profiler_on_random_archs(name):
    warnings.filterwarnings("ignore")
    checks = [(get_space(name, **SHALLOW.get(name, {})), N_COST_CHECKS)]
    if name in SHALLOW:
        checks.append((get_space(name), N_DEFAULT_DEPTH))
    for space, n in checks:
        for arch in archs(space, n, seed=4):
            analytic = space.cost(arch, num_classes=10)
            module = build_cheaply(space, arch)
            traced = profile_module(module, space.input_shape(arch))
            label = space.to_string(arch)
            assert_routes_agree(analytic, traced, module, label)
            assert set(analytic.peak_sram_bytes) == {"mcunet", "liveness"}
