"""DARTS (Liu et al., ICLR 2019): differentiable search over cell spaces by continuous relaxation.

Every edge of the cell becomes a :class:`MixedOp`, ``sum_k softmax(alpha)_k * op_k(x)``, over
the candidate op modules of the space (the same block specs the discrete networks are built
from, so a derived arch can inherit the supernet's weights exactly). Search is DARTS'
first-order bilevel optimisation (:func:`bilevel_search`): each step first updates the
architecture parameters ``alpha`` with Adam on a validation batch, then the network weights
with SGD on a training batch; each loss reaches only its own parameters.

Discretisation (:data:`SELECTIONS`):

- ``argmax``: the op of largest alpha on each edge. On ``nb201`` this is the benchmark's own
  DARTS rule (``none`` may win); on ``darts`` it is DARTS' genotype rule (per node, the two
  input edges of largest non-``none`` weight, each with its best non-``none`` op).
- ``no-none``: as ``argmax`` with ``none`` never chosen (the fix NB201 follow-ups use).
- ``pt``: DARTS-PT's perturbation-based selection (Wang et al., ICLR 2021): edge by edge,
  remove each op from the mixture and measure the supernet's validation accuracy; keep the
  op whose removal hurts most, fix the edge to it, optionally tune the weights, go on.

The supernet also knows the network it stands for: ``space.make(values)`` archs, and
:meth:`CellSupernet.inherited_state` maps its weights onto ``space.build(arch)``.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgenas.blocks.base import Block, seq
from edgenas.blocks.cell_ops import DARTS_OPS, NB201_OPS
from edgenas.blocks.cells import reduction_layers, two_input_preprocess
from edgenas.errors import EdgenasError
from edgenas.estimate.data import Dataset
from edgenas.estimate.train import isolated_rng
from edgenas.ops import Activation, BatchNorm2d, Conv2d, GlobalPool, Linear
from edgenas.spaces.base import Arch, SearchSpace
from edgenas.spaces.darts import CELLS, NODES
from edgenas.spaces.nb201 import EDGES, edge_dim, resnet_reduction

Weights = dict[str, torch.Tensor]  # alpha group -> (edges, ops) mixture weights


# --- the mixed op -------------------------------------------------------------------------------
class MixedOp(nn.Module):
    """One edge of the supernet: ``sum_k w_k * op_k(x)`` over its candidate op modules.

    Ops whose weight is exactly 0 are skipped when the weights need no gradient (a
    discretised or perturbed edge), so a one-hot edge costs one op.
    """

    def __init__(self, candidates: Sequence[Block]) -> None:
        super().__init__()
        self.candidates = nn.ModuleList(b.build() for b in candidates)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        skip = [False] * len(self.candidates)
        if not weights.requires_grad:
            skip = [w == 0.0 for w in weights.tolist()]
        out: torch.Tensor | None = None
        for k, op in enumerate(self.candidates):
            if skip[k]:
                continue
            y = weights[k] * op(x)
            out = y if out is None else out + y
        return out if out is not None else self.candidates[0](x).mul(0.0)


class _Node(nn.Module):
    """Holds a node's mixed edges under the discrete cell's names (``nodes.j.ops.i``)."""

    def __init__(self, ops: Sequence[MixedOp]) -> None:
        super().__init__()
        self.ops = nn.ModuleList(ops)


# --- supernets ----------------------------------------------------------------------------------
class CellSupernet(nn.Module, ABC):
    """A weight-sharing network over a cell space with architecture parameters ``alphas``.

    ``alphas[group]`` is an ``(edges, ops)`` matrix; ``edge_labels[group]`` names its rows.
    ``fixed`` (group -> weights) replaces ``softmax(alpha)`` in the forward pass when set:
    perturbation selection and evaluation of a discretised supernet use it.
    """

    space: SearchSpace

    def __init__(self, space: SearchSpace, ops: Sequence[str], groups: dict[str, list[str]]) -> None:
        super().__init__()
        self.space = space
        self.op_names = tuple(ops)
        self.edge_labels = groups
        self.alphas = nn.ParameterDict({
            g: nn.Parameter(1e-3 * torch.randn(len(rows), len(ops))) for g, rows in groups.items()
        })
        self.fixed: Weights | None = None

    # parameters of the two levels
    def arch_parameters(self) -> list[nn.Parameter]:
        return list(self.alphas.values())

    def weight_parameters(self) -> list[nn.Parameter]:
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def mixture(self) -> Weights:
        if self.fixed is not None:
            return self.fixed
        return {g: F.softmax(a, dim=-1) for g, a in self.alphas.items()}

    def probabilities(self) -> dict[str, np.ndarray]:
        """softmax(alpha) of each group, as arrays (edges x ops)."""
        with torch.no_grad():
            return {g: F.softmax(a, dim=-1).numpy().copy() for g, a in self.alphas.items()}

    # hooks of the bilevel loop (ProxylessNAS samples paths in them)
    def before_arch_step(self, gen: torch.Generator) -> None:
        return None

    def before_weight_step(self, gen: torch.Generator) -> None:
        return None

    def arch_loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, y)

    def epoch_metrics(self) -> dict[str, float]:
        return {}

    # discretisation
    @abstractmethod
    def derive(self, scores: dict[str, np.ndarray] | None = None, exclude: Sequence[str] = ()) -> Arch:
        """The arch of largest ``scores`` (default: the alphas), never choosing ``exclude`` ops."""

    @abstractmethod
    def picks(self, arch: Arch) -> dict[str, tuple[str, int]]:
        """Supernet edge module name -> (its name in ``space.build(arch)``, chosen op index)."""

    def inherited_state(self, arch: Arch) -> dict[str, torch.Tensor]:
        """The state dict of ``space.build(arch, num_classes)`` taken from this supernet."""
        return inherit_state(self.state_dict(), self.picks(arch))


_MIXED = re.compile(r"^(.*)\.candidates\.(\d+)\.(.+)$")


def inherit_state(
    state: dict[str, torch.Tensor], picks: dict[str, tuple[str, int]]
) -> dict[str, torch.Tensor]:
    """Map a supernet state dict onto the discrete network of one choice per mixed op.

    ``picks[prefix] = (new_prefix, k)`` keeps candidate ``k`` of the mixed op at ``prefix``
    and renames ``prefix.candidates.k.rest`` to ``new_prefix.rest``; other candidates, and
    mixed ops not picked, are dropped; architecture parameters are dropped; the rest is kept.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith("alphas."):
            continue
        m = _MIXED.match(key)
        if m is None:
            out[key] = value
            continue
        prefix, k, rest = m.group(1), int(m.group(2)), m.group(3)
        pick = picks.get(prefix)
        if pick is not None and pick[1] == k:
            out[f"{pick[0]}.{rest}"] = value
    return out


