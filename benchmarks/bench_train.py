"""Trainer speed: the batch iterator against a DataLoader, NHWC against NCHW training steps.

Prints ratios against baselines measured in the same run (CPU time, one thread):
- one epoch of batches from :class:`BatchIterator` vs ``DataLoader(TensorDataset)`` with the
  same normalisation, on digits upsampled to 28x28 repeated to the size of Fashion-MNIST;
- training steps of a small MCUNet-space network with ``channels_last`` on vs off.
"""

from __future__ import annotations

import time

import torch
from torch.utils.data import DataLoader, TensorDataset

from edgenas.estimate.data import BatchIterator, Split, load_dataset
from edgenas.estimate.train import TrainConfig, train
from edgenas.spaces import get_space


def cpu_seconds(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def bench_batches() -> None:
    data = load_dataset("digits", resolution=28, val_fraction=0.0)
    reps = 60_000 // len(data.train) + 1
    x, y = data.train.x.repeat(reps, 1, 1, 1)[:60_000], data.train.y.repeat(reps)[:60_000]
    split = Split(x, y)
    mean, std = data.mean[0], data.std[0]

    def ours() -> None:
        for xb, _ in BatchIterator(split, 128, data.mean, data.std, shuffle=True, drop_last=True):
            xb.sum()

    def dataloader() -> None:
        loader = DataLoader(TensorDataset(x, y), batch_size=128, shuffle=True, drop_last=True)
        for xb, _ in loader:
            ((xb.float() / 255 - mean) / std).sum()

    base, fast = cpu_seconds(dataloader, 2), cpu_seconds(ours, 2)
    print(f"epoch of 60,000 images: DataLoader {base:.2f} s, BatchIterator {fast:.2f} s "
          f"-> {base / fast:.1f}x faster")


def bench_channels_last() -> None:
    space = get_space("mcunet", resolutions=[28], widths=[0.5], stages=[[24, 2, [2]], [40, 2, [2]]],
                      stem=16, first=8)
    arch = space.make({d.name: d.options[0] for d in space.dims()})
    data = load_dataset("digits", resolution=28, channels=3)

    def run(channels_last: bool) -> float:
        torch.manual_seed(0)
        model = space.build(arch, 10)
        config = TrainConfig(epochs=2, batch_size=64, channels_last=channels_last, threads=1)
        return cpu_seconds(lambda: train(model, data, config, progress=False), 1)

    base, fast = run(False), run(True)
    print(f"2 epochs, MCUNet-space net on 28x28: NCHW {base:.2f} s, NHWC {fast:.2f} s "
          f"-> {base / fast:.2f}x faster")


if __name__ == "__main__":
    torch.set_num_threads(1)
    bench_batches()
    bench_channels_last()
