"""Datasets: real Fashion-MNIST counts, file-format checks on synthetic files, splits, batches."""

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from edgenas.errors import EdgenasError
from edgenas.estimate.data import Augment, Split, list_datasets, load_dataset, read_idx
from edgenas.estimate.data.loader import BatchIterator, random_crop

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
needs_fashion = pytest.mark.skipif(
    not FASHION_DIR.is_dir(), reason="install Debian's dataset-fashion-mnist package"
)


# --- digits -----------------------------------------------------------------------------------
def test_digits_splits_are_stratified_seeded_and_test_is_fixed():
    a = load_dataset("digits", seed=0)
    b = load_dataset("digits", seed=1)
    assert len(a.train) + len(a.val) + len(a.test) == 1797  # scikit-learn's bundled set
    assert a.input_shape == (1, 8, 8) and a.num_classes == 10
    assert a.train.x.dtype == torch.uint8 and int(a.train.x.max()) == 255  # 16 -> 255
    # the held-out test set does not move with the seed, the validation split does
    assert torch.equal(a.test.x, b.test.x) and torch.equal(a.test.y, b.test.y)
    assert not torch.equal(a.val.y, b.val.y) or not torch.equal(a.val.x, b.val.x)
    assert torch.equal(load_dataset("digits", seed=0).val.x, a.val.x)
    # 20% test and 10% val of each class (digits has 174..183 images per class)
    counts = np.bincount(torch.cat([a.train.y, a.val.y, a.test.y]).numpy())
    assert a.test.class_counts(10) == [round(0.2 * c) for c in counts]
    assert sum(a.val.class_counts(10)) == sum(round(0.1 * (c - round(0.2 * c))) for c in counts)


def test_digits_upsampled_and_normalised_batches():
    data = load_dataset("digits", resolution=16)
    assert data.input_shape == (1, 16, 16)
    x = torch.cat([x for x, _ in data.loader("train", 256, shuffle=False, drop_last=False)])
    assert x.shape == (len(data.train), 1, 16, 16)
    # mean/std were measured on the training split, so normalised training pixels are standard
    assert abs(float(x.mean())) < 1e-4 and abs(float(x.std()) - 1) < 1e-3
    rgb = load_dataset("digits", channels=3)
    xb, _ = next(iter(rgb.loader("test", 8)))
    assert xb.shape == (8, 3, 8, 8) and torch.equal(xb[:, 0], xb[:, 2])


def test_train_size_keeps_a_stratified_subset():
    full = load_dataset("digits", seed=3)
    data = load_dataset("digits", train_size=500, seed=3)
    assert len(data.train) == 500
    share = [500 * n / len(full.train) for n in full.train.class_counts(10)]  # proportional quotas
    assert all(int(q) <= n <= int(q) + 1 for q, n in zip(share, data.train.class_counts(10), strict=True))
    assert torch.equal(data.val.x, full.val.x)  # the subset is taken after the validation split
    with pytest.raises(EdgenasError, match="train size 5,000 is out of range"):
        load_dataset("digits", train_size=5000)


# --- Fashion-MNIST (the real files) ------------------------------------------------------------
@needs_fashion
def test_fashion_mnist_real_files_counts_and_labels():
    data = load_dataset("fashion-mnist", val_fraction=0.0)
    assert data.train.x.shape == (60_000, 1, 28, 28) and data.test.x.shape == (10_000, 1, 28, 28)
    assert data.train.class_counts(10) == [6_000] * 10
    assert data.test.class_counts(10) == [1_000] * 10
    assert data.classes[9] == "Ankle boot"
    # published: the first training image is an ankle boot, the first test image too
    raw = read_idx(FASHION_DIR / "train-labels-idx1-ubyte.gz")
    assert raw[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert read_idx(FASHION_DIR / "t10k-labels-idx1-ubyte.gz")[0] == 9
    # the published per-pixel mean of the training set, 0.2860
    assert abs(float(data.train.x.double().mean()) / 255 - 0.2860) < 5e-4


@needs_fashion
def test_fashion_mnist_val_split_and_resolution():
    data = load_dataset("fashion-mnist", resolution=16, seed=0)
    assert len(data.train) == 54_000 and len(data.val) == 6_000 and len(data.test) == 10_000
    assert data.val.class_counts(10) == [600] * 10
    assert data.input_shape == (1, 16, 16)


# --- idx format on synthetic files ---------------------------------------------------------
def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> Path:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def fake_mnist_dir(root: Path, n_train: int = 40, n_test: int = 20, compress: bool = True) -> Path:
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(root / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)), compress)
        write_idx(root / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10, compress)
    return root


