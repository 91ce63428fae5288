"""Evaluators: arch -> metrics, chosen by name (``--estimator``) from a registry.

An evaluator is a picklable callable, since the runner sends it to worker processes or Ray
tasks. Each names the metric a search should maximise (``objective``). Accuracies are percent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from edgenas.errors import EdgenasError
from edgenas.spaces.base import Arch, get_space


class Evaluator(Protocol):
    objective: str

    def __call__(self, arch: Arch) -> dict[str, float]: ...


@dataclass
class TrainEvaluator:
    """Short-schedule training from scratch on a dataset; saves each trained model's weights."""

    space: str
    dataset: str = "digits"
    data_dir: str | None = None
    space_options: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields
    train_size: int | None = None
    weights_dir: str | None = None
    objective: ClassVar[str] = "val_accuracy"

    def __post_init__(self) -> None:
        self._data: dict[tuple[int, int], Any] = {}

    def __getstate__(self) -> dict[str, Any]:  # datasets are reloaded in each worker, not pickled
        return {k: v for k, v in self.__dict__.items() if k != "_data"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._data = {}

    def dataset_for(self, channels: int, resolution: int) -> Any:
        from edgenas.estimate.data import load_dataset

        key = (channels, resolution)
        if key not in self._data:
            self._data[key] = load_dataset(
                self.dataset, self.data_dir, resolution=resolution, channels=channels,
                train_size=self.train_size, seed=int(self.train.get("seed", 0)),
            )
        return self._data[key]

    def __call__(self, arch: Arch) -> dict[str, float]:
        import torch

        from edgenas.estimate.train import TrainConfig, train

        space = get_space(self.space, **self.space_options)
        channels, resolution, _ = space.input_shape(arch)
        data = self.dataset_for(channels, resolution)
        torch.manual_seed(int(self.train.get("seed", 0)))  # the same arch always starts alike
        model = space.build(arch, data.num_classes)
        result = train(model, data, TrainConfig.from_dict(self.train), progress=False)
        if self.weights_dir:
            Path(self.weights_dir).mkdir(parents=True, exist_ok=True)
            torch.save(model.state_dict(), Path(self.weights_dir) / f"{arch.id}.pt")
        return {
            "val_accuracy": 100 * float(result.best_val_acc or 0.0),
            "test_accuracy": 100 * float(result.test_acc or 0.0),
            "train_seconds": result.seconds,
        }


@dataclass
class ProxyEvaluator:
    """A zero-cost proxy at initialisation: seconds per arch instead of minutes."""

    space: str
    proxy: str = "synflow"
    source: str = "digits"
    num_classes: int = 10
    space_options: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    objective: ClassVar[str] = "proxy_score"

    def __post_init__(self) -> None:
        from edgenas.estimate.proxies import get_proxy

        get_proxy(self.proxy)  # unknown names fail before the search starts

    def __call__(self, arch: Arch) -> dict[str, float]:
        from edgenas.estimate.proxies import compute_proxy, proxy_batch

        space = get_space(self.space, **self.space_options)
        batch = proxy_batch(self.source, 64, space.input_shape(arch), self.num_classes, self.seed)
        model = space.build(arch, self.num_classes)
        return {"proxy_score": compute_proxy(self.proxy, model, batch, seed=self.seed)}


def _tabular(
    space: str, space_options: dict[str, Any], data: str | None = None, dataset: str = "cifar10", **_: Any
) -> Evaluator:
    from edgenas.estimate.tabular import NB201Evaluator

    if space != "nb201":
        raise EdgenasError(f"the tabular estimator has data for space nb201 only, not {space}; "
                           "use --estimator train or proxy")
    evaluator = NB201Evaluator(dataset, data)
    evaluator.objective = "val_accuracy"  # type: ignore[attr-defined]
    return evaluator  # type: ignore[return-value]


def _train(space: str, space_options: dict[str, Any], **options: Any) -> Evaluator:
    return TrainEvaluator(space, space_options=space_options, **options)


def _proxy(space: str, space_options: dict[str, Any], **options: Any) -> Evaluator:
    return ProxyEvaluator(space, space_options=space_options, **options)


def _supernet(space: str, space_options: dict[str, Any], **options: Any) -> Evaluator:
    """The supernet carries its own space options; the search must use the same ones."""
    from edgenas.supernet.evaluator import SupernetEvaluator

    return SupernetEvaluator(space=space, **options)


EVALUATORS: dict[str, Callable[..., Evaluator]] = {
    "train": _train, "proxy": _proxy, "tabular": _tabular, "supernet": _supernet,
}


def make_evaluator(
    name: str, space: str, space_options: dict[str, Any] | None = None, **options: Any
) -> Evaluator:
    """The evaluator ``name`` for archs of ``space`` built with ``space_options``."""
    if name not in EVALUATORS:
        raise EdgenasError(f"unknown estimator {name!r}; use one of {', '.join(EVALUATORS)}")
    return EVALUATORS[name](space, dict(space_options or {}), **options)
