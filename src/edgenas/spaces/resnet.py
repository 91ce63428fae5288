"""ResNet-style network space (Once-for-All ResNet50 flavour).

Searched: input resolution, width multiplier, the depth of each of the four stages, and the
bottleneck ratio of each stage (3x3-conv channels / block output channels; torchvision's
ResNet-50 is 0.25). Every dim is always active, so ``size`` is the plain product.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, NamedTuple

from edgenas.blocks import conv_bn_act, make_divisible, seq
from edgenas.blocks.base import Block, Residual
from edgenas.blocks.resnet import projection
from edgenas.errors import EdgenasError
from edgenas.ops import GlobalPool, Linear, Pool2d
from edgenas.spaces.base import Arch, Dim, register_space
from edgenas.spaces.tinynas import ChainSpace


class _Unit(NamedTuple):
    kind: str  # "stem" | "block" | "head"
    cin: int
    cout: int
    stride: int = 1
    mid: int = 0


# torchvision ResNet-50 stage outputs; depths around its 3-4-6-3
STAGE_CHANNELS = (256, 512, 1024, 2048)
STAGE_DEPTHS = ((1, 2, 3), (2, 3, 4), (3, 5, 7, 9), (1, 2, 3))


def bottleneck_block(cin: int, mid: int, cout: int, stride: int) -> Block:
    """1x1 reduce to ``mid`` -> 3x3 (stride) -> 1x1 to ``cout``, projection shortcut, ReLU."""
    body = seq(
        conv_bn_act(cin, mid, 1),
        conv_bn_act(mid, mid, 3, stride),
        conv_bn_act(mid, cout, 1, act=None),
    )
    return Residual(body, projection(cin, cout, stride), act="relu")


@register_space("resnet")
class ResNetSpace(ChainSpace):
    """Bottleneck ResNet: resolution, width, per-stage depth and per-stage bottleneck ratio."""

    name = "resnet"

    def __init__(
        self,
        resolutions: Sequence[int] = (128, 160, 192, 224),
        widths: Sequence[float] = (0.65, 0.8, 1.0),
        depths: Sequence[Sequence[int]] = STAGE_DEPTHS,
        ratios: Sequence[float] = (0.2, 0.25, 0.35),
        channels: Sequence[int] = STAGE_CHANNELS,
        stem: str = "imagenet",
    ) -> None:
        super().__init__()
        if stem not in ("imagenet", "cifar"):
            raise EdgenasError(f"unknown stem {stem!r}; use imagenet (7x7/2 + max pool) or cifar (3x3/1)")
        if len(depths) != len(channels):
            raise EdgenasError(f"give one depth list per stage: {len(channels)} stages, {len(depths)} lists")
        self.resolutions = tuple(int(r) for r in resolutions)
        self.widths = tuple(float(w) for w in widths)
        self.depths = tuple(tuple(int(d) for d in ds) for ds in depths)
        self.ratios = tuple(float(r) for r in ratios)
        self.channels = tuple(int(c) for c in channels)
        self.stem = stem
        dims = [Dim("resolution", self.resolutions), Dim("width", self.widths)]
        for s in range(len(self.channels)):
            dims += [Dim(f"d{s}", self.depths[s]), Dim(f"b{s}", self.ratios)]
        self._dims = tuple(dims)

    def dims(self) -> Sequence[Dim]:
        return self._dims

    def units(self, values: dict[str, Any], num_classes: int) -> list[tuple[str, Hashable]]:
        w = float(values["width"])
        c = make_divisible(64 * w)
        out: list[tuple[str, Hashable]] = [("stem", _Unit("stem", 3, c))]
        for s, base in enumerate(self.channels):
            cout = make_divisible(base * w)
            mid = make_divisible(cout * float(values[f"b{s}"]))
            for b in range(int(values[f"d{s}"])):
                stride = 2 if b == 0 and s > 0 else 1
                out.append((f"s{s}b{b}", _Unit("block", c, cout, stride, mid)))
                c = cout
        out.append(("head", _Unit("head", c, num_classes)))
        return out

    def unit_block(self, key: Hashable) -> Block:
        u: _Unit = key  # type: ignore[assignment]
        if u.kind == "stem":
            if self.stem == "cifar":
                return conv_bn_act(u.cin, u.cout, 3, 1)
            return seq(conv_bn_act(u.cin, u.cout, 7, 2), Pool2d("max", 3, 2, 1))
        if u.kind == "block":
            return bottleneck_block(u.cin, u.mid, u.cout, u.stride)
        return seq(GlobalPool(flatten=True), Linear(u.cin, u.cout))

    def to_string(self, arch: Arch) -> str:
        """``r160_w0.65|d2b0.25|d3b0.2|...``: one group per stage."""
        v = arch.values
        stages = "|".join(f"d{v[f'd{s}']}b{v[f'b{s}']:g}" for s in range(len(self.channels)))
        return f"r{v['resolution']}_w{v['width']:g}|{stages}"

    def describe(self) -> dict[str, Any]:
        return {
            "resolutions": list(self.resolutions), "widths": list(self.widths),
            "depths": [list(d) for d in self.depths], "ratios": list(self.ratios),
            "channels": list(self.channels), "stem": self.stem,
        }