def _best(row: np.ndarray, allowed: np.ndarray) -> int:
    return int(np.flatnonzero(allowed)[np.argmax(row[allowed])])


def _allowed(ops: Sequence[str], exclude: Sequence[str]) -> np.ndarray:
    allowed = np.array([op not in exclude for op in ops])
    if not allowed.any():
        raise EdgenasError(f"every op is excluded ({', '.join(exclude)}); exclude fewer ops")
    return allowed


class _NB201Cell(nn.Module):
    def __init__(self, channels: int, ops: Sequence[str]) -> None:
        super().__init__()
        self.nodes = nn.ModuleList(
            _Node([MixedOp([NB201_OPS[o](channels, 1) for o in ops]) for _ in range(j)]) for j in (1, 2, 3)
        )
        self.rows = [[EDGES.index((i, j)) for i in range(j)] for j in (1, 2, 3)]

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        states = [x]
        for node, rows in zip(self.nodes, self.rows, strict=True):
            y = node.ops[0](states[0], weights[rows[0]])
            for i in range(1, len(rows)):
                y = y + node.ops[i](states[i], weights[rows[i]])
            states.append(y)
        return states[-1]


class NB201Supernet(CellSupernet):
    """The NAS-Bench-201 network with every cell edge mixed; one alpha matrix (6 x 5) shared by all cells.

    Built from the space's ``channels`` and ``cells_per_stage``; module names follow
    :func:`edgenas.spaces.nb201.nb201_network`, so a derived arch inherits the weights exactly.
    """

    def __init__(self, space: SearchSpace, num_classes: int = 10) -> None:
        from edgenas.spaces.nb201 import OPS

        super().__init__(space, OPS, {"cell": [edge_dim(i, j) for i, j in EDGES]})
        c0, n = space.channels, space.cells_per_stage  # type: ignore[attr-defined]
        self.features = nn.Module()
        self.features.stem = seq(Conv2d(3, c0, 3, 1), BatchNorm2d(c0)).build()
        cells: list[nn.Module] = []
        c = c0
        for stage in range(3):
            if stage:
                cells.append(resnet_reduction(c, 2 * c).build())
                c *= 2
            cells += [_NB201Cell(c, OPS) for _ in range(n)]
        self.features.cells = nn.ModuleList(cells)
        self.features.lastact = seq(BatchNorm2d(c), Activation("relu")).build()
        self.pool = GlobalPool(flatten=True).to_module()
        self.classifier = seq(Linear(c, num_classes)).build()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.mixture()["cell"]
        x = self.features.stem(x)
        for cell in self.features.cells:
            x = cell(x, w) if isinstance(cell, _NB201Cell) else cell(x)
        return self.classifier(self.pool(self.features.lastact(x)))

    def derive(self, scores: dict[str, np.ndarray] | None = None, exclude: Sequence[str] = ()) -> Arch:
        s = (scores or self.probabilities())["cell"]
        allowed = _allowed(self.op_names, exclude)
        return self.space.make({
            edge_dim(i, j): self.op_names[_best(s[r], allowed)] for r, (i, j) in enumerate(EDGES)
        })

    def picks(self, arch: Arch) -> dict[str, tuple[str, int]]:
        out = {}
        for c, cell in enumerate(self.features.cells):
            if not isinstance(cell, _NB201Cell):
                continue
            for i, j in EDGES:
                name = f"features.cells.{c}.nodes.{j - 1}.ops.{i}"
                out[name] = (name, self.op_names.index(arch.values[edge_dim(i, j)]))
        return out


