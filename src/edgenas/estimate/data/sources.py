"""Dataset sources: readers for the bundled digits, idx files, CIFAR binaries, image folders.

Each reader checks its files as it reads them (magic numbers, sizes, counts) so a truncated
download fails with the file's name and the fix, not with a reshape error deep in numpy.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from edgenas.errors import EdgenasError
from edgenas.estimate.data.base import Augment, RawData, register_dataset

FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
    "Ankle boot",
)
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


# --- digits ---------------------------------------------------------------------------------
@register_dataset("digits", "scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes)",
                  needs_dir=False, test_fraction=0.2, resolution=16)
def load_digits(data_dir: Path | None = None, resolution: int | None = None) -> RawData:
    """Pixel values 0..16 scaled to 0..255; no official test split (a fixed 20% is held out)."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    return RawData(torch.from_numpy(images), torch.from_numpy(bunch.target.astype(np.int64)), None, None,
                   tuple(str(i) for i in range(10)))


# --- idx (MNIST format) ---------------------------------------------------------------------
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
              0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as e:
        raise EdgenasError(f"{path} is unreadable or truncated ({e}); download the file again") from None


def read_idx(path: Path) -> np.ndarray:
    """An idx array (``0 0 type ndim`` magic, big-endian int32 dims, then the data)."""
    data = _read_bytes(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES or not 1 <= data[3] <= 4:
        magic = data[:4].hex() or "empty"
        raise EdgenasError(
            f"{path} is not an idx file (magic number {magic}); use the original idx(.gz) file"
        )
    dtype, ndim = np.dtype(_IDX_TYPES[data[2]]), data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise EdgenasError(f"{path} is truncated inside its header; download the file again")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = header + int(np.prod(dims)) * dtype.itemsize
    if len(data) != expected:
        raise EdgenasError(
            f"{path} has {len(data):,} bytes but its header {dims} needs {expected:,}; "
            "the file is truncated or corrupt, download it again"
        )
    return np.frombuffer(data, dtype, offset=header).reshape(dims)


def _find(directory: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (directory / name).is_file():
            return directory / name
    raise EdgenasError(f"{directory} has no {stem}(.gz); put the idx files there or pass another --data-dir")


def _idx_pair(directory: Path, prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
    images_path = _find(directory, f"{prefix}-images-idx3-ubyte")
    labels_path = _find(directory, f"{prefix}-labels-idx1-ubyte")
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise EdgenasError(
            f"{images_path} must hold uint8 images (N, H, W), got {images.dtype} {images.shape}; "
            "use the original idx file"
        )
    if labels.ndim != 1 or len(labels) != len(images):
        raise EdgenasError(
            f"{labels_path} has {labels.shape} labels for {len(images):,} images in {images_path.name}; "
            "use the matching pair of files"
        )
    return torch.from_numpy(images.copy())[:, None], torch.from_numpy(labels.astype(np.int64))


@register_dataset("fashion-mnist", "Zalando's 28x28 grayscale clothing images (60,000 + 10,000, 10 classes)",
                  default_dir="/usr/share/datasets/fashion-mnist", mean=(0.2860,), std=(0.3530,),
                  resolution=28)
def load_fashion_mnist(data_dir: Path, resolution: int | None = None) -> RawData:
    """The four standard idx files (``train-images-idx3-ubyte.gz`` ...), gzipped or not."""
    train_x, train_y = _idx_pair(data_dir, "train")
    test_x, test_y = _idx_pair(data_dir, "t10k")
    _check_labels(train_y, 10, data_dir)
    _check_labels(test_y, 10, data_dir)
    return RawData(train_x, train_y, test_x, test_y, FASHION_CLASSES)


def _check_labels(y: torch.Tensor, num_classes: int, where: Path) -> None:
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise EdgenasError(f"labels in {where} fall outside 0..{num_classes - 1}; the files are corrupt")


# --- CIFAR-10 binary version ----------------------------------------------------------------
CIFAR_RECORD = 1 + 3 * 32 * 32


def read_cifar_batch(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Records of 1 label byte + 3,072 pixel bytes (R, G, B planes of 32x32)."""
    if not path.is_file():
        raise EdgenasError(
            f"{path} is missing; --data-dir must hold CIFAR-10's data_batch_1..5.bin and test_batch.bin"
        )
    data = path.read_bytes()
    if not data or len(data) % CIFAR_RECORD:
        raise EdgenasError(
            f"{path} has {len(data):,} bytes, not a multiple of the {CIFAR_RECORD:,}-byte record; "
            "the file is truncated, download the binary version again"
        )
    records = np.frombuffer(data, np.uint8).reshape(-1, CIFAR_RECORD)
    labels = torch.from_numpy(records[:, 0].astype(np.int64))
    images = torch.from_numpy(records[:, 1:].reshape(-1, 3, 32, 32).copy())
    _check_labels(labels, 10, path)
    return images, labels


@register_dataset("cifar10", "CIFAR-10 binary version: 32x32 colour images (50,000 + 10,000, 10 classes)",
                  mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616),
                  augment=Augment(crop_padding=4, hflip=True))
def load_cifar10(data_dir: Path, resolution: int | None = None) -> RawData:
    """``data_batch_1.bin`` .. ``data_batch_5.bin`` and ``test_batch.bin`` (also in cifar-10-batches-bin/)."""
    if not (data_dir / "test_batch.bin").exists() and (data_dir / "cifar-10-batches-bin").is_dir():
        data_dir = data_dir / "cifar-10-batches-bin"
    parts = [read_cifar_batch(data_dir / f"data_batch_{i}.bin") for i in range(1, 6)]
    test_x, test_y = read_cifar_batch(data_dir / "test_batch.bin")
    return RawData(torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]), test_x, test_y,
                   CIFAR10_CLASSES)


# --- class-per-directory image folder -------------------------------------------------------
def _class_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


_GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")


def _read_folder(root: Path, classes: tuple[str, ...], resolution: int) -> tuple[list[np.ndarray], list[int]]:
    """Images as HxW (grayscale) or HxWx3 uint8 arrays, with their class indices."""
    from PIL import Image, UnidentifiedImageError

    images, labels = [], []
    for label, name in enumerate(classes):
        directory = root / name
        files = sorted(p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        for path in files:
            try:
                with Image.open(path) as im:
                    im = im.convert("L" if im.mode in _GRAY_MODES else "RGB")
                    im = im.resize((resolution, resolution), Image.Resampling.BILINEAR)
                    images.append(np.asarray(im, dtype=np.uint8))
            except (OSError, UnidentifiedImageError) as e:
                raise EdgenasError(f"{path} is not a readable image ({e}); delete or replace it") from None
            labels.append(label)
    if not images:
        raise EdgenasError(
            f"{root} holds no images ({', '.join(IMAGE_SUFFIXES)}) in class folders; check --data-dir"
        )
    return images, labels


def _stack(images: list[np.ndarray], labels: list[int], rgb: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, C, H, W): grayscale images are repeated to 3 channels when any image is colour."""
    if rgb:
        images = [np.repeat(im[..., None], 3, axis=2) if im.ndim == 2 else im for im in images]
    arr = np.stack(images)
    arr = arr.transpose(0, 3, 1, 2) if rgb else arr[:, None]
    return torch.from_numpy(np.ascontiguousarray(arr)), torch.tensor(labels, dtype=torch.int64)


@register_dataset("folder", "any class-per-directory tree of PNG/JPEG images (DIR/class/*.png, "
                  "or DIR/train/class and DIR/test/class)", augment=Augment(crop_padding=4, hflip=True))
def load_folder(data_dir: Path, resolution: int | None = None) -> RawData:
    """Images resized to ``resolution`` (default 32) with Pillow; grayscale if every image is.

    With ``train/`` and ``test/`` sub-trees their split is used, else a fixed 20% is held out.
    """
    resolution = resolution or 32
    train_root = data_dir / "train" if (data_dir / "train").is_dir() else data_dir
    test_root = data_dir / "test" if (data_dir / "test").is_dir() else None
    classes = tuple(p.name for p in _class_dirs(train_root))
    if len(classes) < 2:
        raise EdgenasError(
            f"{train_root} has {len(classes)} class folder(s); put each class's images in its own sub-folder"
        )
    train = _read_folder(train_root, classes, resolution)
    test = None
    if test_root is not None:
        extra = sorted({p.name for p in _class_dirs(test_root)} - set(classes))
        if extra:
            raise EdgenasError(
                f"{test_root} has classes {extra} missing from {train_root}; use the same class folders"
            )
        test = _read_folder(test_root, classes, resolution)
    rgb = any(im.ndim == 3 for part in (train, test) if part is not None for im in part[0])
    train_x, train_y = _stack(*train, rgb)
    if test is None:
        return RawData(train_x, train_y, None, None, classes)
    test_x, test_y = _stack(*test, rgb)
    return RawData(train_x, train_y, test_x, test_y, classes)
