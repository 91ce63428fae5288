"""ProxylessNAS (Cai et al., ICLR 2019): path-binarised search with a differentiable hardware loss.

The supernet is a network of a MobileNet-style space (``mcunet`` or ``mobilenet``) at a fixed
resolution, width and depth in which every searched block holds all its kernel x expand
candidates (the space's own MBConv specs, under the names the discrete network uses). Each
block has architecture parameters ``alpha`` (one per candidate) and paths
``p = softmax(alpha)``.

*Path binarisation.* A step samples ONE candidate per block from ``p``; only that path runs
in the weight step, so training costs what the single sampled network costs. In the alpha
step the binary gates ``g`` (one-hot on the sampled path) get the BinaryConnect gradient of
the paper (Eq. 4, the "full" estimator of its code): ``dL/dg_j = <dL/dy, o_j(x)>`` with the
outputs ``o_j`` of every candidate (the unsampled ones computed without a graph), and
``dL/dalpha_i = sum_j dL/dg_j * p_j (delta_ij - p_i)``. It is written as
``g = onehot + p - p.detach()``, whose backward through the softmax is exactly that sum.
(Not the Gumbel-softmax variant, and not the paper's two-path memory saving.)

*Hardware loss.* The expected cost is linear in the paths, ``E[cost] = base + sum_blocks
sum_j p_j cost_j``, where a candidate's cost is its analytic MACs (op specs), or its
predicted latency from a :class:`~edgenas.hardware.lut.LatencyTable`. The alpha loss is
``CE + lambda * log(E[cost])``, the log form FBNet/MnasNet-style multi-objective searches use:
it makes ``lambda`` unit-free (the paper's Eq. 5 adds ``lambda_2 * E[latency]`` directly).
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgenas.blocks.base import Block, graph_of
from edgenas.cost import Cost, estimate
from edgenas.errors import EdgenasError
from edgenas.estimate.data import Dataset
from edgenas.estimate.train import isolated_rng
from edgenas.hardware.lut import LatencyTable, predict_latency_ms
from edgenas.ops import Shape
from edgenas.spaces.base import Arch, SearchSpace
from edgenas.supernet.darts import (
    BilevelConfig,
    SearchEpoch,
    SearchHistory,
    StepFn,
    bilevel_search,
    inherit_state,
)

#: ProxylessNAS' architecture optimiser (its code: Adam, lr 1e-3, betas (0, 0.999), no decay)
PROXYLESS_DEFAULTS: dict[str, Any] = {
    "alpha_lr": 1e-3, "alpha_betas": (0.0, 0.999), "alpha_weight_decay": 0.0, "weight_decay": 4e-5,
}
_BLOCK = re.compile(r"^s(\d+)b(\d+)$")
_SEARCHED_DIM = re.compile(r"^[ke]\d+_\d+$")


def proxyless_config(**overrides: Any) -> BilevelConfig:
    """A :class:`BilevelConfig` with ProxylessNAS' alpha optimiser, then ``overrides``."""
    return BilevelConfig(**{**PROXYLESS_DEFAULTS, **overrides})


class BinaryMixedOp(nn.Module):
    """A searched block: runs the sampled candidate; with gates, adds ``g_k * o_k`` for the others.

    The other candidates' outputs carry no graph (they only serve the gate gradients) and the
    gates are 0 on them, so the output value is the sampled path's.
    """

    def __init__(self, candidates: Sequence[Block]) -> None:
        super().__init__()
        self.candidates = nn.ModuleList(b.build() for b in candidates)

    def forward(self, x: torch.Tensor, active: int, gates: torch.Tensor | None = None) -> torch.Tensor:
        out = self.candidates[active](x)
        if gates is None:
            return out
        out = gates[active] * out
        with torch.no_grad():
            others = [(k, op(x)) for k, op in enumerate(self.candidates) if k != active]
        for k, y in others:
            out = out + gates[k] * y
        return out


# --- costs of the candidates ----------------------------------------------------------------------
@dataclass(frozen=True)
class ChoiceCost:
    """Cost of a network as ``scale * (base + sum of the chosen candidates' costs) + offset``."""

    metric: str  # "macs" or "latency_ms"
    base: float  # the units that are not searched (and a once-per-network call overhead)
    choices: tuple[tuple[float, ...], ...]  # per searched block, per candidate
    scale: float = 1.0
    offset: float = 0.0

    def expected(self, probs: Sequence[torch.Tensor]) -> torch.Tensor:
        """E[cost] under independent per-block path probabilities (differentiable)."""
        total = torch.tensor(self.base, dtype=torch.float64)
        for p, c in zip(probs, self.choices, strict=True):
            total = total + (p.double() * torch.tensor(c, dtype=torch.float64)).sum()
        return self.scale * total + self.offset

    def of(self, indices: Sequence[int]) -> float:
        """The cost of one network (one candidate index per block)."""
        chosen = sum(c[i] for c, i in zip(self.choices, indices, strict=True))
        return self.scale * (self.base + chosen) + self.offset


UnitCost = Callable[[Block, Shape], float]