class _DartsCell(nn.Module):
    """A DARTS search cell: every node reads every earlier state through a mixed op."""

    def __init__(self, c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool,
                 ops: Sequence[str]) -> None:
        super().__init__()
        self.reduction = reduction
        self.preprocess = nn.ModuleList(p.build() for p in two_input_preprocess(c_pp, c_p, c, reduction_prev))
        self.nodes = nn.ModuleList(
            _Node([MixedOp([DARTS_OPS[o](c, 2 if reduction and src < 2 else 1) for o in ops])
                   for src in range(node)])
            for node in NODES
        )

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess[0](s0), self.preprocess[1](s1)]
        row = 0
        for node in self.nodes:
            y = node.ops[0](states[0], weights[row])
            for src in range(1, len(node.ops)):
                y = y + node.ops[src](states[src], weights[row + src])
            row += len(node.ops)
            states.append(y)
        return torch.cat(states[2:], dim=1)


class DartsSupernet(CellSupernet):
    """DARTS' search network (NetworkCIFAR with mixed cells): one alpha matrix (14 x 8) per cell type."""

    def __init__(self, space: SearchSpace, num_classes: int = 10) -> None:
        from edgenas.spaces.darts import OPS

        rows = [f"{node}<-{src}" for node in NODES for src in range(node)]  # node <- input state
        super().__init__(space, OPS, {cell: list(rows) for cell in CELLS})
        channels, layers = space.channels, space.layers  # type: ignore[attr-defined]
        c_stem = space.stem_multiplier * channels  # type: ignore[attr-defined]
        self.features = nn.Module()
        self.features.stem = seq(Conv2d(3, c_stem, 3, 1), BatchNorm2d(c_stem)).build()
        reductions = reduction_layers(layers)
        c_pp, c_p, c, reduction_prev = c_stem, c_stem, channels, False
        cells = []
        for i in range(layers):
            reduction = i in reductions
            c = 2 * c if reduction else c
            cells.append(_DartsCell(c_pp, c_p, c, reduction, reduction_prev, OPS))
            c_pp, c_p, reduction_prev = c_p, len(NODES) * c, reduction
        self.features.cells = nn.ModuleList(cells)
        self.pool = GlobalPool(flatten=True).to_module()
        self.classifier = seq(Linear(c_p, num_classes)).build()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.mixture()
        s0 = s1 = self.features.stem(x)
        for cell in self.features.cells:
            s0, s1 = s1, cell(s0, s1, w["reduce" if cell.reduction else "normal"])
        return self.classifier(self.pool(s1))

    def derive(self, scores: dict[str, np.ndarray] | None = None, exclude: Sequence[str] = ("none",)) -> Arch:
        """DARTS' genotype rule: per node, the 2 inputs of largest allowed weight, each with its best op."""
        scores = scores or self.probabilities()
        allowed = _allowed(self.op_names, (*exclude, "none"))
        values: dict[str, Any] = {}
        for cell in CELLS:
            s = scores[cell]
            row = 0
            for node in NODES:
                block = s[row:row + node]
                strength = [float(block[src][allowed].max()) for src in range(node)]
                top = sorted(sorted(range(node), key=lambda src: -strength[src])[:2])
                values[f"{cell}.node{node}.inputs"] = tuple(top)
                for k, src in enumerate(top):
                    values[f"{cell}.node{node}.op{k}"] = self.op_names[_best(block[src], allowed)]
                row += node
        return self.space.make(values)

    def picks(self, arch: Arch) -> dict[str, tuple[str, int]]:
        out = {}
        for c, cell in enumerate(self.features.cells):
            kind = "reduce" if cell.reduction else "normal"
            for n, node in enumerate(NODES):
                pair = arch.values[f"{kind}.node{node}.inputs"]
                for k, src in enumerate(pair):
                    op = self.op_names.index(arch.values[f"{kind}.node{node}.op{k}"])
                    base = f"features.cells.{c}.nodes.{n}.ops"
                    out[f"{base}.{src}"] = (f"{base}.{k}", op)
        return out


