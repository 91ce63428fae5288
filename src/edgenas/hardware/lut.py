"""Latency lookup tables (ProxylessNAS / Once-for-All / MCUNet style) and the predictor over them.

A network's latency is predicted as the sum of the latencies of its layers, each measured
once, in isolation, on the target. The unit of measurement is a *fused layer*: an op that
makes a buffer (conv, linear, pool, add, mul, concat) together with the BatchNorm and
activation ops that directly follow it and read only it. Those trailing ops are **folded**
into the entry, i.e. measured together with their producer, so the table holds what the
backend really does with them: eager torch runs them as separate kernels, ONNX Runtime folds
BN into the conv and fuses the activation. Views, dropout and the 'none' op are **free**.

An entry's key is the op specs plus input shapes (kernel, stride, groups, channels,
resolution...). A layer missing from the table gets a prediction from a linear model
``ms = a*MMACs + b*MB moved + c`` fitted on the table's entries of the same family
(conv, pointwise, depthwise, linear, pool, add...), or on all entries if the family has
too few, so any network gets a number. A backend that runs a whole network in one call
(ONNX Runtime) has a fixed per-call cost inside every entry: it is measured on a 1-element
op with the layers and counted once per network. An optional end-to-end calibration
``scale*sum + offset`` (fitted on whole networks at build time) absorbs the per-call
overhead a network adds over its layers; it changes absolute values, not rankings.
"""

from __future__ import annotations

import dataclasses
import json
import math
import platform
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from scipy.optimize import nnls
from torch import nn

from edgenas.errors import EdgenasError
from edgenas.hardware.latency import CALL_OVERHEAD_ONCE, measure_many
from edgenas.ops.graph import LayerGraph
from edgenas.ops.specs import Add, Concat, Conv2d, Mul, Op, Shape, numel

FORMAT = "edgenas-latency-table"
REBUILD = "rebuild it with 'edgenas latency table build'"
FREE_KINDS = frozenset({"view", "zero"})  # no work at inference
FOLDED_KINDS = frozenset({"norm", "act"})  # folded into the layer they follow
BYTES_PER_VALUE = 4  # fp32 on the measured CPU
MIN_FIT_POINTS = 3  # a family needs this many entries for its own fallback model
ProgressFn = Callable[[str, int, int], None]  # (phase, done, total)


# --- fused layers -----------------------------------------------------------------------------
class FusedLayer(NamedTuple):
    """A buffer-making op plus the BN/activation ops folded into it (a tuple: cheap to make)."""

    name: str  # the head node's name
    ops: tuple[Op, ...]
    in_shapes: tuple[Shape, ...]
    out_shape: Shape


def fused_layers(graph: LayerGraph) -> list[FusedLayer]:
    """The graph's layers as the table measures them, in execution order (free ops dropped)."""
    readers: dict[str, int] = {}
    for node in graph.nodes:
        for src in node.inputs:
            readers[src] = readers.get(src, 0) + 1
    shape = graph.shape
    out: list[FusedLayer] = []
    head = None  # the node starting the group being extended
    ops: list[Op] = []
    tail = None  # the group's last node
    for node in graph.nodes:
        kind = node.op.kind
        if kind in FREE_KINDS:
            continue
        tail_name = tail.name if tail is not None else None
        if kind in FOLDED_KINDS and node.inputs[0] == tail_name and readers[tail_name] == 1:
            ops.append(node.op)
            tail = node
            continue
        if head is not None:
            out.append(FusedLayer(head.name, tuple(ops), tuple(shape(s) for s in head.inputs), tail.shape))
        head = tail = node
        ops = [node.op]
    if head is not None:
        out.append(FusedLayer(head.name, tuple(ops), tuple(shape(s) for s in head.inputs), tail.shape))
    return out


# --- keys, families and features ----------------------------------------------------------------
def _pair(v: int | tuple[int, int]) -> str:
    a, b = (v, v) if isinstance(v, int) else v
    return f"{a}x{b}"


def op_key(op: Op) -> str:
    """A canonical text form of an op spec (equal ops, equal keys; ``3`` and ``(3, 3)`` alike)."""
    if isinstance(op, Conv2d):
        return (
            f"Conv2d({op.in_channels},{op.out_channels},k{_pair(op.kernel)},s{_pair(op.stride)},"
            f"p{_pair(op.pad)},g{op.groups},d{op.dilation}{',bias' if op.bias else ''})"
        )
    fields = ",".join(f"{f.name}={getattr(op, f.name)!r}" for f in dataclasses.fields(op))  # type: ignore[arg-type]
    return f"{type(op).__name__}({fields})"


