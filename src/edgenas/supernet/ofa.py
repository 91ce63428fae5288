"""Once-for-All supernet of a MobileNet-style space (``mcunet``, ``mobilenet``) at one width.

The supernet is the space's largest network (deepest stages, largest kernels and expand
ratios) built from :class:`~edgenas.supernet.elastic.ElasticMBConv` blocks. ``set_active``
selects any arch of the space: a stage of depth d runs its first d blocks (OFA skips the
last ones), each block runs its chosen kernel and expand ratio, and the input resolution is
whatever the input has. ``extract_subnet`` copies the active weights into
``space.build(arch)``, so the analytic cost of the arch applies to it unchanged and its
outputs equal the supernet's with that arch active.

The width multiplier is not elastic: OFA trains one supernet per width too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from edgenas.errors import EdgenasError
from edgenas.estimate.inherit import inherit_weights
from edgenas.spaces.base import Arch
from edgenas.spaces.mcunet import MobileNetSpace
from edgenas.supernet.elastic import ElasticMBConv

#: the elastic dimensions progressive shrinking turns on one after another
ELASTIC_DIMS = ("kernel", "depth", "expand")


def check_space(space: Any) -> MobileNetSpace:
    """``space`` if a supernet can be built of it, else a one-line EdgenasError."""
    if not isinstance(space, MobileNetSpace):
        raise EdgenasError(
            f"a once-for-all supernet needs a MobileNet-style space (mcunet, mobilenet), not {space.name}"
        )
    return space


class OFASupernet(nn.Module):
    """Weight-sharing network of every arch of a MobileNet-style space at one width."""

    def __init__(self, space: MobileNetSpace, num_classes: int = 10, width: float | None = None,
                 kernel_transform: bool = True) -> None:
        super().__init__()
        check_space(space)
        if width is None:
            if len(space.widths) != 1:
                raise EdgenasError(
                    f"the supernet is trained at one width and space {space.name} has {len(space.widths)}; "
                    "fix it with -o widths=[0.5]"
                )
            width = space.widths[0]
        if float(width) not in space.widths:
            raise EdgenasError(f"width {width} is not an option of the space ({list(space.widths)}); "
                               "pick one of them")
        self.space, self.num_classes, self.width = space, num_classes, float(width)
        self.kernel_transform = kernel_transform
        self._stage_dims = space._block_names  # per stage: (module name, kernel dim, expand dim) per block
        block_names = {name for stage in self._stage_dims for name, _, _ in stage}
        units = space.units(self.max_values(), num_classes)
        self._prefix: list[str] = []
        self._suffix: list[str] = []
        for name, key in units:
            if name in block_names:
                module: nn.Module = ElasticMBConv(
                    key.cin, key.cout, key.stride, space.kernels, space.expands,  # type: ignore[attr-defined]
                    space.act, kernel_transform,
                )
            else:  # stem, first block, feature mix, classifier: fixed
                module = space.unit_block(key).build()
                (self._suffix if len(self._modules) > len(self._prefix) else self._prefix).append(name)
            self.add_module(name, module)
        self.set_active(self.max_values())

    # --- archs ----------------------------------------------------------------------------------
    def blocks(self) -> list[tuple[str, ElasticMBConv]]:
        return [(name, self.get_submodule(name)) for stage in self._stage_dims for name, _, _ in stage]  # type: ignore[misc]

    def _values(self, kernel: str, depth: str, expand: str, resolution: str) -> dict[str, Any]:
        pick = {"max": max, "min": min}
        sp = self.space
        values: dict[str, Any] = {"resolution": pick[resolution](sp.resolutions), "width": self.width}
        for s, stage in enumerate(sp.stages):
            if len(stage.depths) > 1:
                values[f"d{s}"] = pick[depth](stage.depths)
            for _, k, e in self._stage_dims[s]:
                values[k], values[e] = pick[kernel](sp.kernels), pick[expand](sp.expands)
        return values

    def max_values(self) -> dict[str, Any]:
        return self._values("max", "max", "max", "max")

    def max_arch(self) -> Arch:
        """The largest arch: deepest, largest kernels and expand ratios, highest resolution."""
        return self.space.make(self.max_values())

    def min_arch(self) -> Arch:
        return self.space.make(self._values("min", "min", "min", "min"))

    def sample_values(self, rng: np.random.Generator,
                      elastic: tuple[str, ...] = ELASTIC_DIMS) -> dict[str, Any]:
        """Random subnet values; dimensions not in ``elastic`` stay at their largest option.

        The resolution is always drawn from the space's resolutions (OFA trains every phase
        at random resolutions).
        """
        sp = self.space
        values = self.max_values()
        values["resolution"] = sp.resolutions[int(rng.integers(len(sp.resolutions)))]
        for s, stage in enumerate(sp.stages):
            if "depth" in elastic and len(stage.depths) > 1:
                values[f"d{s}"] = stage.depths[int(rng.integers(len(stage.depths)))]
            for _, k, e in self._stage_dims[s]:
                if "kernel" in elastic:
                    values[k] = sp.kernels[int(rng.integers(len(sp.kernels)))]
                if "expand" in elastic:
                    values[e] = sp.expands[int(rng.integers(len(sp.expands)))]
        return values

    def check_arch(self, arch: Arch | Mapping[str, Any]) -> Arch:
        """``arch`` as an Arch of this supernet's space; another space or width is an EdgenasError."""
        if isinstance(arch, Arch):
            if arch.space != self.space.name:
                raise EdgenasError(
                    f"arch is from space {arch.space!r}, but the supernet is of space {self.space.name!r}"
                )
            values = dict(arch.values)
        else:
            values = dict(arch)
        if float(values.get("width", self.width)) != self.width:
            raise EdgenasError(
                f"arch width {values['width']} differs from the supernet's width {self.width:g}; "
                f"search with -o widths=[{self.width:g}] or train a supernet at that width"
            )
        return self.space.make(values)

    def set_active(self, arch: Arch | Mapping[str, Any]) -> OFASupernet:
        """Select the subnet of ``arch`` (an Arch or its values; values are trusted, not validated)."""
        values = self.check_arch(arch).values if isinstance(arch, Arch) else arch
        if float(values["width"]) != self.width:
            raise EdgenasError(
                f"arch width {values['width']} differs from the supernet's width {self.width:g}; "
                "pass an arch of the supernet's width"
            )
        self._depths = [self.space.depth(dict(values), s) for s in range(len(self.space.stages))]
        for s, stage in enumerate(self._stage_dims):
            for name, k, e in stage[: self._depths[s]]:
                self.get_submodule(name).set_active(int(values[k]), int(values[e]))  # type: ignore[operator]
        self.active_values = dict(values)
        return self

    # --- forward and extraction ---------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        modules = self._modules
        for name in self._prefix:
            x = modules[name](x)  # type: ignore[misc]
        for s, stage in enumerate(self._stage_dims):
            for name, _, _ in stage[: self._depths[s]]:
                x = modules[name](x)  # type: ignore[misc]
        for name in self._suffix:
            x = modules[name](x)  # type: ignore[misc]
        return x

    @torch.no_grad()
    def extract_subnet(self, arch: Arch | Mapping[str, Any] | None = None) -> nn.Module:
        """``space.build(arch)`` holding the supernet's weights and BN statistics for ``arch``.

        ``arch`` None: the active one. The subnet is in the supernet's train/eval mode.
        """
        arch = self.check_arch(self.active_values if arch is None else arch)
        subnet = self.space.build(arch, self.num_classes)
        report = inherit_weights(subnet, self)  # first-k channels, centre-cropped kernels
        if report.skipped or report.inherited_params != report.total_params:
            raise EdgenasError(f"subnet weights not found in the supernet: {report.skipped[:3]}; a bug")
        if self.kernel_transform:
            values = arch.values
            for s, stage in enumerate(self._stage_dims):
                for name, k, e in stage[: self.space.depth(values, s)]:
                    block: ElasticMBConv = self.get_submodule(name)  # type: ignore[assignment]
                    target = subnet.get_parameter(f"{name}.{block.depthwise_name}")
                    target.copy_(block.active_kernel(values[k], block.hidden(values[e])))
        return subnet.train(self.training)

    def sort_channels(self) -> None:
        """Most important hidden channels first in every block (before elastic-expand training)."""
        for _, block in self.blocks():
            block.sort_channels()
