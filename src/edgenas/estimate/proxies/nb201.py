"""Validate the proxies on NAS-Bench-201: rank correlation with trained accuracy, and with NASLib.

Reads NASLib's ``zc_nasbench201.json`` (491 archs per dataset, each with ``val_accuracy`` after
200 epochs and NASLib's own proxy scores), builds each arch with our NB201 space, scores it
with our proxies and reports Spearman's rho against accuracy next to NASLib's, plus the rank
agreement between our scores and NASLib's.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from edgenas.errors import EdgenasError
from edgenas.estimate.proxies.base import compute_proxy, get_proxy
from edgenas.estimate.proxies.data import proxy_batch

DEFAULT_ZC_PATH = Path("../shared/data/nb201/zc_nasbench201.json")
NUM_CLASSES = {"cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}


@dataclass(frozen=True)
class ProxyEval:
    """One row of the validation table; NaN where NASLib has no such score."""

    proxy: str
    n: int
    spearman_ours: float
    spearman_naslib: float
    agreement: float
    seconds_per_arch: float
    failed: int

    def to_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


def load_zc(path: Path | str = DEFAULT_ZC_PATH, dataset: str = "cifar10") -> dict[str, dict]:
    """NASLib's per-arch records for ``dataset``, keyed by NASLib's op-index tuple string."""
    path = Path(path)
    if not path.is_file():
        raise EdgenasError(
            f"NASLib zero-cost data not found at {path}; pass --data PATH/TO/zc_nasbench201.json "
            "(NASLib's naslib/data/zc_nasbench201.json)"
        )
    try:
        data = json.loads(path.read_text())["nasbench201"][dataset]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise EdgenasError(
            f"{path} is not NASLib's zc_nasbench201.json (no nasbench201/{dataset} section); give that file"
        ) from None
    return data


def select_keys(records: dict[str, dict], n: int, seed: int) -> list[str]:
    """``n`` keys: all of them in file order, or a seeded random subset."""
    keys = list(records)
    if n <= 0:
        raise EdgenasError(f"--n must be positive, got {n}")
    if n >= len(keys):
        return keys
    picked = np.random.default_rng(seed).choice(len(keys), size=n, replace=False)
    return [keys[i] for i in sorted(picked)]


def rank_corr(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rho; a failed score (NaN) ranks last, as NASLib's -1e8 does."""
    x = np.nan_to_num(np.asarray(a, dtype=np.float64), nan=-np.inf)
    y = np.nan_to_num(np.asarray(b, dtype=np.float64), nan=-np.inf)
    if len(x) < 3 or np.all(x == x[0]) or np.all(y == y[0]):
        return math.nan
    return float(spearmanr(x, y).statistic)


def score_nb201(
    proxies: Sequence[str], keys: Sequence[str], *, dataset: str = "cifar10", seed: int = 0,
    batch_data: str = "digits", batch_size: int = 64,
    on_arch: Callable[[int], None] | None = None,
) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Our scores of each NASLib key's network (weights seeded per arch) and seconds per proxy."""
    from edgenas.spaces import get_space

    space = get_space("nb201", resolution=16 if dataset == "ImageNet16-120" else 32)
    classes = NUM_CLASSES[dataset]
    infos = [get_proxy(p) for p in proxies]
    shape = space.input_shape(space.from_naslib(keys[0])) if keys else (3, 32, 32)
    batch = proxy_batch(batch_data, batch_size, shape, classes, seed)
    scores: dict[str, list[float]] = {p.name: [] for p in infos}
    seconds = dict.fromkeys(scores, 0.0)
    for i, key in enumerate(keys):
        arch = space.from_naslib(key)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = space.build(arch, classes)
        for info in infos:
            t0 = time.perf_counter()
            scores[info.name].append(compute_proxy(info.name, model, batch, seed=seed))
            seconds[info.name] += time.perf_counter() - t0
        if on_arch is not None:
            on_arch(i + 1)
    return scores, seconds


def evaluate_nb201(
    proxies: Sequence[str], *, n: int = 491, data: Path | str = DEFAULT_ZC_PATH, dataset: str = "cifar10",
    seed: int = 0, batch_data: str = "digits", batch_size: int = 64,
    on_arch: Callable[[int], None] | None = None,
) -> list[ProxyEval]:
    """The validation table: one :class:`ProxyEval` per proxy over ``n`` archs of NASLib's file."""
    if dataset not in NUM_CLASSES:
        raise EdgenasError(f"unknown NB201 dataset {dataset!r}; choose one of {', '.join(NUM_CLASSES)}")
    records = load_zc(data, dataset)
    keys = select_keys(records, n, seed)
    scores, seconds = score_nb201(
        proxies, keys, dataset=dataset, seed=seed, batch_data=batch_data, batch_size=batch_size,
        on_arch=on_arch,
    )
    acc = [records[k]["val_accuracy"] for k in keys]
    rows = []
    for name, ours in scores.items():
        ref_key = get_proxy(name).naslib_key
        ref = [records[k].get(ref_key, math.nan) for k in keys] if ref_key else None
        rows.append(
            ProxyEval(
                proxy=name,
                n=len(keys),
                spearman_ours=rank_corr(ours, acc),
                spearman_naslib=rank_corr(ref, acc) if ref else math.nan,
                agreement=rank_corr(ours, ref) if ref else math.nan,
                seconds_per_arch=seconds[name] / max(len(keys), 1),
                failed=int(np.isnan(np.asarray(ours)).sum()),
            )
        )
    return rows
