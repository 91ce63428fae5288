"""Elastic layers (Once-for-All, Cai et al. 2020): one set of weights, many sub-layers.

:class:`ElasticMBConv` holds the largest MBConv of a block (largest kernel, largest expand
ratio) under the SAME module names as ``mbconv(...).build()``, so its weights map onto any
smaller static block by name. The active kernel and expand ratio pick a sub-layer:

- kernel: OFA's kernel transformation. The 5x5 kernel is the centre 5x5 of the 7x7 one
  times a learned 25x25 matrix, shared by all channels of the layer; the 3x3 kernel is the
  centre of that 5x5 times a 9x9 matrix. Matrices start as the identity (plain centre crop);
  ``kernel_transform=False`` keeps plain centre cropping.
- expand ratio: the first ``round(cin * e)`` hidden channels of the 1x1 expand conv, the
  depthwise conv and the 1x1 projection (and of their BatchNorms). :meth:`sort_channels`
  reorders hidden channels by importance (L1 norm of the projection's input weights) so the
  first channels are the most important ones, as OFA does before elastic-width training.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from edgenas.blocks import mbconv
from edgenas.errors import EdgenasError


def elastic_batch_norm(x: torch.Tensor, bn: nn.BatchNorm2d, channels: int) -> torch.Tensor:
    """``bn`` on its first ``channels`` features, updating those running statistics in place."""
    if channels == bn.num_features:
        return bn(x)
    factor = 0.0
    if bn.training and bn.track_running_stats and bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
        factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
    use_batch = bn.training or bn.running_mean is None
    return F.batch_norm(
        x,
        None if bn.running_mean is None else bn.running_mean[:channels],
        None if bn.running_var is None else bn.running_var[:channels],
        None if bn.weight is None else bn.weight[:channels],
        None if bn.bias is None else bn.bias[:channels],
        use_batch, factor, bn.eps,
    )


class ElasticMBConv(nn.Module):
    """An MBConv block with an elastic kernel size and expand ratio (set by :meth:`set_active`)."""

    def __init__(self, cin: int, cout: int, stride: int, kernels: Sequence[int], expands: Sequence[int],
                 act: str = "relu6", kernel_transform: bool = True) -> None:
        super().__init__()
        self.kernels = tuple(sorted({int(k) for k in kernels}))
        self.expands = tuple(sorted({int(e) for e in expands}))
        if any(k % 2 == 0 for k in self.kernels):
            raise EdgenasError(f"elastic kernels must be odd, got {self.kernels}; use kernels like [3, 5, 7]")
        if min(self.expands) <= 1:
            raise EdgenasError(
                f"elastic expand ratios must be > 1 (an expand-1 MBConv has no expand conv to slice), "
                f"got {self.expands}; use expands like [3, 4, 6]"
            )
        self.cin, self.cout, self.stride = cin, cout, stride
        self.residual = stride == 1 and cin == cout
        largest = mbconv(cin, cout, stride, max(self.expands), max(self.kernels), act).build()
        for name, child in largest.named_children():  # same names as the static block
            self.add_module(name, child)
        body = largest.body if self.residual else largest  # type: ignore[union-attr]
        self._layers: tuple[nn.Sequential, nn.Sequential, nn.Sequential] = (body[0], body[1], body[2])
        self.prefix = "body." if self.residual else ""
        self.kernel_transform = kernel_transform
        if kernel_transform:
            for big, small in zip(self.kernels[::-1], self.kernels[-2::-1], strict=False):
                self.register_parameter(f"transform_{big}to{small}", nn.Parameter(torch.eye(small * small)))
        self.active = (max(self.kernels), max(self.expands))

    def hidden(self, expand: int) -> int:
        """Hidden channels at an expand ratio, as ``mbconv`` computes them."""
        return round(self.cin * expand)

    def set_active(self, kernel: int, expand: int) -> None:
        if kernel not in self.kernels or expand not in self.expands:
            raise EdgenasError(
                f"kernel {kernel} / expand {expand} is not an option of this elastic block "
                f"(kernels {list(self.kernels)}, expands {list(self.expands)})"
            )
        self.active = (kernel, expand)

    @property
    def depthwise_name(self) -> str:
        """State-dict name of the depthwise weight (the one tensor extraction transforms)."""
        return f"{self.prefix}1.0.weight"

    def active_kernel(self, kernel: int, channels: int | None = None) -> torch.Tensor:
        """Depthwise weight ``(channels, 1, kernel, kernel)``: centre crops, transformed when enabled."""
        weight = self._layers[1][0].weight
        if channels is not None:
            weight = weight[:channels]
        size = weight.shape[-1]
        if kernel == size:
            return weight
        if not self.kernel_transform:
            start = (size - kernel) // 2
            return weight[:, :, start:start + kernel, start:start + kernel]
        for big, small in zip(self.kernels[::-1], self.kernels[-2::-1], strict=False):
            if big <= kernel:
                break
            start = (big - small) // 2
            crop = weight[:, :, start:start + small, start:start + small].reshape(-1, small * small)
            matrix = getattr(self, f"transform_{big}to{small}")
            weight = F.linear(crop, matrix).reshape(weight.shape[0], weight.shape[1], small, small)
        return weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel, expand = self.active
        h = self.hidden(expand)
        expand_layer, depthwise, project = self._layers
        y = F.conv2d(x, expand_layer[0].weight[:h])
        y = expand_layer[2](elastic_batch_norm(y, expand_layer[1], h))
        y = F.conv2d(y, self.active_kernel(kernel, h), None, self.stride, kernel // 2, 1, h)
        y = depthwise[2](elastic_batch_norm(y, depthwise[1], h))
        y = project[1](F.conv2d(y, project[0].weight[:, :h]))
        return y + x if self.residual else y

    @torch.no_grad()
    def sort_channels(self) -> torch.Tensor:
        """Reorder hidden channels by decreasing importance; the largest block's function is unchanged.

        Returns the permutation applied (new channel i is old channel ``order[i]``).
        """
        expand_layer, depthwise, project = self._layers
        importance = project[0].weight.abs().sum(dim=(0, 2, 3))
        order = torch.sort(importance, descending=True, stable=True).indices
        project[0].weight.copy_(project[0].weight[:, order])
        depthwise[0].weight.copy_(depthwise[0].weight[order])
        expand_layer[0].weight.copy_(expand_layer[0].weight[order])
        for bn in (expand_layer[1], depthwise[1]):
            for tensor in (bn.weight, bn.bias, bn.running_mean, bn.running_var):
                if tensor is not None:
                    tensor.copy_(tensor[order])
        return order
