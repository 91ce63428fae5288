"""TinyNAS sub-space optimisation: fit decisions, ranking by MACs of fitting models, CDF plot."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from PIL import Image

from edgenas.errors import EdgenasError
from edgenas.hardware import device_from_args, get_device
from edgenas.spaces import get_space
from edgenas.spaces.mcunet import MCUNetSpace
from edgenas.spaces.tinynas import optimize_space, plot_cdf, sample_values


def small_mcunet() -> MCUNetSpace:
    return MCUNetSpace(resolutions=(64, 112, 160), widths=(0.3, 0.6, 1.0))


def test_a_bigger_sram_budget_never_lowers_the_fitting_fraction():
    space = small_mcunet()
    budgets = [128, 192, 256, 320, 512]
    runs = [optimize_space(space, device_from_args(None, kb, 1024), samples=150, seed=3) for kb in budgets]
    by_label = [{r.label: r for r in run} for run in runs]
    for smaller, bigger in itertools.pairwise(by_label):
        for label, r in smaller.items():
            assert bigger[label].fitting >= r.fitting, label
    fractions = [sum(r.fitting for r in run) for run in runs]
    assert fractions[0] < fractions[-1]  # the budget actually binds


def test_fit_decisions_and_ranking_match_the_full_cost_model():
    space = small_mcunet()
    device = get_device("stm32f746")
    results = optimize_space(space, device, samples=40, seed=0, num_classes=1000)
    assert [r.rank for r in results] == list(range(1, 10))
    means = [r.mean_macs for r in results]
    assert means == sorted(means, reverse=True)  # rank 1: highest mean MACs of fitting models
    # recompute one sub-space through the full layer-graph estimate
    r = next(r for r in results if 0 < r.fitting < r.samples)
    wi, ri = space.widths.index(r.width), space.resolutions.index(r.resolution)
    rng = np.random.default_rng((0, wi, ri))
    macs = []
    for values in sample_values(space, 40, rng, {"width": r.width, "resolution": r.resolution}):
        cost = space.cost(space.make(values), num_classes=1000)
        if device.fits(cost.flash_bytes, cost.peak_sram_bytes["mcunet"]):
            macs.append(cost.macs)
    assert sorted(macs) == r.fitting_macs.tolist()
    assert r.mean_macs == pytest.approx(np.mean(macs))


def test_unlimited_device_fits_everything_and_high_resolution_wide_wins():
    results = optimize_space(small_mcunet(), get_device("cpu"), samples=30, seed=1)
    assert all(r.fraction == 1.0 for r in results)
    assert results[0].label == "w1-r160"


def test_sampled_values_fix_the_subspace_and_cover_the_options():
    space = small_mcunet()
    rows = sample_values(space, 500, np.random.default_rng(0), {"width": 0.6, "resolution": 112})
    assert {(v["width"], v["resolution"]) for v in rows} == {(0.6, 112)}
    assert {v["d2"] for v in rows} == {2, 3, 4} and {v["k0_0"] for v in rows} == {3, 5, 7}


def test_spaces_without_a_chain_cost_still_work():
    space = get_space("topology", blocks=3, resolutions=[32], widths=[0.5, 1.0])
    results = optimize_space(space, device_from_args(None, 24, 64), samples=5, seed=0, num_classes=10)
    assert len(results) == 2 and all(r.samples == 5 for r in results)


def test_errors_name_the_fix():
    with pytest.raises(EdgenasError, match="no width and resolution"):
        optimize_space(get_space("nb201"), get_device("cpu"))
    with pytest.raises(EdgenasError, match="use mcunet or liveness"):
        optimize_space(small_mcunet(), get_device("cpu"), samples=2, method="max")
    tiny = device_from_args(None, 1, 1)
    results = optimize_space(small_mcunet(), tiny, samples=3)
    assert all(r.fitting == 0 and r.mean_macs == 0 for r in results)
    with pytest.raises(EdgenasError, match="no sampled model fits"):
        plot_cdf(results, "unused.png", tiny)


def test_cdf_plot_is_a_png_with_one_curve_per_top_subspace(tmp_path):
    results = optimize_space(small_mcunet(), get_device("stm32f746"), samples=60, seed=0)
    out = plot_cdf(results, tmp_path / "cdf.png", get_device("stm32f746"), top=3)
    with Image.open(out) as img:
        assert img.format == "PNG" and img.size[0] >= 800
        colours = {c for _, c in img.convert("RGB").getcolors(1 << 20)}
    # matplotlib's first three line colours (tab:blue, tab:orange, tab:green) are drawn
    assert {(31, 119, 180), (255, 127, 14), (44, 160, 44)} <= colours
    assert (214, 39, 40) not in colours  # no fourth curve (tab:red)


def test_subspaces_where_few_models_fit_rank_after_the_rest():
    from edgenas.hardware.devices import get_device
    from edgenas.spaces import get_space
    from edgenas.spaces.tinynas import optimize_space

    space = get_space("mcunet", widths=[0.4, 0.8], resolutions=[112, 128, 176])
    device = get_device("stm32f746")
    plain = optimize_space(space, device, samples=80, min_fit=0.0)
    guarded = optimize_space(space, device, samples=80, min_fit=0.1)
    assert [r.label for r in plain] == [
        r.label for r in sorted(plain, key=lambda r: (-r.mean_macs, -r.fraction, r.width, r.resolution))
    ]
    ok = [r for r in guarded if r.fraction >= 0.1]
    macs = [r.mean_macs for r in guarded[: len(ok)]]
    assert ok and macs == sorted(macs, reverse=True)
    assert all(r.fraction >= 0.1 for r in guarded[: len(ok)])
    assert plain[0].fraction < 0.1 and guarded[0].label != plain[0].label  # the guard matters here
    assert all(r.fraction < 0.1 for r in guarded[len(ok):])
    assert {r.label for r in plain} == {r.label for r in guarded}
