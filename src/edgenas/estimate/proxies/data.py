"""Fixed, seeded mini-batches for the data-dependent proxies, from data available offline.

There is no CIFAR-10 on the machine, so the proxies run on real images that are: scikit-learn's
bundled digits (always there), Fashion-MNIST when its files exist, or Gaussian noise. Images
are grey, resized to the target size, repeated over the channels and standardised (zero mean,
unit variance over the batch), as CIFAR inputs are after the usual normalisation.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from edgenas.errors import EdgenasError
from edgenas.estimate.proxies.base import Batch

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

# (n, seed, num_classes, shape) -> (images (N, 1 or C, h, w) float32, labels (N,) int64)
Shape3 = tuple[int, int, int]
Source = Callable[[int, int, int, Shape3], tuple[np.ndarray, np.ndarray]]
DATA_SOURCES: dict[str, Source] = {}


def register_source(name: str) -> Callable[[Source], Source]:
    def deco(fn: Source) -> Source:
        DATA_SOURCES[name] = fn
        return fn

    return deco


def _pick(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    if n > len(labels):
        raise EdgenasError(f"asked for {n:,} images but the source has {len(labels):,}; use a smaller batch")
    return np.sort(np.random.default_rng(seed).choice(len(labels), size=n, replace=False))


@register_source("digits")
def _digits(n: int, seed: int, num_classes: int, shape: Shape3) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    data = load_digits()
    idx = _pick(data.target, n, seed)
    images = data.images[idx].astype(np.float32)[:, None] / 16.0
    return images, data.target[idx].astype(np.int64)


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


@register_source("fashion-mnist")
def _fashion(n: int, seed: int, num_classes: int, shape: Shape3) -> tuple[np.ndarray, np.ndarray]:
    images_path = FASHION_MNIST_DIR / "t10k-images-idx3-ubyte.gz"
    labels_path = FASHION_MNIST_DIR / "t10k-labels-idx1-ubyte.gz"
    if not images_path.is_file() or not labels_path.is_file():
        raise EdgenasError(
            f"Fashion-MNIST not found in {FASHION_MNIST_DIR}; use --batch-data digits or gaussian"
        )
    labels = _read_idx(labels_path).astype(np.int64)
    idx = _pick(labels, n, seed)
    return _read_idx(images_path)[idx].astype(np.float32)[:, None] / 255.0, labels[idx]


@register_source("gaussian")
def _gaussian(n: int, seed: int, num_classes: int, shape: Shape3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, *shape)).astype(np.float32), rng.integers(num_classes, size=n)


def proxy_batch(
    source: str = "digits", n: int = 64, shape: tuple[int, int, int] = (3, 32, 32),
    num_classes: int = 10, seed: int = 0,
) -> Batch:
    """``n`` images of ``shape`` from ``source`` with labels below ``num_classes``; seeded."""
    if source not in DATA_SOURCES:
        raise EdgenasError(f"unknown proxy data source {source!r}; choose one of {', '.join(DATA_SOURCES)}")
    images, labels = DATA_SOURCES[source](n, seed, num_classes, shape)
    x = torch.from_numpy(images)
    if tuple(x.shape[2:]) != tuple(shape[1:]):
        x = F.interpolate(x, size=shape[1:], mode="bilinear", align_corners=False)
    if x.shape[1] != shape[0]:
        x = x.expand(-1, shape[0], -1, -1).contiguous()
    x = (x - x.mean()) / x.std().clamp_min(1e-8)
    return Batch(x, torch.from_numpy(labels % num_classes), source)
