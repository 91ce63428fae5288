"""Multi-branch building pieces: parallel branches joined by concat, channel slices, shuffles.

Each is a block spec whose module is traced by the profiler into exactly the ops its
``emit`` writes: slices and shuffles are views (no buffer, no cost), the join is a Concat.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from edgenas.blocks.base import Block, join
from edgenas.errors import EdgenasError
from edgenas.ops import Activation, Concat, LayerGraph, View


class _ParallelModule(nn.Module):
    def __init__(self, branches: tuple[tuple[str, nn.Module], ...], act: nn.Module | None) -> None:
        super().__init__()
        self.names = [n for n, _ in branches]
        for n, m in branches:
            self.add_module(n, m)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.cat([getattr(self, n)(x) for n in self.names], 1)
        return out if self.act is None else self.act(out)


@dataclass(frozen=True, slots=True)
class Parallel:
    """``act(cat([branch(x) for branch in branches], channels))``, branches run in order."""

    branches: tuple[tuple[str, Block], ...]
    act: str | None = None

    def build(self) -> nn.Module:
        return _ParallelModule(
            tuple((n, b.build()) for n, b in self.branches),
            None if self.act is None else Activation(self.act).to_module(),
        )

    def emit(self, g: LayerGraph, x: str, name: str) -> str:
        outs = [b.emit(g, x, join(name, n)) for n, b in self.branches]
        y = g.add(join(name, "cat"), Concat(), *outs)
        return y if self.act is None else g.add(join(name, "act"), Activation(self.act))


class _SliceModule(nn.Module):
    def __init__(self, start: int, stop: int) -> None:
        super().__init__()
        self.start, self.stop = start, stop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, self.start : self.stop]


@dataclass(frozen=True, slots=True)
class ChannelSlice:
    """Channels ``[start, stop)`` of the input: the channel split of ShuffleNetV2 (a view)."""

    start: int
    stop: int

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.stop:
            raise EdgenasError(f"channel slice [{self.start}, {self.stop}) is empty; need start < stop")

    def build(self) -> nn.Module:
        return _SliceModule(self.start, self.stop)

    def emit(self, g: LayerGraph, x: str, name: str) -> str:
        if g.shape(x)[0] < self.stop:
            raise EdgenasError(
                f"channel slice [{self.start}, {self.stop}) of {name!r} exceeds the {g.shape(x)[0]} "
                "input channels; slice within the input"
            )
        return g.add(name, View(channels=(self.start, self.stop)), x)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's shuffle: view (N, g, C/g, H, W), swap the two channel axes, flatten back.

    Output channel ``i`` is input channel ``(i % g) * (C // g) + i // g``: consecutive
    outputs cycle through the ``g`` groups, so output channel ``i`` comes from group ``i % g``.
    Written with ``size(i)`` instead of tuple-unpacking so that torch.fx can trace it.
    """
    return x.reshape(x.size(0), groups, -1, x.size(2), x.size(3)).transpose(1, 2).flatten(1, 2)


class ChannelShuffleModule(nn.Module):
    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return channel_shuffle(x, self.groups)


@dataclass(frozen=True, slots=True)
class ChannelShuffle:
    """Channel shuffle with ``groups`` groups: a permutation, so a zero-cost view."""

    groups: int

    def build(self) -> nn.Module:
        return ChannelShuffleModule(self.groups)

    def emit(self, g: LayerGraph, x: str, name: str) -> str:
        shape = g.shape(x)
        if shape[0] % self.groups:
            raise EdgenasError(
                f"channel shuffle of {name!r}: {self.groups} groups do not divide {shape[0]} channels; "
                "pick a divisor"
            )
        return g.add(name, View(shape=shape), x)
