"""Network skeleton shared by the reference models: features -> global pool -> classifier."""

from __future__ import annotations

from edgenas.blocks.base import Block, seq
from edgenas.ops import Activation, Dropout, GlobalPool, Linear, Op


def classifier_net(features: Block, channels: int, num_classes: int, dropout: float = 0.0) -> Block:
    """``features``, global average pool, then (dropout +) a linear classifier."""
    head = seq(Dropout(dropout), Linear(channels, num_classes)) if dropout else seq(
        Linear(channels, num_classes)
    )
    return seq(features, GlobalPool(flatten=True), head, names=("features", "pool", "classifier"))


def mlp_classifier_net(features: Block, channels: int, hidden: int, num_classes: int,
                       act: str = "hardswish", dropout: float = 0.0) -> Block:
    """``features``, global pool, then linear -> act -> (dropout) -> linear (MobileNetV3's head)."""
    layers: list[Op] = [Linear(channels, hidden), Activation(act)]
    if dropout:
        layers.append(Dropout(dropout))
    layers.append(Linear(hidden, num_classes))
    return seq(features, GlobalPool(flatten=True), seq(*layers), names=("features", "pool", "classifier"))