def _shape_text(shape: Shape) -> str:
    return "x".join(map(str, shape))


def layer_key(layer: FusedLayer) -> str:
    """``Conv2d(16,32,k3x3,...)+BatchNorm2d(...)+Activation(fn='relu6')@16x56x56``."""
    return "+".join(op_key(op) for op in layer.ops) + "@" + ";".join(_shape_text(s) for s in layer.in_shapes)


def family(op: Op) -> str:
    """Coarse op family for the fallback model: conv, pwconv, dwconv, gconv, linear, pool, add..."""
    if isinstance(op, Conv2d):
        if op.groups > 1:
            return "dwconv" if op.groups == op.in_channels == op.out_channels else "gconv"
        return "pwconv" if op.kernel == (1, 1) else "conv"
    return op.kind


def features(layer: FusedLayer) -> tuple[int, int]:
    """(MACs, bytes moved): conv/linear MACs; fp32 inputs + output + weights."""
    head = layer.ops[0]
    out = layer.out_shape
    macs = head.macs(list(layer.in_shapes), out)
    values = sum(numel(s) for s in layer.in_shapes) + numel(out) + sum(op.params() for op in layer.ops)
    return macs, values * BYTES_PER_VALUE


# --- file format ----------------------------------------------------------------------------------
class TableEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str
    family: str
    macs: int = Field(ge=0)
    bytes: int = Field(ge=0)
    ms: float = Field(ge=0)
    iqr_ms: float = Field(default=0.0, ge=0)