#: space name -> supernet class (a space class that builds a supernet registers here)
SUPERNETS: dict[str, Callable[[SearchSpace, int], CellSupernet]] = {
    "nb201": NB201Supernet,
    "darts": DartsSupernet,
}


def make_supernet(space: SearchSpace, num_classes: int = 10) -> CellSupernet:
    """The DARTS supernet of ``space`` (nb201 or darts)."""
    if space.name not in SUPERNETS:
        raise EdgenasError(
            f"DARTS has no supernet for space {space.name!r}; use one of {', '.join(sorted(SUPERNETS))}"
        )
    return SUPERNETS[space.name](space, num_classes)


# --- the bilevel search -------------------------------------------------------------------------
@dataclass(frozen=True)
class BilevelConfig:
    """First-order DARTS settings; defaults are DARTS' (NAS-Bench-201's DARTS baseline)."""

    epochs: int = 2
    batch_size: int = 64
    lr: float = 0.025  # weights: SGD with cosine decay to lr_min
    lr_min: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    alpha_lr: float = 3e-4  # architecture: Adam
    alpha_betas: tuple[float, float] = (0.5, 0.999)
    alpha_weight_decay: float = 1e-3
    warmup_epochs: int = 0  # weight-only epochs before the first alpha step
    max_steps: int | None = None  # weight steps in all (stops inside an epoch)
    seed: int = 0
    threads: int | None = None

    def __post_init__(self) -> None:
        checks = [
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.batch_size >= 2, f"batch size must be >= 2, got {self.batch_size}"),
            (self.lr > 0 and self.alpha_lr > 0, "learning rates must be > 0"),
            (0 <= self.warmup_epochs < self.epochs,
             f"warmup epochs must be in [0, epochs), got {self.warmup_epochs}"),
            (self.max_steps is None or self.max_steps >= 1, f"max steps must be >= 1, got {self.max_steps}"),
        ]
        for ok, message in checks:
            if not ok:
                raise EdgenasError(f"{message}; fix the search settings")


