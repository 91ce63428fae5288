"""Small nn.Modules that torch lacks; each traces into one op spec of :mod:`edgenas.ops`."""

from __future__ import annotations

import torch
from torch import nn


class GlobalAvgPool(nn.Module):
    """Global average pooling; ``flatten`` returns (N, C) instead of (N, C, 1, 1)."""

    def __init__(self, flatten: bool = True) -> None:
        super().__init__()
        self.flatten = flatten

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean((2, 3), keepdim=not self.flatten)


class Zero(nn.Module):
    """The NAS 'none' op: zeros of the input's shape (keeps gradients flowing shape-wise)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)
