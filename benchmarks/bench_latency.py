"""Latency predictor speed: table prediction vs one measured inference of MobileNetV2, same run.

Target (issue 6): ``predict_latency_ms`` under 1 ms for a MobileNetV2-sized graph, so the
search can check ``max_latency_ms`` on every candidate. Prints times (CPU time for the
predictor, which is what a loaded machine cannot inflate; wall time too) and the ratio to
measuring the network.
"""

from __future__ import annotations

import statistics
import time

import torch

from edgenas.hardware.latency import measure_latency
from edgenas.hardware.lut import build_table, fused_layers, predict_latency_ms
from edgenas.hardware.space_latency import chain_latency_fn, sample_archs
from edgenas.models import create_model, model_graph
from edgenas.spaces import get_space


def timed(fn, repeat: int, clock=time.perf_counter) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        t = clock()
        fn()
        times.append(clock() - t)
    return min(times), statistics.median(times)


def main() -> None:
    torch.set_num_threads(1)
    graph = model_graph("mobilenet_v2", 224)
    t = time.perf_counter()
    table = build_table([graph], runs=5, warmup=1)
    build_s = time.perf_counter() - t
    print(f"MobileNetV2 224x224: {len(graph)} nodes, {len(fused_layers(graph))} fused layers, "
          f"table built in {build_s:.1f} s")

    def cold() -> float:  # a fresh graph each time, as a search builds one per candidate
        return predict_latency_ms(model_graph("mobilenet_v2", 224), table)

    predict_latency_ms(graph, table)
    warm_cpu = timed(lambda: predict_latency_ms(graph, table), 200, time.process_time)
    warm_wall = timed(lambda: predict_latency_ms(graph, table), 200)
    graph_only = timed(lambda: model_graph("mobilenet_v2", 224), 50, time.process_time)
    cold_cpu = timed(cold, 50, time.process_time)
    stats = measure_latency(create_model("mobilenet_v2"), (3, 224, 224), runs=10, warmup=2)
    print(f"  predict (graph given)      CPU best {warm_cpu[0] * 1e3:.3f} ms, "
          f"median {warm_cpu[1] * 1e3:.3f} ms; wall median {warm_wall[1] * 1e3:.3f} ms")
    print(f"  build graph + predict      CPU median {cold_cpu[1] * 1e3:.3f} ms "
          f"(graph alone {graph_only[1] * 1e3:.3f} ms)")
    print(f"  measure one inference      median {stats.median_ms:.2f} ms (IQR {stats.iqr_ms:.2f}), "
          f"predicted {predict_latency_ms(graph, table):.2f} ms")
    space = get_space("mobilenet")
    archs = sample_archs(space, 100, seed=0)
    fast = chain_latency_fn(space, table)
    for a in archs:  # fill the unit cache, as the first generations of a search do
        fast(a.values)
    chain = timed(lambda: [fast(a.values) for a in archs], 5, time.process_time)
    per_arch_us = chain[1] / len(archs) * 1e6
    print(f"  mobilenet space, chain_latency_fn (units cached): CPU {per_arch_us:.1f} us/arch")
    ratio = stats.median_ms / (warm_cpu[1] * 1e3)
    print(f"measure / predict time: {ratio:,.0f}x; predict under 1 ms (CPU median): "
          f"{'OK' if warm_cpu[1] < 1e-3 else 'MISSED'}")


if __name__ == "__main__":
    main()
