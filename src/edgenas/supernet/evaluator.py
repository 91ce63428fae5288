"""``--estimator supernet``: an arch's accuracy with weights inherited from a trained supernet.

Per arch: extract the subnet (exact copy of the supernet's active weights), recalibrate its
BatchNorm statistics on a few training batches at the arch's resolution, measure it on the
val split. A fraction of a second per arch instead of a training run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from edgenas.errors import EdgenasError
from edgenas.spaces.base import Arch


@dataclass
class SupernetEvaluator:
    """Picklable evaluator: the supernet and datasets are loaded lazily in each process."""

    checkpoint: str | None = None
    space: str | None = None  # the search's space; must be the supernet's
    dataset: str | None = None  # must be the one it was trained on (None: that one)
    data_dir: str | None = None  # overrides the checkpoint's
    bn_batches: int = 10
    batch_size: int = 64
    seed: int = 0
    test: bool = True  # also measure the test split (reported, never searched on)
    weights_dir: str | None = None  # save each recalibrated subnet's weights as ARCH_ID.pt
    objective: ClassVar[str] = "val_accuracy"

    def __post_init__(self) -> None:
        if not self.checkpoint:
            raise EdgenasError(
                "the supernet estimator needs a trained supernet: pass its checkpoint "
                "(edgenas supernet train --out supernet.pt writes one)"
            )
        if self.bn_batches < 1:
            raise EdgenasError(f"BN recalibration batches must be >= 1, got {self.bn_batches}")
        self._reset()
        net = self.supernet()  # a missing, corrupt or foreign file fails before the search starts
        if self.space is not None and self.space != net.space.name:
            raise EdgenasError(
                f"the supernet {self.checkpoint} is of space {net.space.name}, not {self.space}; "
                f"search with --space {net.space.name}"
            )
        if self.dataset is not None and self.dataset != self._setup.dataset:
            raise EdgenasError(
                f"the supernet {self.checkpoint} was trained on {self._setup.dataset}, not {self.dataset}; "
                f"pass --dataset {self._setup.dataset} or train a supernet on {self.dataset}"
            )

    def _reset(self) -> None:
        self._net: Any = None
        self._setup: Any = None
        self._data: dict[int, Any] = {}

    def __getstate__(self) -> dict[str, Any]:  # weights and datasets are reloaded in each worker
        return {k: v for k, v in self.__dict__.items() if k not in ("_net", "_setup", "_data")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset()

    def supernet(self) -> Any:
        if self._net is None:
            from edgenas.supernet.checkpoint import load_supernet

            self._net, self._setup, _ = load_supernet(self.checkpoint)  # type: ignore[arg-type]
            self._net.eval()
        return self._net

    def dataset_for(self, resolution: int) -> Any:
        if resolution not in self._data:
            self.supernet()
            self._data[resolution] = self._setup.dataset_at(resolution, self.data_dir)
        return self._data[resolution]

    def __call__(self, arch: Arch) -> dict[str, float]:
        import torch

        from edgenas.estimate.train import evaluate
        from edgenas.supernet.shrink import subnet_accuracy

        start = time.perf_counter()
        net = self.supernet()
        try:
            arch = net.check_arch(arch)
        except EdgenasError as e:
            raise EdgenasError(
                f"the supernet {self.checkpoint} has no subnet for this arch ({e}); search its space "
                "with the options it was trained with (edgenas supernet info)"
            ) from None
        data = self.dataset_for(int(arch["resolution"]))
        val, subnet = subnet_accuracy(net, arch, data, bn_batches=self.bn_batches,
                                      batch_size=self.batch_size, seed=self.seed)
        metrics = {"val_accuracy": 100 * val}
        if self.test and len(data.test):
            metrics["test_accuracy"] = 100 * evaluate(subnet, data, "test")
        if self.weights_dir:
            Path(self.weights_dir).mkdir(parents=True, exist_ok=True)
            torch.save(subnet.state_dict(), Path(self.weights_dir) / f"{arch.id}.pt")
        metrics["eval_seconds"] = time.perf_counter() - start
        return metrics
