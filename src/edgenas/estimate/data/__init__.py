"""Datasets held in memory: a registry of sources, seeded splits, a fast batch iterator.

``load_dataset("digits")`` works on any machine (scikit-learn's bundled digits);
``fashion-mnist``, ``cifar10`` and ``folder`` read files from a directory, never the network.
"""

from edgenas.estimate.data.base import (
    DATASETS,
    Augment,
    Dataset,
    DatasetInfo,
    RawData,
    Split,
    dataset_info,
    list_datasets,
    load_dataset,
    register_dataset,
    resolve_dir,
    stratified_split,
)
from edgenas.estimate.data.loader import BatchIterator
from edgenas.estimate.data.sources import read_cifar_batch, read_idx

__all__ = [
    "DATASETS", "Augment", "BatchIterator", "Dataset", "DatasetInfo", "RawData", "Split", "dataset_info",
    "list_datasets", "load_dataset", "read_cifar_batch", "read_idx", "register_dataset", "resolve_dir",
    "stratified_split",
]