@dataclass(frozen=True)
class SearchEpoch:
    """One epoch of search: losses/accuracies of the weight (train) and alpha (val) steps."""

    epoch: int
    epochs: int
    train_loss: float
    train_acc: float
    val_loss: float | None
    val_acc: float | None
    seconds: float
    arch: str  # the argmax arch after this epoch, in the space's notation
    probabilities: dict[str, list] = field(repr=False)  # softmax(alpha) of each group
    metrics: dict[str, float] = field(default_factory=dict)  # the supernet's own, e.g. expected MACs


@dataclass
class SearchHistory:
    epochs: list[SearchEpoch] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


StepFn = Callable[[int, int, str], None]  # (step done, total steps, info)


class Supernet(Protocol):
    """What :func:`bilevel_search` needs of a supernet (DARTS' and ProxylessNAS' both are)."""

    space: SearchSpace

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...
    def train(self, mode: bool = True) -> Any: ...
    def arch_parameters(self) -> list[nn.Parameter]: ...
    def weight_parameters(self) -> list[nn.Parameter]: ...
    def before_arch_step(self, gen: torch.Generator) -> None: ...
    def before_weight_step(self, gen: torch.Generator) -> None: ...
    def arch_loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor: ...
    def probabilities(self) -> dict[str, np.ndarray]: ...
    def epoch_metrics(self) -> dict[str, float]: ...
    def derive(self) -> Arch: ...


def _cycle(loader: Any) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    for epoch in itertools.count():
        loader.set_epoch(epoch)
        yield from loader


def bilevel_search(
    net: Supernet, data: Dataset, config: BilevelConfig | None = None, *,
    on_step: StepFn | None = None, on_epoch: Callable[[SearchEpoch], None] | None = None,
) -> SearchHistory:
    """First-order bilevel optimisation: alpha on val batches (Adam), weights on train (SGD).

    Each step: an alpha step on the next val batch (after ``warmup_epochs``), then a weight
    step on the next train batch; ``backward(inputs=...)`` keeps each loss's gradient on its
    own parameters. Seeded: the same config gives the same alphas on the same machine.
    """
    config = config or BilevelConfig()
    if len(data.val) < 2:
        raise EdgenasError("bilevel search needs a val split for its alpha steps; use val_fraction > 0")
    with isolated_rng(config.seed, config.threads):
        return _search(net, data, config, on_step, on_epoch)