class TableFile(BaseModel):
    """What ``LatencyTable.save`` writes; validated on load."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["edgenas-latency-table"] = FORMAT
    version: Literal[1] = 1
    backend: str
    threads: int = Field(ge=1)
    runs: int = Field(ge=1)
    host: str = ""
    created: str = ""
    source: str = ""  # what the entries were measured from, e.g. "mcunet x30 seed 0"
    scale: float = Field(default=1.0, gt=0)
    offset_ms: float = 0.0
    call_overhead_ms: float = Field(default=0.0, ge=0)  # in every entry; paid once per network
    entries: list[TableEntry]


@dataclass(frozen=True, slots=True)
class LinearFit:
    """``ms = a*MMACs + b*MB + c``, non-negative coefficients."""

    a: float
    b: float
    c: float
    n: int

    def __call__(self, macs: int, nbytes: int) -> float:
        return self.a * macs / 1e6 + self.b * nbytes / 1e6 + self.c


def fit_linear(rows: Sequence[TableEntry]) -> LinearFit:
    x = np.array([[r.macs / 1e6, r.bytes / 1e6, 1.0] for r in rows], dtype=np.float64)
    y = np.array([r.ms for r in rows], dtype=np.float64)
    coef, _ = nnls(x, y)
    return LinearFit(float(coef[0]), float(coef[1]), float(coef[2]), len(rows))


def host_description() -> str:
    return f"{platform.machine()} {platform.processor() or platform.system()} torch {torch.__version__}"


# --- the table ------------------------------------------------------------------------------------
class LatencyTable:
    """Per-layer latencies of one backend on one machine, and the predictor over them."""

    def __init__(self, meta: TableFile) -> None:
        self.meta = meta
        self.entries: dict[str, TableEntry] = {e.key: e for e in meta.entries}
        self.fits = self._fit()
        # memo of layer -> ms: layers are frozen specs, so this only saves time, never changes a number
        self._memo: dict[tuple[tuple[Op, ...], tuple[Shape, ...]], tuple[float, bool]] = {}
        self._op_keys: dict[Op, str] = {}

    def _fit(self) -> dict[str, LinearFit]:
        rows = list(self.entries.values())
        fits: dict[str, LinearFit] = {}
        if rows:
            fits["*"] = fit_linear(rows)
        by_family: dict[str, list[TableEntry]] = {}
        for r in rows:
            by_family.setdefault(r.family, []).append(r)
        for fam, group in by_family.items():
            if len(group) >= MIN_FIT_POINTS:
                fits[fam] = fit_linear(group)
        return fits

    @property
    def backend(self) -> str:
        return self.meta.backend

    @property
    def threads(self) -> int:
        return self.meta.threads

    def __len__(self) -> int:
        return len(self.entries)

    def _key(self, layer: FusedLayer) -> str:
        """``layer_key`` with op keys remembered per table (the same ops recur across archs)."""
        keys = self._op_keys
        parts = []
        for op in layer.ops:
            k = keys.get(op)
            if k is None:
                k = keys[op] = op_key(op)
            parts.append(k)
        return "+".join(parts) + "@" + ";".join(_shape_text(s) for s in layer.in_shapes)

    def layer_ms(self, layer: FusedLayer) -> tuple[float, bool]:
        """(ms, found in the table) for one fused layer."""
        memo_key = layer[1:3]
        found = self._memo.get(memo_key)
        if found is not None:
            return found
        entry = self.entries.get(self._key(layer))
        if entry is not None:
            found = (entry.ms, True)
        else:
            if not self.fits:
                raise EdgenasError(f"latency table has no entries; {REBUILD}")
            fit = self.fits.get(family(layer.ops[0]), self.fits["*"])
            found = (max(0.0, fit(*features(layer))), False)
        self._memo[memo_key] = found
        return found

    def raw_sum(self, graph: LayerGraph) -> float:
        """Sum of the per-layer latencies (no calibration), the per-call overhead counted once."""
        over = self.meta.call_overhead_ms
        if not over:
            return sum(self.layer_ms(layer)[0] for layer in fused_layers(graph))
        return over + sum(max(0.0, self.layer_ms(layer)[0] - over) for layer in fused_layers(graph))

    def predict(self, graph: LayerGraph) -> float:
        """Predicted batch-1 latency of ``graph`` in ms: ``scale * sum(layers) + offset``."""
        return self.meta.scale * self.raw_sum(graph) + self.meta.offset_ms

    def coverage(self, graph: LayerGraph) -> float:
        """Fraction of the graph's fused layers found in the table (the rest use the fallback)."""
        layers = fused_layers(graph)
        return sum(self.layer_ms(layer)[1] for layer in layers) / max(1, len(layers))

    def breakdown(self, graph: LayerGraph) -> list[tuple[str, str, float, bool]]:
        """(layer name, key, ms, found) per fused layer, for reading a prediction."""
        return [(layer.name, layer_key(layer), *self.layer_ms(layer)) for layer in fused_layers(graph)]

    def with_calibration(self, scale: float, offset_ms: float) -> LatencyTable:
        return LatencyTable(self.meta.model_copy(update={"scale": scale, "offset_ms": offset_ms}))

    # --- persistence ------------------------------------------------------------------------------
    def to_json(self) -> str:
        return self.meta.model_dump_json(indent=1)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n")

    @classmethod
    def from_json(cls, text: str, origin: str = "latency table") -> LatencyTable:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise EdgenasError(
                f"{origin} is not valid JSON ({e.msg} at line {e.lineno}); {REBUILD}"
            ) from None
        try:
            meta = TableFile.model_validate(data)
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "top level"
            raise EdgenasError(
                f"{origin} is malformed at {where}: {err['msg']}; {REBUILD}"
            ) from None
        return cls(meta)

    @classmethod
    def load(cls, path: str | Path) -> LatencyTable:
        p = Path(path)
        if not p.is_file():
            raise EdgenasError(
                f"latency table {p} not found; create it with 'edgenas latency table build --out {p}'"
            )
        return cls.from_json(p.read_text(), f"latency table {p}")


def predict_latency_ms(graph: LayerGraph, table: LatencyTable) -> float:
    """Predicted batch-1 latency (ms) of ``graph`` on the table's backend: for search constraints."""
    return table.predict(graph)


# --- measuring layers -----------------------------------------------------------------------------
def _add(*xs: torch.Tensor) -> torch.Tensor:
    out = xs[0] + xs[1]
    for x in xs[2:]:
        out = out + x
    return out


# ops with several inputs have no module form: how a fused layer computes them
MULTI_INPUT: dict[type[Op], Callable[..., torch.Tensor]] = {
    Add: _add,
    Mul: torch.mul,
    Concat: lambda *xs: torch.cat(xs, 1),
}


