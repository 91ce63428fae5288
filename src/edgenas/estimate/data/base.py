"""Dataset registry, deterministic splits and the in-memory :class:`Dataset`.

A dataset source reads raw images into uint8 tensors ``(N, C, H, W)``; :func:`load_dataset`
resizes them once, carves a seeded, class-stratified validation split from the training
images and returns them with the per-dataset normalisation and augmentation defaults. Images
stay uint8 in memory (60,000 Fashion-MNIST images take 47 MB, not 188 MB) and are turned into
normalised floats one batch at a time by :class:`~edgenas.estimate.data.loader.BatchIterator`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from edgenas.errors import EdgenasError


@dataclass(frozen=True)
class RawData:
    """What a source returns: uint8 images ``(N, C, H, W)`` and int64 labels, train and test.

    ``test_x`` None: the source has no official test set; a fixed, seed-independent stratified
    ``test_fraction`` of the training images becomes the test set.
    """

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor | None
    test_y: torch.Tensor | None
    classes: tuple[str, ...]


@dataclass(frozen=True)
class Augment:
    """Training-time augmentation: random crop after zero padding, horizontal flip."""

    crop_padding: int = 0
    hflip: bool = False

    @property
    def enabled(self) -> bool:
        return self.crop_padding > 0 or self.hflip


Loader = Callable[..., RawData]


@dataclass(frozen=True)
class DatasetInfo:
    """A registered dataset: how to read it and its defaults."""

    name: str
    loader: Loader  # (data_dir: Path | None, resolution: int | None) -> RawData
    description: str
    needs_dir: bool
    default_dir: str | None = None  # used when no data_dir is given and it exists
    mean: tuple[float, ...] | None = None  # per channel on [0, 1] pixels; None: from train split
    std: tuple[float, ...] | None = None
    augment: Augment = field(default_factory=Augment)
    test_fraction: float = 0.2  # only for sources without an official test set
    resolution: int = 32  # suggested training input size (digits' 8x8 is too small for a CNN)


DATASETS: dict[str, DatasetInfo] = {}


def register_dataset(
    name: str, description: str, *, needs_dir: bool = True, default_dir: str | None = None,
    mean: tuple[float, ...] | None = None, std: tuple[float, ...] | None = None,
    augment: Augment | None = None, test_fraction: float = 0.2, resolution: int = 32,
) -> Callable[[Loader], Loader]:
    def deco(fn: Loader) -> Loader:
        if name in DATASETS:
            raise ValueError(f"dataset {name!r} registered twice")
        DATASETS[name] = DatasetInfo(
            name, fn, description, needs_dir, default_dir, mean, std, augment or Augment(), test_fraction,
            resolution,
        )
        return fn

    return deco


def dataset_info(name: str) -> DatasetInfo:
    _load_all()
    if name not in DATASETS:
        raise EdgenasError(f"unknown dataset {name!r}; known datasets: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]


def list_datasets() -> list[DatasetInfo]:
    _load_all()
    return [DATASETS[k] for k in sorted(DATASETS)]


def _load_all() -> None:
    import edgenas.estimate.data.sources  # noqa: F401


@dataclass(frozen=True)
class Split:
    """Images (uint8, ``(N, C, H, W)``) and labels (int64) of one split."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)

    def class_counts(self, num_classes: int) -> list[int]:
        return torch.bincount(self.y, minlength=num_classes).tolist()


@dataclass(frozen=True)
class Dataset:
    """Train/val/test splits in memory plus how to normalise and augment them."""

    name: str
    train: Split
    val: Split
    test: Split
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: Augment
    channels: int  # channels the batches have (grayscale is repeated to 3 on request)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        _, _, h, w = self.train.x.shape
        return (self.channels, h, w)

    def split(self, name: str) -> Split:
        if name not in ("train", "val", "test"):
            raise EdgenasError(f"unknown split {name!r}; use train, val or test")
        return getattr(self, name)

    def loader(self, split: str = "train", batch_size: int = 128, *, shuffle: bool | None = None,
               augment: bool | None = None, seed: int = 0, drop_last: bool | None = None):
        """Batches of normalised float images; training defaults: shuffled, augmented."""
        from edgenas.estimate.data.loader import BatchIterator

        is_train = split == "train"
        return BatchIterator(
            self.split(split), batch_size, self.mean, self.std, channels=self.channels,
            shuffle=is_train if shuffle is None else shuffle,
            augment=self.augment if (is_train if augment is None else augment) else Augment(),
            seed=seed, drop_last=is_train if drop_last is None else drop_last,
        )


