"""Measured latency: median and IQR of batch-1 inference wall time, on a backend from a registry.

The machines this runs on are shared and noisy, so timings are robust by construction:
each call is timed on its own, several modules measured together are *interleaved* (round
``r`` runs every module once, in a fresh random order) so a burst of background load hits
them all alike, and the statistic is the median with its inter-quartile range.

A backend turns ``(module, input shapes, threads)`` into a zero-argument ``run`` callable
(inputs already bound); :func:`measure_latency` and :func:`measure_many` only time calls.
"""

from __future__ import annotations

import io
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from edgenas.errors import EdgenasError
from edgenas.ops.specs import Shape

Runner = Callable[[], object]
BackendFactory = Callable[[nn.Module, Sequence[Shape], int], Runner]
BACKENDS: dict[str, BackendFactory] = {}
#: backends whose fixed per-call cost is paid once per network, not once per layer (a runtime
#: session runs the whole graph in one call; eager torch dispatches every layer from Python)
CALL_OVERHEAD_ONCE: set[str] = set()


def register_backend(
    name: str, overhead_once: bool = False
) -> Callable[[BackendFactory], BackendFactory]:
    def deco(fn: BackendFactory) -> BackendFactory:
        if name in BACKENDS:
            raise ValueError(f"latency backend {name!r} registered twice")
        BACKENDS[name] = fn
        if overhead_once:
            CALL_OVERHEAD_ONCE.add(name)
        return fn

    return deco


def get_backend(name: str) -> BackendFactory:
    if name not in BACKENDS:
        raise EdgenasError(f"unknown latency backend {name!r}; use one of {', '.join(sorted(BACKENDS))}")
    return BACKENDS[name]


@dataclass(frozen=True, slots=True)
class LatencyStats:
    """Wall time of one batch-1 inference, in milliseconds."""

    median_ms: float
    q1_ms: float
    q3_ms: float
    min_ms: float  # the least-disturbed run: close to the per-layer sum on a loaded machine
    runs: int
    backend: str
    threads: int

    @property
    def iqr_ms(self) -> float:
        return self.q3_ms - self.q1_ms

    def to_dict(self) -> dict[str, float | int | str]:
        return {
            "median_ms": self.median_ms, "iqr_ms": self.iqr_ms, "q1_ms": self.q1_ms, "q3_ms": self.q3_ms,
            "min_ms": self.min_ms, "runs": self.runs, "backend": self.backend, "threads": self.threads,
        }


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run torch with ``threads`` intra-op threads, restoring the caller's setting after."""
    if threads < 1:
        raise EdgenasError(f"threads must be >= 1, got {threads}")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _inputs(shapes: Sequence[Shape], seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(1, *s, generator=gen) for s in shapes]


@register_backend("torch")
def torch_backend(module: nn.Module, shapes: Sequence[Shape], threads: int) -> Runner:
    """Eager PyTorch under ``inference_mode`` (threads are set by the caller's context)."""
    module = module.eval()
    xs = _inputs(shapes)

    def run() -> object:
        with torch.inference_mode():
            return module(*xs)

    return run


def export_onnx(module: nn.Module, shapes: Sequence[Shape]) -> bytes:
    """ONNX bytes of ``module`` on batch-1 inputs, exported in memory.

    Uses the TorchScript exporter (still in torch 2.13, no extra package); falls back to the
    dynamo exporter, which needs ``onnxscript``, if the legacy one is gone.
    """
    xs = tuple(_inputs(shapes))
    buf = io.BytesIO()
    module = module.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(module, xs, buf, dynamo=False, opset_version=17)
        except TypeError:  # a torch without the legacy exporter
            try:
                torch.onnx.export(module, xs, buf)
            except ModuleNotFoundError as e:
                raise EdgenasError(
                    f"ONNX export needs {e.name}; install it (pip install {e.name}) or use --backend torch"
                ) from None
    return buf.getvalue()


@register_backend("onnxruntime", overhead_once=True)
def onnxruntime_backend(module: nn.Module, shapes: Sequence[Shape], threads: int) -> Runner:
    """ONNX Runtime CPU session, fully optimised (BN folded, activations fused), sequential."""
    try:
        import onnxruntime as ort
    except ModuleNotFoundError:
        raise EdgenasError(
            "the onnxruntime backend needs onnxruntime; pip install 'edgenas[onnx]' or use --backend torch"
        ) from None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    session = ort.InferenceSession(export_onnx(module, shapes), opts, providers=["CPUExecutionProvider"])
    feed = {i.name: x.numpy() for i, x in zip(session.get_inputs(), _inputs(shapes), strict=True)}

    def run() -> object:
        return session.run(None, feed)

    return run


def _check_counts(runs: int, warmup: int) -> None:
    if runs < 1:
        raise EdgenasError(f"runs must be >= 1, got {runs}")
    if warmup < 0:
        raise EdgenasError(f"warmup must be >= 0, got {warmup}")


def _stats(samples_ns: list[int], backend: str, threads: int) -> LatencyStats:
    ms = np.asarray(samples_ns, dtype=np.float64) / 1e6
    q1, med, q3 = np.percentile(ms, [25, 50, 75])
    return LatencyStats(float(med), float(q1), float(q3), float(ms.min()), len(ms), backend, threads)


def time_runners(
    runners: Sequence[Runner], runs: int = 30, warmup: int = 5, seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> list[list[int]]:
    """Per-call times (ns) of every runner, interleaved in a random order each round."""
    _check_counts(runs, warmup)
    for run in runners:
        for _ in range(warmup):
            run()
    rng = np.random.default_rng(seed)
    samples: list[list[int]] = [[] for _ in runners]
    clock = time.perf_counter_ns
    for r in range(runs):
        for i in rng.permutation(len(runners)):
            run = runners[i]
            t = clock()
            run()
            samples[i].append(clock() - t)
        if progress is not None:
            progress(r + 1, runs)
    return samples


def measure_many(
    items: Sequence[tuple[nn.Module, Sequence[Shape]]], runs: int = 30, warmup: int = 5, threads: int = 1,
    backend: str = "torch", seed: int = 0, progress: Callable[[int, int], None] | None = None,
) -> list[LatencyStats]:
    """Latency of several modules, each on its list of input shapes, measured interleaved."""
    factory = get_backend(backend)
    with torch_threads(threads):
        runners = [factory(module, shapes, threads) for module, shapes in items]
        samples = time_runners(runners, runs, warmup, seed, progress)
    return [_stats(s, backend, threads) for s in samples]


def measure_latency(
    module: nn.Module, input_shape: Shape, runs: int = 50, warmup: int = 10, threads: int = 1,
    backend: str = "torch",
) -> LatencyStats:
    """Median and IQR of batch-1 inference time of ``module`` on a ``(C, H, W)`` input."""
    return measure_many([(module, [tuple(input_shape)])], runs, warmup, threads, backend)[0]