class _FusedModule(nn.Module):
    """One fused layer as a module: the head op, then its folded BN/activations."""

    def __init__(self, layer: FusedLayer) -> None:
        super().__init__()
        head = layer.ops[0]
        self.fn = MULTI_INPUT.get(type(head))
        self.head = None if self.fn is not None else head.to_module()
        self.tail = nn.Sequential(*(op.to_module() for op in layer.ops[1:]))

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        y = self.fn(*xs) if self.fn is not None else self.head(*xs)
        return self.tail(y)


def layer_module(layer: FusedLayer) -> nn.Module | None:
    """The fused layer as an eval-mode module (None: an op with no module form, e.g. Opaque)."""
    try:
        return _FusedModule(layer).eval()
    except NotImplementedError:
        return None


def distinct_layers(graphs: Iterable[LayerGraph]) -> dict[str, FusedLayer]:
    """Every distinct fused layer of ``graphs``, by key, in first-seen order."""
    out: dict[str, FusedLayer] = {}
    for graph in graphs:
        for layer in fused_layers(graph):
            out.setdefault(layer_key(layer), layer)
    return out


def build_table(
    graphs: Sequence[LayerGraph], backend: str = "torch", runs: int = 20, warmup: int = 3, threads: int = 1,
    source: str = "", progress: ProgressFn | None = None, seed: int = 0,
    modules: Sequence[nn.Module] | None = None,
) -> LatencyTable:
    """Measure every distinct fused layer of ``graphs`` in isolation (interleaved) into a table.

    With ``modules`` (the network of each graph), the networks are measured end to end in the
    same interleaved rounds as the layers, so both see the same machine load, and the table is
    calibrated on them (``scale*sum + offset``).
    """
    if modules is not None and len(modules) != len(graphs):
        raise EdgenasError(f"got {len(modules)} modules for {len(graphs)} graphs; give one per graph")
    layers = distinct_layers(graphs)
    measurable: list[tuple[str, FusedLayer, nn.Module]] = []
    for key, layer in layers.items():
        module = layer_module(layer)
        if module is not None:
            measurable.append((key, layer, module))
    if not measurable:
        raise EdgenasError("no measurable layers in the given networks; give at least one network")
    tick = None if progress is None else (lambda done, total: progress("measure", done, total))
    items = [(m, list(layer.in_shapes)) for _, layer, m in measurable]
    once = backend in CALL_OVERHEAD_ONCE
    if once:  # a one-element ReLU, measured alongside: the backend's fixed cost of a call
        items.append((nn.ReLU(), [(1, 1, 1)]))
    nets = list(modules or [])
    items += [(m, [g.input_shape]) for m, g in zip(nets, graphs, strict=False)]
    stats = measure_many(items, runs, warmup, threads, backend, seed, tick)
    net_stats = stats[len(stats) - len(nets):]
    stats = stats[: len(stats) - len(nets)]
    overhead = stats.pop().median_ms if once else 0.0
    entries = []
    for (key, layer, _), s in zip(measurable, stats, strict=True):
        macs, nbytes = features(layer)
        entries.append(TableEntry(key=key, family=family(layer.ops[0]), macs=macs, bytes=nbytes,
                                  ms=s.median_ms, iqr_ms=s.iqr_ms))
    meta = TableFile(
        backend=backend, threads=threads, runs=runs, host=host_description(),
        created=datetime.now(UTC).isoformat(timespec="seconds"), source=source, entries=entries,
        call_overhead_ms=overhead,
    )
    table = LatencyTable(meta)
    if not nets:
        return table
    raw = [table.raw_sum(g) for g in graphs]
    return table.with_calibration(*fit_calibration(raw, [s.median_ms for s in net_stats]))


def fit_calibration(raw_ms: Sequence[float], measured_ms: Sequence[float]) -> tuple[float, float]:
    """Least-squares ``measured ~ scale*raw + offset`` with scale > 0 (identity if it cannot fit)."""
    x, y = np.asarray(raw_ms, dtype=np.float64), np.asarray(measured_ms, dtype=np.float64)
    if len(x) < 2 or np.ptp(x) == 0:
        return 1.0, 0.0
    scale, offset = np.polyfit(x, y, 1)
    if not (math.isfinite(scale) and scale > 0):
        return 1.0, 0.0
    return float(scale), float(offset)