def stratified_split(
    y: torch.Tensor, fraction: float, seed: int, count: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (keep, carved), carving ``round(fraction * n_c)`` of each class c, seeded.

    With ``count``, exactly ``count`` are carved, split over classes in proportion to their
    sizes (largest remainders get the leftover places).
    """
    labels = y.numpy()
    classes, sizes = np.unique(labels, return_counts=True)
    if count is None:
        quotas = np.array([round(fraction * n) for n in sizes])
    else:
        exact = count * sizes / sizes.sum()
        quotas = np.floor(exact).astype(int)
        leftover = count - quotas.sum()
        quotas[np.argsort(-(exact - quotas), kind="stable")[:leftover]] += 1
    rng = np.random.default_rng(seed)
    keep, carved = [], []
    for c, k in zip(classes, quotas, strict=True):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        carved.append(idx[:k])
        keep.append(idx[k:])
    return torch.from_numpy(np.sort(np.concatenate(keep))), torch.from_numpy(np.sort(np.concatenate(carved)))


def resize_uint8(x: torch.Tensor, resolution: int, chunk: int = 4096) -> torch.Tensor:
    """Bilinear (antialiased when shrinking) resize of uint8 images, in chunks to bound memory."""
    if x.shape[-2:] == (resolution, resolution):
        return x
    out = torch.empty((*x.shape[:2], resolution, resolution), dtype=torch.uint8)
    for i in range(0, len(x), chunk):
        part = F.interpolate(x[i:i + chunk].float(), size=(resolution, resolution), mode="bilinear",
                             align_corners=False, antialias=resolution < x.shape[-1])
        out[i:i + chunk] = part.round_().clamp_(0, 255).to(torch.uint8)
    return out


def channel_stats(x: torch.Tensor, chunk: int = 8192) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images on the [0, 1] scale."""
    c = x.shape[1]
    total = torch.zeros(c, dtype=torch.float64)
    squares = torch.zeros(c, dtype=torch.float64)
    for i in range(0, len(x), chunk):
        part = x[i:i + chunk].double() / 255.0
        total += part.sum((0, 2, 3))
        squares += part.pow(2).sum((0, 2, 3))
    n = x.shape[0] * x.shape[2] * x.shape[3]
    mean = total / n
    std = (squares / n - mean**2).clamp_min(1e-12).sqrt()
    return tuple(mean.tolist()), tuple(std.tolist())


def load_dataset(
    name: str, data_dir: str | Path | None = None, *, resolution: int | None = None,
    val_fraction: float = 0.1, seed: int = 0, train_size: int | None = None,
    channels: int | None = None, augment: Augment | None = None,
) -> Dataset:
    """Load a registered dataset into memory with seeded train/val splits.

    ``train_size`` keeps a seeded, stratified subset of the training images (after the
    validation split) for short schedules; ``channels=3`` repeats grayscale to RGB for
    networks with a 3-channel stem; ``augment`` overrides the dataset's defaults.
    """
    info = dataset_info(name)
    if not 0 <= val_fraction < 1:
        raise EdgenasError(f"val fraction must be in [0, 1), got {val_fraction}")
    if resolution is not None and resolution <= 0:
        raise EdgenasError(f"resolution must be > 0, got {resolution}")
    directory = resolve_dir(info, data_dir)
    raw = info.loader(directory, resolution)
    train_x, train_y, test_x, test_y = raw.train_x, raw.train_y, raw.test_x, raw.test_y
    if test_x is None or test_y is None:
        keep, held = stratified_split(train_y, info.test_fraction, seed=0)  # fixed across seeds
        train_x, train_y, test_x, test_y = train_x[keep], train_y[keep], train_x[held], train_y[held]
    if resolution is not None:
        train_x, test_x = resize_uint8(train_x, resolution), resize_uint8(test_x, resolution)
    keep, held = stratified_split(train_y, val_fraction, seed)
    val = Split(train_x[held], train_y[held])
    train = Split(train_x[keep], train_y[keep])
    if train_size is not None:
        if not 0 < train_size <= len(train):
            raise EdgenasError(
                f"train size {train_size:,} is out of range; give 1 to {len(train):,} for {name}"
            )
        _, sub = stratified_split(train.y, 0.0, seed + 1, count=train_size)
        train = Split(train.x[sub], train.y[sub])
    if info.mean is not None and info.std is not None:
        mean, std = info.mean, info.std
    else:
        mean, std = channel_stats(train.x)
    native = train.x.shape[1]
    channels = native if channels is None else channels
    if channels not in (native, 3) or (channels == 3 and native not in (1, 3)):
        raise EdgenasError(
            f"{name} has {native} channel(s) and cannot feed a {channels}-channel network; "
            "use a network with a 1- or 3-channel input"
        )
    if channels != native:
        mean, std = mean * channels, std * channels
    return Dataset(
        name, train, val, Split(test_x, test_y), raw.classes, tuple(mean), tuple(std),
        info.augment if augment is None else augment, channels,
    )


def resolve_dir(info: DatasetInfo, data_dir: str | Path | None) -> Path | None:
    if not info.needs_dir:
        return None if data_dir is None else Path(data_dir)
    if data_dir is None:
        if info.default_dir and Path(info.default_dir).is_dir():
            return Path(info.default_dir)
        where = f" (default {info.default_dir} is absent)" if info.default_dir else ""
        raise EdgenasError(f"dataset {info.name} needs a data directory{where}; pass --data-dir DIR")
    path = Path(data_dir)
    if not path.is_dir():
        raise EdgenasError(
            f"data directory {path} does not exist; pass the {info.name} directory to --data-dir"
        )
    return path

