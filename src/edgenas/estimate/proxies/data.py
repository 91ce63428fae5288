"""Fixed, seeded mini-batches for the data-dependent proxies.

Images come from any registered dataset (:mod:`edgenas.estimate.data`: digits, always there;
Fashion-MNIST, CIFAR-10 or an image folder when their files are) or from Gaussian noise. They
are resized to the network's input, repeated over its channels and standardised (zero mean,
unit variance over the batch), as CIFAR inputs are after the usual normalisation. The test
split is used when the dataset has one, so no training image is ever scored.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from edgenas.errors import EdgenasError
from edgenas.estimate.data import dataset_info, list_datasets, resolve_dir
from edgenas.estimate.proxies.base import Batch

NOISE = "gaussian"


def proxy_sources() -> list[str]:
    """Every name ``proxy_batch`` takes: the registered datasets and Gaussian noise."""
    return [*(info.name for info in list_datasets()), NOISE]


def _images(source: str, data_dir: str | Path | None) -> tuple[torch.Tensor, torch.Tensor]:
    if source not in proxy_sources():
        known = ", ".join(proxy_sources())
        raise EdgenasError(f"unknown proxy data source {source!r}; choose one of {known}")
    info = dataset_info(source)
    raw = info.loader(resolve_dir(info, data_dir), None)
    if raw.test_x is not None and raw.test_y is not None:
        return raw.test_x, raw.test_y
    return raw.train_x, raw.train_y


def proxy_batch(
    source: str = "digits", n: int = 64, shape: tuple[int, int, int] = (3, 32, 32),
    num_classes: int = 10, seed: int = 0, data_dir: str | Path | None = None,
) -> Batch:
    """``n`` images of ``shape`` from ``source`` with labels below ``num_classes``; seeded."""
    gen = torch.Generator().manual_seed(seed)
    if source == NOISE:
        x = torch.randn((n, *shape), generator=gen)
        return Batch(x, torch.randint(num_classes, (n,), generator=gen), source)
    images, labels = _images(source, data_dir)
    if n > len(labels):
        raise EdgenasError(f"asked for {n:,} images but {source} has {len(labels):,}; use a smaller batch")
    idx = torch.randperm(len(labels), generator=gen)[:n].sort().values
    x = images[idx].float() / 255.0
    if tuple(x.shape[2:]) != tuple(shape[1:]):
        x = F.interpolate(x, size=shape[1:], mode="bilinear", align_corners=False)
    if x.shape[1] != shape[0]:
        if x.shape[1] != 1:
            raise EdgenasError(f"{source} has {x.shape[1]} channels; the network wants {shape[0]}")
        x = x.expand(-1, shape[0], -1, -1).contiguous()
    x = (x - x.mean()) / x.std().clamp_min(1e-8)
    return Batch(x, labels[idx] % num_classes, source)
