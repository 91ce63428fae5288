"""Primitive operation specs and their exact cost formulas.

An op spec is a small frozen dataclass: it knows its parameter count, its MACs and the
shape of its output, without building any torch module. Shapes exclude the batch dimension:
``(C, H, W)`` for feature maps, ``(F,)`` for vectors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from edgenas.errors import EdgenasError

if TYPE_CHECKING:
    from torch import nn

Shape = tuple[int, ...]


def numel(shape: Shape) -> int:
    return math.prod(shape)


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _conv_out(size: int, k: int, s: int, p: int, d: int = 1, ceil: bool = False) -> int:
    span = size + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil else span // s) + 1
    if ceil and (out - 1) * s >= size + p:  # PyTorch drops a window that starts in the padding
        out -= 1
    return out


class Op:
    """Base of every op spec: defaults for an op with no parameters and no MACs."""

    kind: ClassVar[str] = "op"
    #: a fused/in-place op whose output shares memory with its first input (BN, ReLU, view)
    aliases_input: ClassVar[bool] = False

    def infer(self, inputs: list[Shape]) -> Shape:
        return inputs[0]

    def params(self) -> int:
        return 0

    def weights(self) -> int:
        """Weight elements stored in flash (conv/linear kernels)."""
        return 0

    def biases(self) -> int:
        return 0

    def macs(self, inputs: list[Shape], out: Shape) -> int:
        """Multiply-accumulates of convolutions and linear layers only."""
        return 0

    def other_ops(self, inputs: list[Shape], out: Shape) -> int:
        """Operations counted only with ``all_ops`` (BN, activations, pooling, adds)."""
        return 0

    def to_module(self) -> nn.Module:
        raise NotImplementedError(f"{type(self).__name__} has no module form")


def _check_channels(name: str, value: int) -> None:
    if value <= 0:
        raise EdgenasError(f"{name} must be a positive integer, got {value}")


@dataclass(frozen=True, slots=True)
class Conv2d(Op):
    """Convolution; ``groups`` covers standard (1), grouped and depthwise (= in_channels)."""

    in_channels: int
    out_channels: int
    kernel_size: int | tuple[int, int] = 3
    stride: int | tuple[int, int] = 1
    padding: int | tuple[int, int] | None = None  # None: "same"-style k//2 (times dilation)
    groups: int = 1
    bias: bool = False
    dilation: int = 1
    kind: ClassVar[str] = "conv"

    def __post_init__(self) -> None:
        _check_channels("in_channels", self.in_channels)
        _check_channels("out_channels", self.out_channels)
        if self.groups <= 0 or self.in_channels % self.groups or self.out_channels % self.groups:
            raise EdgenasError(
                f"groups={self.groups} must divide in_channels={self.in_channels} and "
                f"out_channels={self.out_channels}; pick a common divisor"
            )

    @property
    def kernel(self) -> tuple[int, int]:
        return _pair(self.kernel_size)

    @property
    def pad(self) -> tuple[int, int]:
        if self.padding is None:
            kh, kw = self.kernel
            return (self.dilation * (kh - 1) // 2, self.dilation * (kw - 1) // 2)
        return _pair(self.padding)

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        kh, kw = self.kernel
        return (self.out_channels, self.in_channels // self.groups, kh, kw)

    def infer(self, inputs: list[Shape]) -> Shape:
        c, h, w = inputs[0]
        if c != self.in_channels:
            raise EdgenasError(f"conv expects {self.in_channels} input channels, got {c}")
        (kh, kw), (sh, sw), (ph, pw) = self.kernel, _pair(self.stride), self.pad
        out = (
            self.out_channels,
            _conv_out(h, kh, sh, ph, self.dilation),
            _conv_out(w, kw, sw, pw, self.dilation),
        )
        if out[1] <= 0 or out[2] <= 0:
            raise EdgenasError(f"input {h}x{w} is too small for this network; raise the resolution")
        return out

    def weights(self) -> int:
        return numel(self.weight_shape)

    def biases(self) -> int:
        return self.out_channels if self.bias else 0

    def params(self) -> int:
        return self.weights() + self.biases()

    def macs(self, inputs: list[Shape], out: Shape) -> int:
        return self.weights() * out[1] * out[2]

    def to_module(self) -> nn.Module:
        from torch import nn

        return nn.Conv2d(
            self.in_channels, self.out_channels, self.kernel, _pair(self.stride), self.pad,
            dilation=self.dilation, groups=self.groups, bias=self.bias,
        )


def depthwise(channels: int, kernel_size: int = 3, stride: int = 1) -> Conv2d:
    """Depthwise conv: one kxk filter per channel (groups = channels)."""
    return Conv2d(channels, channels, kernel_size, stride, groups=channels)


def pointwise(in_channels: int, out_channels: int, groups: int = 1) -> Conv2d:
    """Pointwise (1x1) conv, optionally grouped as in ShuffleNet."""
    return Conv2d(in_channels, out_channels, 1, 1, 0, groups=groups)


@dataclass(frozen=True, slots=True)
class Linear(Op):
    in_features: int
    out_features: int
    bias: bool = True
    kind: ClassVar[str] = "linear"

    def __post_init__(self) -> None:
        _check_channels("in_features", self.in_features)
        _check_channels("out_features", self.out_features)

    def infer(self, inputs: list[Shape]) -> Shape:
        if inputs[0][-1] != self.in_features:
            raise EdgenasError(f"linear expects {self.in_features} features, got {inputs[0]}")
        return (*inputs[0][:-1], self.out_features)

    def weights(self) -> int:
        return self.in_features * self.out_features

    def biases(self) -> int:
        return self.out_features if self.bias else 0

    def params(self) -> int:
        return self.weights() + self.biases()

    def macs(self, inputs: list[Shape], out: Shape) -> int:
        return self.weights() * numel(inputs[0][:-1])

    def to_module(self) -> nn.Module:
        from torch import nn

        return nn.Linear(self.in_features, self.out_features, bias=self.bias)


@dataclass(frozen=True, slots=True)
class BatchNorm2d(Op):
    """Batch norm: folded into the preceding conv for deployment (flash), else a scale+shift."""

    num_features: int
    affine: bool = True
    kind: ClassVar[str] = "norm"
    aliases_input: ClassVar[bool] = True

    def params(self) -> int:
        return 2 * self.num_features if self.affine else 0

    def other_ops(self, inputs: list[Shape], out: Shape) -> int:
        return numel(out)

    def to_module(self) -> nn.Module:
        from torch import nn

        return nn.BatchNorm2d(self.num_features, affine=self.affine)


_ACTIVATIONS = ("relu", "relu6", "hardswish", "hardsigmoid", "sigmoid", "silu", "gelu", "tanh")


@dataclass(frozen=True, slots=True)
class Activation(Op):
    fn: str = "relu"
    kind: ClassVar[str] = "act"
    aliases_input: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if self.fn not in _ACTIVATIONS:
            raise EdgenasError(f"unknown activation {self.fn!r}; use one of {', '.join(_ACTIVATIONS)}")

    def other_ops(self, inputs: list[Shape], out: Shape) -> int:
        return numel(out)

    def to_module(self) -> nn.Module:
        from torch import nn

        modules = {
            "relu": nn.ReLU, "relu6": nn.ReLU6, "hardswish": nn.Hardswish,
            "hardsigmoid": nn.Hardsigmoid, "sigmoid": nn.Sigmoid, "silu": nn.SiLU,
            "gelu": nn.GELU, "tanh": nn.Tanh,
        }
        return modules[self.fn]()


@dataclass(frozen=True, slots=True)
class Pool2d(Op):
    """Max or average pooling over a kxk window."""

    mode: str = "max"  # "max" | "avg"
    kernel_size: int = 3
    stride: int = 2
    padding: int = 0
    ceil_mode: bool = False
    count_include_pad: bool = True
    kind: ClassVar[str] = "pool"

    def infer(self, inputs: list[Shape]) -> Shape:
        c, h, w = inputs[0]
        k, s, p = self.kernel_size, self.stride, self.padding
        return (c, _conv_out(h, k, s, p, ceil=self.ceil_mode), _conv_out(w, k, s, p, ceil=self.ceil_mode))

    def other_ops(self, inputs: list[Shape], out: Shape) -> int:
        return numel(out) * self.kernel_size**2

    def to_module(self) -> nn.Module:
        from torch import nn

        if self.mode == "max":
            return nn.MaxPool2d(self.kernel_size, self.stride, self.padding, ceil_mode=self.ceil_mode)
        return nn.AvgPool2d(
            self.kernel_size, self.stride, self.padding, ceil_mode=self.ceil_mode,
            count_include_pad=self.count_include_pad,
        )


@dataclass(frozen=True, slots=True)
class GlobalPool(Op):
    """Global average pooling to (C, 1, 1); ``flatten`` gives (C,) directly."""

    flatten: bool = False
    kind: ClassVar[str] = "pool"

    def infer(self, inputs: list[Shape]) -> Shape:
        c = inputs[0][0]
        return (c,) if self.flatten else (c, 1, 1)

    def other_ops(self, inputs: list[Shape], out: Shape) -> int:
        return numel(inputs[0])

    def to_module(self) -> nn.Module:
        from edgenas.ops.modules import GlobalAvgPool

        return GlobalAvgPool(self.flatten)


def _broadcast(a: Shape, b: Shape) -> Shape:
    if len(a) != len(b):
        raise EdgenasError(f"cannot combine tensors of shapes {a} and {b}")
    out = []
    for x, y in zip(a, b, strict=True):
        if x != y and 1 not in (x, y):
            raise EdgenasError(f"cannot combine tensors of shapes {a} and {b}")
        out.append(max(x, y))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Add(Op):
    """Element-wise sum of two or more tensors (residual connections)."""

    kind: ClassVar[str] = "add"

    def infer(self, inputs: list[Shape]) -> Shape:
        out = inputs[0]
        for s in inputs[1:]:
            out = _broadcast(out, s)
        return out

    def other_ops(self, inputs: list[Shape], out: Shape) -> int:
        return numel(out) * (len(inputs) - 1)


@dataclass(frozen=True, slots=True)
class Mul(Op):
    """Element-wise product with broadcasting (squeeze-excitation gating)."""

    kind: ClassVar[str] = "mul"

    def infer(self, inputs: list[Shape]) -> Shape:
        return _broadcast(inputs[0], inputs[1])

    def other_ops(self, inputs: list[Shape], out: Shape) -> int:
        return numel(out)


@dataclass(frozen=True, slots=True)
class Concat(Op):
    """Concatenation along channels."""

    kind: ClassVar[str] = "concat"

    def infer(self, inputs: list[Shape]) -> Shape:
        rest = {s[1:] for s in inputs}
        if len(rest) != 1:
            raise EdgenasError(f"cannot concatenate tensors of shapes {inputs}")
        return (sum(s[0] for s in inputs), *inputs[0][1:])


@dataclass(frozen=True, slots=True)
class View(Op):
    """Shape-only op sharing its input's memory: flatten, channel shuffle, channel slice."""

    shape: Shape | None = None  # None: flatten to (numel,)
    channels: tuple[int, int] | None = None  # a channel slice [start, stop)
    kind: ClassVar[str] = "view"
    aliases_input: ClassVar[bool] = True

    def infer(self, inputs: list[Shape]) -> Shape:
        if self.channels is not None:
            start, stop = self.channels
            return (stop - start, *inputs[0][1:])
        return self.shape if self.shape is not None else (numel(inputs[0]),)

    def to_module(self) -> nn.Module:
        from torch import nn

        if self.channels is not None or (self.shape is not None and len(self.shape) != 1):
            raise NotImplementedError("only flatten views have a module form")
        return nn.Flatten(1)


@dataclass(frozen=True, slots=True)
class Dropout(Op):
    """Dropout: identity at inference, no cost."""

    p: float = 0.0
    kind: ClassVar[str] = "view"
    aliases_input: ClassVar[bool] = True

    def to_module(self) -> nn.Module:
        from torch import nn

        return nn.Dropout(self.p)


@dataclass(frozen=True, slots=True)
class Zero(Op):
    """The NAS 'none' op: an all-zero output; it needs no buffer of its own on a device."""

    kind: ClassVar[str] = "zero"
    aliases_input: ClassVar[bool] = True

    def to_module(self) -> nn.Module:
        from edgenas.ops.modules import Zero as ZeroModule

        return ZeroModule()


@dataclass(frozen=True, slots=True)
class Opaque(Op):
    """A module the profiler cannot analyse: its parameters count, its MACs are unknown (0)."""

    type_name: str = "?"
    n_params: int = 0
    out_shape: Shape = field(default=())
    kind: ClassVar[str] = "opaque"

    def infer(self, inputs: list[Shape]) -> Shape:
        return self.out_shape

    def params(self) -> int:
        return self.n_params
