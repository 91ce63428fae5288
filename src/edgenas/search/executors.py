"""Where evaluations run: inline, a local process pool, or a Ray cluster, from a registry.

Every executor returns ``concurrent.futures.Future`` objects, so the runner waits on all of
them the same way.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, Protocol

from edgenas.errors import EdgenasError
from edgenas.spaces.base import Arch


class Executor(Protocol):
    workers: int

    def submit(self, evaluator: Callable[[Arch], dict[str, float]], arch: Arch) -> Future: ...

    def shutdown(self) -> None: ...


def evaluate_safely(evaluator: Callable[[Arch], dict[str, float]], arch: Arch) -> dict[str, Any]:
    """Run one evaluation; failures come back as data, never as a crash of the search."""
    worker = f"{socket.gethostname()}:{os.getpid()}"
    try:
        metrics = {k: float(v) for k, v in evaluator(arch).items()}
    except Exception as e:  # any failure of a candidate is recorded, and the search goes on
        last = traceback.extract_tb(e.__traceback__)[-1] if e.__traceback__ else None
        where = f" at {os.path.basename(last.filename)}:{last.lineno}" if last else ""
        return {"status": "failed", "error": f"{type(e).__name__}: {e}{where}", "worker": worker}
    bad = [k for k, v in metrics.items() if v != v or v in (float("inf"), float("-inf"))]
    if bad:
        return {"status": "failed", "error": f"non-finite metric {bad[0]}", "worker": worker}
    return {"status": "done", "metrics": metrics, "worker": worker}


class InlineExecutor:
    """Evaluates in this process at submit time: one worker, no start-up cost."""

    workers = 1

    def submit(self, evaluator: Callable[[Arch], dict[str, float]], arch: Arch) -> Future:
        future: Future = Future()
        future.set_result(evaluate_safely(evaluator, arch))
        return future

    def shutdown(self) -> None:
        return None


class ProcessExecutor:
    """A local pool of worker processes (spawned: safe with torch and rich's threads)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))

    def submit(self, evaluator: Callable[[Arch], dict[str, float]], arch: Arch) -> Future:
        return self._pool.submit(evaluate_safely, evaluator, arch)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class RayExecutor:
    """Evaluations as Ray tasks: a local Ray, or an existing cluster given by ``address``."""

    def __init__(self, workers: int, address: str | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise EdgenasError(
                "the Ray executor needs ray; install it with pip install 'edgenas[ray]'"
            ) from None
        self._ray = ray
        if not ray.is_initialized():
            if address:
                ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
            else:
                ray.init(num_cpus=workers, ignore_reinit_error=True, log_to_driver=False,
                         include_dashboard=False)
        self.workers = workers
        self._task = ray.remote(num_cpus=1)(evaluate_safely)

    def submit(self, evaluator: Callable[[Arch], dict[str, float]], arch: Arch) -> Future:
        return self._task.remote(evaluator, arch).future()

    def shutdown(self) -> None:
        return None


def _local(workers: int, address: str | None) -> Executor:
    return InlineExecutor() if workers == 1 else ProcessExecutor(workers)


def _ray(workers: int, address: str | None) -> Executor:
    return RayExecutor(workers, address)


EXECUTORS: dict[str, Callable[[int, str | None], Executor]] = {"local": _local, "ray": _ray}


def make_executor(name: str, workers: int = 1, address: str | None = None) -> Executor:
    if name not in EXECUTORS:
        raise EdgenasError(f"unknown executor {name!r}; use one of {', '.join(EXECUTORS)}")
    if workers < 1:
        raise EdgenasError(f"--workers must be >= 1, got {workers}")
    return EXECUTORS[name](workers, address)
