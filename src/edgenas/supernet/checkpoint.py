"""What a supernet checkpoint records, and turning it back into a network and its data.

A checkpoint is an ordinary edgenas checkpoint (``save_checkpoint``; loaded with
``weights_only=True``) with ``kind: "supernet"`` and a :class:`SupernetSetup`: the space and
its options, the width, the class count and the data settings, so evaluating needs only the
file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from edgenas.errors import EdgenasError
from edgenas.estimate.data import Dataset, load_dataset
from edgenas.estimate.train import load_checkpoint, load_model_state
from edgenas.spaces.base import get_space
from edgenas.supernet.ofa import OFASupernet

KIND = "supernet"


@dataclass(frozen=True)
class SupernetSetup:
    """The network and data a supernet was trained on (JSON-able, stored in its checkpoint)."""

    space: str = "mcunet"
    space_options: dict[str, Any] = field(default_factory=dict)
    width: float | None = None  # None: the space's only width
    num_classes: int = 10
    dataset: str = "digits"
    data_dir: str | None = None
    train_size: int | None = None
    val_fraction: float = 0.1
    seed: int = 0  # data split seed
    kernel_transform: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SupernetSetup:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def build(self) -> OFASupernet:
        space = get_space(self.space, **self.space_options)
        return OFASupernet(space, self.num_classes, self.width, self.kernel_transform)

    def dataset_at(self, resolution: int, data_dir: str | None = None) -> Dataset:
        """The dataset at one input resolution, with the same seeded splits at every resolution."""
        return load_dataset(
            self.dataset, data_dir or self.data_dir, resolution=resolution, channels=3,
            val_fraction=self.val_fraction, seed=self.seed, train_size=self.train_size,
        )


def load_supernet_state(path: str | Path) -> dict[str, Any]:
    """A supernet checkpoint's contents (weights-only load); anything else is an EdgenasError."""
    state = load_checkpoint(path)
    if state.get("kind") != KIND or not isinstance(state.get("setup"), dict):
        raise EdgenasError(
            f"{path} is not a supernet checkpoint; give a file written by edgenas supernet train"
        )
    return state


def load_supernet(path: str | Path) -> tuple[OFASupernet, SupernetSetup, dict[str, Any]]:
    """(supernet with its trained weights, its setup, the raw checkpoint) from a file."""
    state = load_supernet_state(path)
    setup = SupernetSetup.from_dict(state["setup"])
    net = setup.build()
    load_model_state(net, state, path)
    net.set_active(net.max_values())
    return net, setup, state