def _macs(block: Block, shape: Shape) -> float:
    return float(estimate(graph_of(block, shape)).macs)


def _latency(table: LatencyTable) -> UnitCost:
    over = table.meta.call_overhead_ms

    def unit(block: Block, shape: Shape) -> float:  # as chain_latency_fn: the overhead counts once
        return table.raw_sum(graph_of(block, shape)) - over

    return unit


# --- the supernet ---------------------------------------------------------------------------------
class ProxylessSupernet(nn.Module):
    """A MobileNet-space network whose searched blocks are :class:`BinaryMixedOp` s.

    ``fixed`` gives the non-searched dims (resolution, width, depths); depths default to each
    stage's largest, other dims with a single option to it. ``table``: latency costs from a
    lookup table (else analytic MACs); ``lam``: weight of ``log E[cost]`` in the alpha loss.
    """

    def __init__(self, space: SearchSpace, num_classes: int = 10, fixed: dict[str, Any] | None = None,
                 table: LatencyTable | None = None, lam: float = 0.0) -> None:
        super().__init__()
        from edgenas.spaces.mcunet import MobileNetSpace

        if not isinstance(space, MobileNetSpace):
            raise EdgenasError(
                f"ProxylessNAS searches mobilenet-style spaces (mcunet, mobilenet), not {space.name}"
            )
        if lam < 0:
            raise EdgenasError(f"lambda must be >= 0, got {lam}; give the weight of the hardware loss")
        self.space, self.lam = space, lam
        self.fixed_values = fixed_values(space, fixed or {})
        self.choices = tuple(itertools.product(space.kernels, space.expands))
        template = {**self.fixed_values, **{d.name: d.options[0] for d in space.dims() if d.name not in
                                              self.fixed_values}}
        shape = space.input_shape_of(template)
        unit_cost: UnitCost = _macs if table is None else _latency(table)
        base = 0.0 if table is None else table.meta.call_overhead_ms
        self.unit_names: list[str] = []
        self.blocks: dict[str, tuple[str, str]] = {}  # searched unit -> (kernel dim, expand dim)
        per_block: list[tuple[float, ...]] = []
        for name, key in space.units(template, num_classes):
            m = _BLOCK.match(name)
            if m and key.kind == "mb":  # type: ignore[attr-defined]
                keys: list[Hashable] = [key._replace(kernel=k, expand=e) for k, e in self.choices]  # type: ignore[attr-defined]
                specs = [space.unit_block(k) for k in keys]
                self.add_module(name, BinaryMixedOp(specs))
                self.blocks[name] = (f"k{m[1]}_{m[2]}", f"e{m[1]}_{m[2]}")
                per_block.append(tuple(unit_cost(s, shape) for s in specs))
                spec = specs[0]
            else:
                spec = space.unit_block(key)
                self.add_module(name, spec.build())
                base += unit_cost(spec, shape)
            self.unit_names.append(name)
            g = graph_of(spec, shape)
            shape = g.shape(g.output)
        if not self.blocks:
            raise EdgenasError("the space has no searched block at these depths; give stages with depth >= 1")
        self.cost = ChoiceCost(
            "macs" if table is None else "latency_ms", base, tuple(per_block),
            1.0 if table is None else table.meta.scale, 0.0 if table is None else table.meta.offset_ms,
        )
        self.alphas = nn.ParameterDict({
            name: nn.Parameter(1e-3 * torch.randn(len(self.choices))) for name in self.blocks
        })
        self._active: list[int] | None = None  # None: the argmax path
        self._gated = False

    # --- parameters, paths ------------------------------------------------------------------------
    def arch_parameters(self) -> list[nn.Parameter]:
        return list(self.alphas.values())

    def weight_parameters(self) -> list[nn.Parameter]:
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def probabilities(self) -> dict[str, np.ndarray]:
        with torch.no_grad():
            return {n: F.softmax(a, dim=-1).numpy().copy() for n, a in self.alphas.items()}

    def _sample(self, gen: torch.Generator) -> list[int]:
        with torch.no_grad():
            probs = [F.softmax(a, dim=-1) for a in self.alphas.values()]
            return [int(torch.multinomial(p, 1, generator=gen)) for p in probs]

    def before_weight_step(self, gen: torch.Generator) -> None:
        self._active, self._gated = self._sample(gen), False

    def before_arch_step(self, gen: torch.Generator) -> None:
        self._active, self._gated = self._sample(gen), True

    def set_path(self, indices: Sequence[int] | None) -> None:
        """Run one fixed path (None: the argmax path) with no gates."""
        self._active, self._gated = (None if indices is None else list(indices)), False

    def argmax_path(self) -> list[int]:
        return [int(a.argmax()) for a in self.alphas.values()]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        active = self._active if self._active is not None else self.argmax_path()
        b = 0
        for name in self.unit_names:
            module = getattr(self, name)
            if name in self.blocks:
                gates = None
                if self._gated:
                    p = F.softmax(self.alphas[name], dim=-1)
                    gates = F.one_hot(torch.tensor(active[b]), len(p)).to(p.dtype) + p - p.detach()
                x = module(x, active[b], gates)
                b += 1
            else:
                x = module(x)
        return x

    # --- losses ------------------------------------------------------------------------------------
    def expected_cost(self) -> torch.Tensor:
        return self.cost.expected([F.softmax(a, dim=-1) for a in self.alphas.values()])

    def arch_loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = F.cross_entropy(logits, y)
        if self.lam:
            loss = loss + self.lam * torch.log(self.expected_cost()).to(loss.dtype)
        return loss

    def epoch_metrics(self) -> dict[str, float]:
        with torch.no_grad():
            return {f"expected_{self.cost.metric}": float(self.expected_cost())}

    # --- the derived network ---------------------------------------------------------------------------
    def arch_of(self, indices: Sequence[int]) -> Arch:
        values = dict(self.fixed_values)
        for (k_dim, e_dim), i in zip(self.blocks.values(), indices, strict=True):
            values[k_dim], values[e_dim] = self.choices[i]
        for d in self.space.dims():
            values.setdefault(d.name, d.options[0])  # blocks beyond the fixed depths: inactive
        return self.space.make(values)

    def derive(self) -> Arch:
        """The most likely path: argmax of alpha in every block."""
        return self.arch_of(self.argmax_path())

    def indices_of(self, arch: Arch) -> list[int]:
        return [self.choices.index((arch.values[k], arch.values[e])) for k, e in self.blocks.values()]

    def inherited_state(self, arch: Arch) -> dict[str, torch.Tensor]:
        """The state dict of ``space.build(arch)`` taken from the supernet's chosen candidates."""
        picks = {name: (name, i) for name, i in zip(self.blocks, self.indices_of(arch), strict=True)}
        return inherit_state(self.state_dict(), picks)