@pytest.mark.parametrize("compress", [True, False])
def test_idx_round_trip(tmp_path, compress):
    array = np.arange(2 * 3 * 4).reshape(2, 3, 4) % 256
    path = write_idx(tmp_path / "x-idx3-ubyte", array, compress)
    assert np.array_equal(read_idx(path), array)
    data = load_dataset("fashion-mnist", fake_mnist_dir(tmp_path, compress=compress), val_fraction=0.0)
    assert len(data.train) == 40 and len(data.test) == 20 and data.train.class_counts(10) == [4] * 10


def test_idx_errors_name_the_file_and_the_fix(tmp_path):
    fake_mnist_dir(tmp_path)
    bad = tmp_path / "train-images-idx3-ubyte.gz"
    bad.write_bytes(gzip.compress(b"\x12\x34\x56\x78" + bytes(100)))
    with pytest.raises(EdgenasError, match=r"ubyte\.gz is not an idx file \(magic number 12345678\)"):
        load_dataset("fashion-mnist", tmp_path)
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((40, 28, 28)))
    labels = tmp_path / "train-labels-idx1-ubyte.gz"
    labels.write_bytes(gzip.compress(gzip.decompress(labels.read_bytes())[:-5]))  # 5 labels short
    with pytest.raises(EdgenasError, match=r"has 43 bytes but its header \(40,\) needs 48.*download it"):
        load_dataset("fashion-mnist", tmp_path)
    labels.write_bytes(labels.read_bytes()[:30])  # a cut-off gzip stream
    with pytest.raises(EdgenasError, match="unreadable or truncated"):
        load_dataset("fashion-mnist", tmp_path)
    labels.unlink()
    with pytest.raises(EdgenasError, match=r"has no train-labels-idx1-ubyte\(.gz\)"):
        load_dataset("fashion-mnist", tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(39))
    with pytest.raises(EdgenasError, match=r"\(39,\) labels for 40 images"):
        load_dataset("fashion-mnist", tmp_path)


def test_unknown_dataset_and_missing_dir():
    with pytest.raises(EdgenasError, match="unknown dataset 'mnits'; known datasets: cifar10, digits, "
                                           "fashion-mnist, folder"):
        load_dataset("mnits")
    with pytest.raises(EdgenasError, match="data directory /no/such/dir does not exist"):
        load_dataset("cifar10", "/no/such/dir")
    with pytest.raises(EdgenasError, match="needs a data directory; pass --data-dir"):
        load_dataset("folder")
    assert {d.name for d in list_datasets()} >= {"digits", "fashion-mnist", "cifar10", "folder"}


# --- CIFAR-10 binary format on synthetic files -------------------------------------------------
def write_cifar(root: Path, per_batch: int = 10) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    records = {}
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        rec = np.zeros((per_batch, 3073), np.uint8)
        rec[:, 0] = rng.integers(0, 10, per_batch)
        rec[:, 1:] = rng.integers(0, 256, (per_batch, 3072))
        (root / name).write_bytes(rec.tobytes())
        records[name] = rec
    return records


def test_cifar10_binary_records(tmp_path):
    records = write_cifar(tmp_path)
    data = load_dataset("cifar10", tmp_path, val_fraction=0.0)
    assert data.train.x.shape == (50, 3, 32, 32) and data.test.x.shape == (10, 3, 32, 32)
    assert data.augment == Augment(crop_padding=4, hflip=True)
    test = records["test_batch.bin"]
    assert data.test.y.tolist() == test[:, 0].tolist()
    # record layout: 1,024 red bytes, then green, then blue, each row-major 32x32
    first = data.test.x[0]
    assert int(first[0, 0, 1]) == test[0, 2] and int(first[1, 0, 0]) == test[0, 1 + 1024]
    assert int(first[2, 31, 31]) == test[0, 3072]
    stacked = np.concatenate([records[f"data_batch_{i}.bin"][:, 0] for i in range(1, 6)])
    assert sorted(data.train.y.tolist()) == sorted(stacked.tolist())


def test_cifar10_truncated_and_missing_batches(tmp_path):
    write_cifar(tmp_path)
    path = tmp_path / "data_batch_3.bin"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(EdgenasError, match=r"batch_3\.bin has 30,630 bytes, not a multiple of the 3,073"):
        load_dataset("cifar10", tmp_path)
    (tmp_path / "test_batch.bin").unlink()
    path.unlink()
    with pytest.raises(EdgenasError, match=r"data_batch_3\.bin is missing"):
        load_dataset("cifar10", tmp_path)


