"""TinyNAS speed: candidates costed per second, cached analytic route vs building + profiling modules.

Target (issue 4): 10,000+ candidates in seconds. Three routes on the same mcunet samples:
the cached chain cost ``optimize_space`` uses, the plain analytic estimate (layer graph per
candidate), and building each nn.Module and tracing it with the module profiler. Prints
ratios measured in this run, since these machines are too noisy for absolute times.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import torch

from edgenas.cost.profiler import profile_module
from edgenas.hardware import get_device
from edgenas.spaces import get_space
from edgenas.spaces.tinynas import optimize_space, sample_values


def rate(n: int, seconds: float) -> float:
    return n / seconds


def main() -> None:
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    space = get_space("mcunet")
    device = get_device("stm32f746")
    per_subspace = 200
    n_subspaces = len(space.widths) * len(space.resolutions)

    t = time.perf_counter()
    optimize_space(space, device, samples=per_subspace, seed=0)  # cold unit cache
    cold = time.perf_counter() - t
    t = time.perf_counter()
    optimize_space(space, device, samples=per_subspace, seed=1)  # warm cache, new samples
    warm = time.perf_counter() - t
    n_fast = per_subspace * n_subspaces

    values = sample_values(space, 200, np.random.default_rng(2), {"width": 0.5, "resolution": 128})
    archs = [space.make(v) for v in values]
    t = time.perf_counter()
    for a in archs:
        space.cost(a, 1000)
    graph = time.perf_counter() - t

    profile_module(space.build(archs[0], 1000), space.input_shape(archs[0]))  # warm the tracer
    n_module = 20
    t = time.perf_counter()
    for a in archs[:n_module]:
        profile_module(space.build(a, 1000), space.input_shape(a))
    module = time.perf_counter() - t

    routes = {
        "cached chain cost (optimize_space, cold cache)": rate(n_fast, cold),
        "cached chain cost (optimize_space, warm cache)": rate(n_fast, warm),
        "analytic estimate, layer graph per candidate": rate(len(archs), graph),
        "build nn.Module + module profiler": rate(n_module, module),
    }
    base = routes["build nn.Module + module profiler"]
    print(f"mcunet on stm32f746: {n_subspaces} sub-spaces x {per_subspace} samples = {n_fast:,} candidates")
    print(f"{'route':50s} {'candidates/s':>14s} {'vs modules':>11s}")
    for name, r in routes.items():
        print(f"{name:50s} {r:14,.0f} {r / base:10,.0f}x")
    print(f"10,000 candidates take {10_000 / routes['cached chain cost (optimize_space, warm cache)']:.1f} s "
          f"with the cached route, {10_000 / base / 60:.0f} min by building modules")


if __name__ == "__main__":
    main()
