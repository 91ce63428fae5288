"""Cost-model speed: analytic route and module profiler vs fvcore on MobileNetV2, same run.

Targets (issue 2): analytic >= 100x faster than fvcore; the module profiler no slower than fvcore.
Prints ratios, since these machines are too noisy for absolute times.
"""

from __future__ import annotations

import statistics
import time
import warnings

import torch

from edgenas.cost import estimate
from edgenas.cost.profiler import profile_module
from edgenas.models import create_model, model_graph


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times), statistics.median(times)


def fvcore_count(module) -> int:
    from fvcore.nn import FlopCountAnalysis

    f = FlopCountAnalysis(module, torch.zeros(1, 3, 224, 224))
    f.unsupported_ops_warnings(False)
    f.uncalled_modules_warnings(False)
    return f.total()


def main() -> None:
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    module = create_model("mobilenet_v2").eval()
    # warm every route once (imports, fake-tensor mode set-up)
    estimate(model_graph("mobilenet_v2", 224))
    profile_module(module, (3, 224, 224))
    fvcore_count(module)

    analytic = best_of(lambda: estimate(model_graph("mobilenet_v2", 224)), 50)
    profiler = best_of(lambda: profile_module(module, (3, 224, 224)), 5)
    fvcore = best_of(lambda: fvcore_count(module), 5)
    print("MobileNetV2 224x224, best / median of repeated runs (seconds)")
    for name, (best, med) in (("analytic", analytic), ("profiler", profiler), ("fvcore", fvcore)):
        print(f"  {name:9s} best {best:.5f}  median {med:.5f}")
    speedup = fvcore[0] / analytic[0]
    ratio = profiler[0] / fvcore[0]
    print(f"analytic speed-up over fvcore: {speedup:.0f}x (target >= 100x) "
          f"{'OK' if speedup >= 100 else 'MISSED'}")
    print(f"profiler time / fvcore time:   {ratio:.2f} (target <= 1.0) "
          f"{'OK' if ratio <= 1.0 else 'MISSED'}")


if __name__ == "__main__":
    main()