def fixed_values(space: SearchSpace, fixed: dict[str, Any]) -> dict[str, Any]:
    """Values of every dim ProxylessNAS does not search (all but kernels and expands)."""
    dims = {d.name: d for d in space.dims()}
    unknown = sorted(set(fixed) - set(dims))
    if unknown:
        raise EdgenasError(f"{unknown[0]!r} is not a dimension of {space.name}; dims: {', '.join(dims)}")
    out: dict[str, Any] = {}
    for name, d in dims.items():
        if _SEARCHED_DIM.match(name):
            continue
        if name in fixed:
            if fixed[name] not in d.options:
                raise EdgenasError(f"{name}={fixed[name]!r} is not allowed; choose one of {list(d.options)}")
            out[name] = fixed[name]
        elif re.fullmatch(r"d\d+", name):
            out[name] = max(d.options)
        elif len(d.options) == 1:
            out[name] = d.options[0]
        else:
            plural = {"resolution": "resolutions", "width": "widths"}.get(name, name)
            raise EdgenasError(
                f"ProxylessNAS searches kernels and expands at a fixed {name}, but the space allows "
                f"{list(d.options)}; fix it with -o {plural}=[{d.options[0]}]"
            )
    return out


# --- one call ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProxylessResult:
    arch: Arch
    arch_string: str
    cost: Cost  # analytic cost of the derived network
    metric: str  # what the hardware loss measured: macs or latency_ms
    derived_metric: float  # that metric for the derived network
    expected_metric: float  # E[metric] under the final path probabilities
    latency_ms: float | None  # the table's prediction for the derived network
    probabilities: dict[str, np.ndarray]
    choices: tuple[tuple[int, int], ...]  # (kernel, expand) of each candidate index
    history: SearchHistory
    lam: float


def run_proxyless(
    space: SearchSpace, data: Dataset, config: BilevelConfig | None = None, *, lam: float = 0.0,
    fixed: dict[str, Any] | None = None, table: LatencyTable | None = None,
    on_step: StepFn | None = None, on_epoch: Callable[[SearchEpoch], None] | None = None,
) -> ProxylessResult:
    """Build the supernet, search with the hardware loss, derive the argmax network."""
    config = config or proxyless_config()
    start = time.perf_counter()
    with isolated_rng(config.seed, config.threads):
        net = ProxylessSupernet(space, data.num_classes, fixed, table, lam)
    if net.space.input_shape_of(net.fixed_values)[1:] != data.input_shape[1:]:
        raise EdgenasError(
            f"the data is {data.input_shape[1]}x{data.input_shape[2]} but the supernet's resolution is "
            f"{net.fixed_values['resolution']}; load the data at that resolution"
        )
    history = bilevel_search(net, data, config, on_step=on_step, on_epoch=on_epoch)
    arch = net.derive()
    cost = space.cost(arch, data.num_classes)
    latency = None if table is None else predict_latency_ms(space.graph(arch, data.num_classes), table)
    history.seconds = time.perf_counter() - start
    return ProxylessResult(
        arch, space.to_string(arch), cost, net.cost.metric, net.cost.of(net.argmax_path()),
        net.epoch_metrics()[f"expected_{net.cost.metric}"], latency, net.probabilities(), net.choices,
        history, lam,
    )
