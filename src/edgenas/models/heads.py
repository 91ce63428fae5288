"""Network skeleton shared by the reference models: features -> global pool -> classifier."""

from __future__ import annotations

from edgenas.blocks.base import Block, seq
from edgenas.ops import Dropout, GlobalPool, Linear


def classifier_net(features: Block, channels: int, num_classes: int, dropout: float = 0.0) -> Block:
    """``features``, global average pool, then (dropout +) a linear classifier."""
    head = seq(Dropout(dropout), Linear(channels, num_classes)) if dropout else seq(
        Linear(channels, num_classes)
    )
    return seq(features, GlobalPool(flatten=True), head, names=("features", "pool", "classifier"))