def _search(net: Supernet, data: Dataset, config: BilevelConfig, on_step: StepFn | None,
            on_epoch: Callable[[SearchEpoch], None] | None) -> SearchHistory:
    start = time.perf_counter()
    train_loader = data.loader("train", config.batch_size, seed=config.seed)
    val_batch = min(config.batch_size, len(data.val))
    val_stream = _cycle(data.loader("val", val_batch, shuffle=True, augment=False, drop_last=True,
                                    seed=config.seed + 1))
    weights, alphas = net.weight_parameters(), net.arch_parameters()
    w_opt = torch.optim.SGD(weights, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    a_opt = torch.optim.Adam(alphas, lr=config.alpha_lr, betas=config.alpha_betas,
                             weight_decay=config.alpha_weight_decay)
    total = config.epochs * len(train_loader)
    if config.max_steps is not None:
        total = min(total, config.max_steps)
    epochs = -(-total // len(train_loader))

    def lr_at(step: int) -> float:
        return config.lr_min + 0.5 * (config.lr - config.lr_min) * (1 + math.cos(math.pi * step / total))

    gen = torch.Generator().manual_seed(config.seed)
    history = SearchHistory()
    net.train()
    step = 0
    for epoch in range(epochs):
        t0 = time.perf_counter()
        train_loader.set_epoch(epoch)
        sums = {"tl": 0.0, "tc": 0, "tn": 0, "vl": 0.0, "vc": 0, "vn": 0, "nb": 0, "nv": 0}
        for x, y in train_loader:
            if epoch >= config.warmup_epochs:
                xv, yv = next(val_stream)
                net.before_arch_step(gen)
                logits = net(xv)
                loss = net.arch_loss(logits, yv)
                a_opt.zero_grad(set_to_none=True)
                loss.backward(inputs=alphas)
                a_opt.step()
                sums["vl"] += float(F.cross_entropy(logits.detach(), yv))
                sums["vc"] += int((logits.argmax(1) == yv).sum())
                sums["vn"] += len(yv)
                sums["nv"] += 1
            for group in w_opt.param_groups:
                group["lr"] = lr_at(step)
            net.before_weight_step(gen)
            logits = net(x)
            loss = F.cross_entropy(logits, y)
            if not torch.isfinite(loss.detach()):
                raise EdgenasError(f"search diverged: loss is {loss.item()} at step {step:,}; lower --lr")
            w_opt.zero_grad(set_to_none=True)
            loss.backward(inputs=weights)
            if config.grad_clip:
                nn.utils.clip_grad_norm_(weights, config.grad_clip)
            w_opt.step()
            sums["tl"] += float(loss.detach())
            sums["tc"] += int((logits.argmax(1) == y).sum())
            sums["tn"] += len(y)
            sums["nb"] += 1
            step += 1
            if on_step is not None:
                on_step(step, total, f"epoch {epoch + 1}/{epochs}  loss {float(loss.detach()):.3f}")
            if step >= total:
                break
        probs = net.probabilities()
        record = SearchEpoch(
            epoch, epochs, sums["tl"] / max(1, sums["nb"]), sums["tc"] / max(1, sums["tn"]),
            sums["vl"] / sums["nv"] if sums["nv"] else None, sums["vc"] / sums["vn"] if sums["vn"] else None,
            time.perf_counter() - t0, net.space.to_string(net.derive()),
            {g: p.tolist() for g, p in probs.items()}, net.epoch_metrics(),
        )
        history.epochs.append(record)
        if on_epoch is not None:
            on_epoch(record)
        if step >= total:
            break
    history.steps = step
    history.seconds = time.perf_counter() - start
    return history


# --- evaluation and perturbation-based selection --------------------------------------------------
@contextlib.contextmanager
def _frozen_bn(net: nn.Module) -> Iterator[None]:
    """Train-mode BN (batch statistics) without touching the running statistics."""
    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    was = net.training
    net.train()
    for m in bns:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, mom in zip(bns, saved, strict=True):
            m.momentum = mom
        net.train(was)


@torch.no_grad()
def supernet_accuracy(net: CellSupernet, batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
                      weights: Weights | None = None) -> float:
    """Accuracy of the supernet (batch-statistics BN) under ``weights`` (default: its alphas)."""
    saved = net.fixed
    net.fixed = weights if weights is not None else saved
    try:
        with _frozen_bn(net):
            correct = total = 0
            for x, y in batches:
                correct += int((net(x).argmax(1) == y).sum())
                total += len(y)
    finally:
        net.fixed = saved
    return correct / max(1, total)


@dataclass(frozen=True)
class PTResult:
    arch: Arch
    scores: dict[str, np.ndarray]  # accuracy drop when each op of each edge is removed
    base_acc: float  # supernet accuracy before the first edge was fixed
    final_acc: float  # accuracy with every edge fixed (the derived network's weights, shared)


def perturbation_select(
    net: CellSupernet, data: Dataset, *, batches: int = 4, batch_size: int = 128, tune_steps: int = 0,
    config: BilevelConfig | None = None, exclude: Sequence[str] = (), seed: int = 0,
) -> PTResult:
    """DARTS-PT: fix edges one at a time (in a seeded random order) to the op whose removal
    from the mixture lowers the supernet's val accuracy most, tuning the weights
    ``tune_steps`` SGD steps after each edge (alphas stay frozen)."""
    config = config or BilevelConfig()
    with isolated_rng(seed, config.threads):
        val = list(itertools.islice(
            iter(data.loader("val", min(batch_size, len(data.val)), shuffle=True, augment=False, seed=seed)),
            batches,
        ))
        fixed = {g: w.detach().clone() for g, w in net.mixture().items()}
        base = supernet_accuracy(net, val, fixed)
        scores = {g: np.zeros(tuple(w.shape)) for g, w in fixed.items()}
        order = [(g, r) for g, w in fixed.items() for r in range(w.shape[0])]
        rng = np.random.default_rng(seed)
        order = [order[i] for i in rng.permutation(len(order))]
        allowed = _allowed(net.op_names, exclude)
        train_stream = _cycle(data.loader("train", config.batch_size, seed=seed))
        opt = torch.optim.SGD(net.weight_parameters(), lr=config.lr_min, momentum=config.momentum,
                              weight_decay=config.weight_decay)
        for g, r in order:
            current = supernet_accuracy(net, val, fixed)
            for k in range(len(net.op_names)):
                trial = {h: w.clone() for h, w in fixed.items()}
                trial[g][r, k] = 0.0
                scores[g][r, k] = current - supernet_accuracy(net, val, trial)
            best = _best(scores[g][r], allowed)
            fixed[g][r] = 0.0
            fixed[g][r, best] = 1.0
            for _ in range(tune_steps):
                x, y = next(train_stream)
                net.fixed = fixed
                net.train()
                loss = F.cross_entropy(net(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward(inputs=net.weight_parameters())
                opt.step()
                net.fixed = None
        final = supernet_accuracy(net, val, fixed)
    return PTResult(net.derive(scores, exclude), scores, base, final)


# --- selection registry -----------------------------------------------------------------------------
Selection = Callable[[CellSupernet, Dataset, BilevelConfig], Arch]

SELECTIONS: dict[str, Selection] = {
    "argmax": lambda net, data, config: net.derive(),
    "no-none": lambda net, data, config: net.derive(exclude=("none",)),
    "pt": lambda net, data, config: perturbation_select(net, data, config=config, seed=config.seed).arch,
}


def select_arch(name: str, net: CellSupernet, data: Dataset, config: BilevelConfig) -> Arch:
    if name not in SELECTIONS:
        raise EdgenasError(f"unknown selection {name!r}; choose one of {', '.join(SELECTIONS)}")
    return SELECTIONS[name](net, data, config)


@dataclass(frozen=True)
class DartsResult:
    arch: Arch
    arch_string: str
    probabilities: dict[str, np.ndarray]
    edge_labels: dict[str, list[str]]
    op_names: tuple[str, ...]
    history: SearchHistory
    selection: str


def run_darts(space: SearchSpace, data: Dataset, config: BilevelConfig | None = None, *,
              selection: str = "argmax", on_step: StepFn | None = None,
              on_epoch: Callable[[SearchEpoch], None] | None = None) -> DartsResult:
    """Build the supernet of ``space``, search, discretise: the whole DARTS run in one call."""
    config = config or BilevelConfig()
    if selection not in SELECTIONS:
        raise EdgenasError(f"unknown selection {selection!r}; choose one of {', '.join(SELECTIONS)}")
    with isolated_rng(config.seed, config.threads):
        net = make_supernet(space, data.num_classes)
    history = bilevel_search(net, data, config, on_step=on_step, on_epoch=on_epoch)
    arch = select_arch(selection, net, data, config)
    return DartsResult(arch, space.to_string(arch), net.probabilities(), net.edge_labels, net.op_names,
                       history, selection)