# --- image folders ------------------------------------------------------------------------
COLOURS = {"blue": (0, 0, 255), "green": (0, 255, 0), "red": (255, 0, 0)}


def write_folder(root: Path, per_class: int = 10, size: int = 20, gray: bool = False) -> None:
    for name, rgb in COLOURS.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            im = Image.new("RGB", (size, size + i), rgb)
            im = im.convert("L") if gray else im
            im.save(root / name / f"{i}.{'png' if i % 2 else 'jpg'}")


def test_folder_of_images_resized_labelled_by_sorted_class_names(tmp_path):
    write_folder(tmp_path)
    data = load_dataset("folder", tmp_path, resolution=12, val_fraction=0.0)
    assert data.classes == ("blue", "green", "red")
    assert data.input_shape == (3, 12, 12)
    assert len(data.train) + len(data.test) == 30 and data.test.class_counts(3) == [2, 2, 2]
    for x, y in ((data.train.x, data.train.y), (data.test.x, data.test.y)):
        means = x.double().mean((2, 3))  # per image, per channel
        channel = {0: 2, 1: 1, 2: 0}  # blue, green, red
        assert all(int(means[i].argmax()) == channel[int(y[i])] for i in range(len(y)))
        assert float(means.max()) > 250


def test_folder_train_test_subtrees_gray_and_errors(tmp_path):
    write_folder(tmp_path / "train", per_class=4, gray=True)
    write_folder(tmp_path / "test", per_class=2, gray=True)
    data = load_dataset("folder", tmp_path, resolution=8, val_fraction=0.0)
    assert data.input_shape == (1, 8, 8) and len(data.train) == 12 and len(data.test) == 6
    (tmp_path / "test" / "red" / "bad.png").write_bytes(b"not a png")
    with pytest.raises(EdgenasError, match=r"bad.png is not a readable image .*delete or replace it"):
        load_dataset("folder", tmp_path)
    (tmp_path / "solo" / "only").mkdir(parents=True)
    with pytest.raises(EdgenasError, match="has 1 class folder"):
        load_dataset("folder", tmp_path / "solo")


# --- batches and augmentation --------------------------------------------------------------
def test_batch_iterator_covers_every_image_once_and_reshuffles_per_epoch():
    split = Split(torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1).expand(10, 1, 2, 2).clone(),
                  torch.arange(10))
    it = BatchIterator(split, 4, (0.0,), (1 / 255,), shuffle=True, seed=5, drop_last=True)
    assert len(it) == 2
    epoch0 = torch.cat([y for _, y in it])
    epoch1 = torch.cat([y for _, y in it])
    assert len(epoch0) == 8 and len(set(epoch0.tolist())) == 8 and not torch.equal(epoch0, epoch1)
    again = BatchIterator(split, 4, (0.0,), (1 / 255,), shuffle=True, seed=5, drop_last=True)
    assert torch.equal(torch.cat([y for _, y in again]), epoch0)
    full = BatchIterator(split, 4, (0.0,), (1 / 255,))
    xs, ys = zip(*full, strict=True)
    assert len(xs) == 3 and torch.equal(torch.cat(ys), torch.arange(10))
    assert torch.equal(torch.cat(xs)[:, 0, 0, 0], torch.arange(10, dtype=torch.float32))  # raw pixel values


def test_random_crop_is_a_window_of_the_padded_image():
    x = torch.randn(6, 2, 5, 5)
    gen = torch.Generator().manual_seed(0)
    out = random_crop(x, 2, gen)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(6):
        windows = [(dy, dx) for dy in range(5) for dx in range(5)
                   if torch.equal(out[i], padded[i, :, dy:dy + 5, dx:dx + 5])]
        assert windows
    assert not all(torch.equal(out[i], x[i]) for i in range(6))


def test_augmented_batches_are_flipped_or_shifted_copies():
    data = load_dataset("digits", augment=Augment(hflip=True))
    plain = next(iter(data.loader("train", 64, augment=False, shuffle=False)))[0]
    flipped = next(iter(data.loader("train", 64, shuffle=False)))[0]
    same = [torch.equal(a, b) for a, b in zip(plain, flipped, strict=True)]
    mirrored = [torch.equal(a.flip(2), b) for a, b in zip(plain, flipped, strict=True)]
    assert all(s or m for s, m in zip(same, mirrored, strict=True))
    assert 10 < sum(mirrored) < 54
