"""MobileNet-style network spaces: ``mobilenet`` (Once-for-All) and ``mcunet`` (TinyNAS).

The skeleton is OFA's ProxylessNAS/MobileNetV2 one: a 3x3 stem, a fixed expand-1 MBConv,
then stages of MBConv blocks. Searched: input resolution, width multiplier, the depth of
each stage, and the kernel size and expand ratio of every block. Blocks beyond a stage's
depth are inactive, so ``size`` is |res|·|width|·∏_stage Σ_d (|K|·|E|)^d, not the product
of all option counts.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence
from typing import Any, NamedTuple

from edgenas.blocks import conv_bn_act, make_divisible, mbconv, seq
from edgenas.blocks.base import Block
from edgenas.errors import EdgenasError
from edgenas.ops import GlobalPool, Linear
from edgenas.spaces.base import Arch, Dim, register_space
from edgenas.spaces.tinynas import ChainSpace


class Stage(NamedTuple):
    channels: int  # output channels at width 1.0
    stride: int  # stride of the stage's first block
    depths: tuple[int, ...]  # allowed numbers of blocks


class _Unit(NamedTuple):
    """Hashable description of one unit of the chain (cheap to hash, unlike block specs)."""

    kind: str  # "stem" | "mb" | "mix" | "head"
    cin: int
    cout: int
    stride: int = 1
    kernel: int = 3
    expand: int = 1


# OFA's ProxylessNAS space: widths 24-40-80-96-192-320, first stride of each stage
OFA_STAGES = (
    Stage(24, 2, (2, 3, 4)), Stage(40, 2, (2, 3, 4)), Stage(80, 2, (2, 3, 4)),
    Stage(96, 1, (2, 3, 4)), Stage(192, 2, (2, 3, 4)), Stage(320, 1, (1,)),
)


def _tuple(values: Sequence[Any] | None, default: tuple) -> tuple:
    return default if values is None else tuple(values)


def _stages(stages: Sequence[Sequence[Any]] | None) -> tuple[Stage, ...]:
    if stages is None:
        return OFA_STAGES
    return tuple(Stage(int(c), int(s), tuple(int(d) for d in ds)) for c, s, ds in stages)


class MobileNetSpace(ChainSpace):
    """OFA MobileNet space: resolution, width, per-stage depth, per-block kernel and expand."""

    name = "mobilenet"
    RESOLUTIONS: tuple[int, ...] = tuple(range(96, 225, 16))
    WIDTHS: tuple[float, ...] = (0.5, 0.75, 1.0)
    HEAD: int | None = 1280  # 1x1 "feature mix" conv before pooling (None: classifier on last stage)

    def __init__(
        self,
        resolutions: Sequence[int] | None = None,
        widths: Sequence[float] | None = None,
        kernels: Sequence[int] = (3, 5, 7),
        expands: Sequence[int] = (3, 4, 6),
        stages: Sequence[Sequence[Any]] | None = None,
        stem: int = 32,
        first: int = 16,
        head: int | str | None = "default",
        act: str = "relu6",
    ) -> None:
        super().__init__()
        self.resolutions = _tuple(resolutions, self.RESOLUTIONS)
        self.widths = tuple(float(w) for w in _tuple(widths, self.WIDTHS))
        self.kernels = tuple(int(k) for k in kernels)
        self.expands = tuple(int(e) for e in expands)
        self.stages = _stages(stages)
        self.stem, self.first, self.act = stem, first, act
        self.head = self.HEAD if head == "default" else head
        if not self.stages or any(not s.depths or min(s.depths) < 1 for s in self.stages):
            raise EdgenasError("every stage needs depth options >= 1; e.g. stages=[[24, 2, [2, 3, 4]]]")
        dims = [Dim("resolution", self.resolutions), Dim("width", self.widths)]
        for s, stage in enumerate(self.stages):
            if len(stage.depths) > 1:
                dims.append(Dim(f"d{s}", stage.depths))
            for b in range(max(stage.depths)):
                dims += [Dim(f"k{s}_{b}", self.kernels), Dim(f"e{s}_{b}", self.expands)]
        self._dims = tuple(dims)
        self._block_names = tuple(
            tuple((f"s{s}b{b}", f"k{s}_{b}", f"e{s}_{b}") for b in range(max(st.depths)))
            for s, st in enumerate(self.stages)
        )
        self._width_channels: dict[float, tuple[int, int, tuple[int, ...]]] = {}

    def dims(self) -> Sequence[Dim]:
        return self._dims

    def depth(self, values: dict[str, Any], s: int) -> int:
        depths = self.stages[s].depths
        return values[f"d{s}"] if len(depths) > 1 else depths[0]

    def active(self, values: dict[str, Any]) -> Sequence[str]:
        names = ["resolution", "width"]
        for s, stage in enumerate(self.stages):
            if len(stage.depths) > 1:
                names.append(f"d{s}")
            for b in range(self.depth(values, s)):
                names += [f"k{s}_{b}", f"e{s}_{b}"]
        return names

    def size(self) -> int:
        per_block = len(self.kernels) * len(self.expands)
        n = len(self.resolutions) * len(self.widths)
        for stage in self.stages:
            n *= sum(per_block**d for d in stage.depths)
        return n

    # --- network -------------------------------------------------------------------------------
    def _channels(self, w: float) -> tuple[int, int, tuple[int, ...]]:
        """(stem, first block, per-stage) channels at width ``w``, computed once per width."""
        found = self._width_channels.get(w)
        if found is None:
            stages = tuple(make_divisible(st.channels * w) for st in self.stages)
            found = (make_divisible(self.stem * w), make_divisible(self.first * w), stages)
            self._width_channels[w] = found
        return found

    def units(self, values: dict[str, Any], num_classes: int) -> list[tuple[str, Hashable]]:
        w = float(values["width"])
        c, first, stage_channels = self._channels(w)
        out: list[tuple[str, Hashable]] = [("stem", _Unit("stem", 3, c, 2)), ("first", _Unit("mb", c, first))]
        c = first
        for s, stage in enumerate(self.stages):
            cout = stage_channels[s]
            names = self._block_names[s]
            for b in range(self.depth(values, s)):
                name, k, e = names[b]
                out.append((name, _Unit("mb", c, cout, stage.stride if b == 0 else 1, values[k], values[e])))
                c = cout
        if self.head is not None:
            mix = make_divisible(self.head * max(1.0, w))
            out.append(("mix", _Unit("mix", c, mix)))
            c = mix
        out.append(("head", _Unit("head", c, num_classes)))
        return out

    def unit_block(self, key: Hashable) -> Block:
        u: _Unit = key  # type: ignore[assignment]
        if u.kind == "stem":
            return conv_bn_act(u.cin, u.cout, 3, u.stride, act=self.act)
        if u.kind == "mb":
            return mbconv(u.cin, u.cout, u.stride, u.expand, u.kernel, act=self.act)
        if u.kind == "mix":
            return conv_bn_act(u.cin, u.cout, 1, act=self.act)
        return seq(GlobalPool(flatten=True), Linear(u.cin, u.cout))

    # --- readable form ---------------------------------------------------------------------------
    def to_string(self, arch: Arch) -> str:
        """``r160_w0.5|k3e6,k5e4|...``: one ``|`` group per stage, one ``kKeE`` per block."""
        v = arch.values
        stages = [
            ",".join(f"k{v[f'k{s}_{b}']}e{v[f'e{s}_{b}']}" for b in range(self.depth(v, s)))
            for s in range(len(self.stages))
        ]
        return f"r{v['resolution']}_w{v['width']:g}|" + "|".join(stages)

    def from_string(self, text: str) -> Arch:
        """Inverse of :meth:`to_string`."""
        head, *groups = text.strip().split("|")
        m = re.fullmatch(r"r(\d+)_w([0-9.]+)", head)
        if m is None or len(groups) != len(self.stages):
            raise EdgenasError(
                f"arch string {text!r} must look like r160_w0.5|k3e6,k5e4|... with "
                f"{len(self.stages)} '|'-separated stages"
            )
        values: dict[str, Any] = {"resolution": int(m[1]), "width": float(m[2])}
        for s, group in enumerate(groups):
            blocks = group.split(",")
            if len(blocks) not in self.stages[s].depths:
                raise EdgenasError(
                    f"stage {s} of {text!r} has {len(blocks)} blocks; allowed depths: "
                    f"{', '.join(map(str, self.stages[s].depths))}"
                )
            if len(self.stages[s].depths) > 1:
                values[f"d{s}"] = len(blocks)
            for b in range(max(self.stages[s].depths)):
                bm = re.fullmatch(r"k(\d+)e(\d+)", blocks[b]) if b < len(blocks) else None
                if b < len(blocks) and bm is None:
                    raise EdgenasError(f"block {blocks[b]!r} of stage {s} must look like k3e6")
                values[f"k{s}_{b}"] = int(bm[1]) if bm else self.kernels[0]
                values[f"e{s}_{b}"] = int(bm[2]) if bm else self.expands[0]
        return self.make(values)

    def parse(self, data: str | dict[str, Any]) -> Arch:
        if isinstance(data, str) and not data.lstrip().startswith("{"):
            return self.from_string(data)
        return super().parse(data)

    def describe(self) -> dict[str, Any]:
        return {
            "resolutions": list(self.resolutions),
            "widths": list(self.widths),
            "kernels": list(self.kernels),
            "expands": list(self.expands),
            "stages": [
                {"channels": s.channels, "stride": s.stride, "depths": list(s.depths)} for s in self.stages
            ],
            "stem": self.stem, "first": self.first, "head": self.head, "act": self.act,
        }


register_space("mobilenet")(MobileNetSpace)


@register_space("mcunet")
class MCUNetSpace(MobileNetSpace):
    """TinyNAS (MCUNet) space: the OFA skeleton at microcontroller scale.

    Lower resolutions and width multipliers, and no 1280-wide feature-mix layer: its
    weights alone would fill a small MCU's flash.
    """

    name = "mcunet"
    RESOLUTIONS = tuple(range(48, 177, 16))
    WIDTHS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    HEAD = None
