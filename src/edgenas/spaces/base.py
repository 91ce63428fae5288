"""The search-space protocol shared by every space (Archai-style).

A space is a list of categorical :class:`Dim` choices plus how to turn a choice of values
into a network. ``sample``, ``mutate``, ``crossover``, ``encode``, ``size``, ``enumerate``,
validation and costing are generic; a space overrides ``active`` when some choices only
matter for some archs (e.g. the kernel of a block beyond the chosen depth), and ``size``
when that makes the plain product of option counts wrong.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict
from torch import nn

from edgenas.blocks.base import Block
from edgenas.cost import Cost, Precision, estimate
from edgenas.errors import EdgenasError
from edgenas.ops import LayerGraph, Shape

Value = int | float | str | bool | tuple


@dataclass(frozen=True)
class Dim:
    """One categorical choice: a name and its allowed values (JSON-representable)."""

    name: str
    options: tuple[Value, ...]

    def __post_init__(self) -> None:
        if not self.options:
            raise ValueError(f"dimension {self.name!r} has no options")

    def index(self, value: Value) -> int:
        return self.options.index(value)


def _canonical(value: Any) -> Any:
    """JSON gives lists where options hold tuples: compare in one form."""
    if isinstance(value, list):
        return tuple(_canonical(v) for v in value)
    return value


class Arch(BaseModel):
    """An architecture: the space it belongs to and the value of each of its dimensions."""

    model_config = ConfigDict(frozen=True)

    space: str
    values: dict[str, Any]

    def key(self) -> str:
        """Canonical JSON: equal archs have equal keys."""
        return json.dumps({"space": self.space, "values": self.values}, sort_keys=True, default=list)

    @property
    def id(self) -> str:
        """A stable short hash, the same across processes and runs."""
        return hashlib.sha1(self.key().encode()).hexdigest()[:12]

    def __hash__(self) -> int:
        return hash(self.key())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Arch) and self.key() == other.key()

    def __getitem__(self, name: str) -> Any:
        return self.values[name]


class SearchSpace(ABC):
    """Base class of every search space; subclasses define dims and how to build an arch."""

    name: ClassVar[str] = "?"

    @abstractmethod
    def dims(self) -> Sequence[Dim]:
        """Every dimension, in a fixed order (the encoding follows it)."""

    @abstractmethod
    def block(self, arch: Arch, num_classes: int = 10) -> Block:
        """The network of ``arch`` as a block spec (builds the module, emits the graph)."""

    @abstractmethod
    def input_shape(self, arch: Arch) -> Shape:
        """(C, H, W) input of ``arch`` (resolution may be one of its dims)."""

    def active(self, values: dict[str, Any]) -> Sequence[str]:
        """Names of the dims that change the network for these values (default: all)."""
        return [d.name for d in self.dims()]

    def to_string(self, arch: Arch) -> str:
        """A readable one-line form; spaces with an official format override it."""
        return ",".join(f"{k}={arch.values[k]}" for k in self.active(arch.values))

    def describe(self) -> dict[str, Any]:
        """Space options shown by ``edgenas space info``."""
        return {}

    # --- generic operations ------------------------------------------------------------------
    def _dim_map(self) -> dict[str, Dim]:
        return {d.name: d for d in self.dims()}

    def _normalise(self, values: dict[str, Any]) -> dict[str, Any]:
        """Inactive dims get their first option, so equal networks have equal archs."""
        dims = self._dim_map()
        active = set(self.active(values))
        return {n: (v if n in active else dims[n].options[0]) for n, v in values.items()}

    def make(self, values: dict[str, Any]) -> Arch:
        """Validate ``values`` into an :class:`Arch`; a bad field names its allowed values."""
        dims = self._dim_map()
        if not isinstance(values, dict):
            raise EdgenasError(f"arch values must be an object of dimension -> value for space {self.name}")
        unknown = sorted(set(values) - set(dims))
        if unknown:
            raise EdgenasError(
                f"arch field {unknown[0]!r} is not a dimension of space {self.name}; "
                f"dimensions: {', '.join(dims)}"
            )
        clean: dict[str, Any] = {}
        for name, dim in dims.items():
            if name not in values:
                raise EdgenasError(f"arch is missing field {name!r}; allowed values: {_fmt(dim.options)}")
            value = _canonical(values[name])
            if value not in dim.options:
                raise EdgenasError(
                    f"arch field {name!r} = {values[name]!r} is not allowed; "
                    f"choose one of {_fmt(dim.options)}"
                )
            clean[name] = dim.options[dim.index(value)]  # 1 and 1.0 are one value: store the option
        self.check(clean)
        return Arch(space=self.name, values=self._normalise(clean))

    def check(self, values: dict[str, Any]) -> None:
        """Extra cross-field validation; raise :class:`EdgenasError` (default: nothing)."""
        return None

    def parse(self, data: str | dict[str, Any]) -> Arch:
        """An arch from JSON text or a dict, as written by ``Arch.model_dump_json()``."""
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as e:
                raise EdgenasError(
                    f"arch file is not valid JSON ({e.msg} at line {e.lineno}); fix the file"
                ) from None
        if not isinstance(data, dict):
            raise EdgenasError('arch JSON must be an object like {"space": ..., "values": {...}}')
        space = data.get("space", self.name)
        if space != self.name:
            raise EdgenasError(f"arch is from space {space!r}, not {self.name!r}; pass --space {space}")
        values = data.get("values", {k: v for k, v in data.items() if k != "space"})
        return self.make(values)

    def sample(self, rng: np.random.Generator) -> Arch:
        values = {d.name: d.options[int(rng.integers(len(d.options)))] for d in self.dims()}
        return self.make(values)

    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch:
        """Change exactly one active choice to a different value."""
        dims = self._dim_map()
        candidates = [n for n in self.active(arch.values) if len(dims[n].options) > 1]
        name = candidates[int(rng.integers(len(candidates)))]
        options = [o for o in dims[name].options if o != arch.values[name]]
        values = dict(arch.values)
        values[name] = options[int(rng.integers(len(options)))]
        return self.make(values)

    def crossover(self, a: Arch, b: Arch, rng: np.random.Generator) -> Arch:
        """Uniform crossover: each dimension from one parent at random."""
        picks = rng.integers(2, size=len(self.dims()))
        values = {d.name: (a, b)[int(p)].values[d.name] for d, p in zip(self.dims(), picks, strict=True)}
        return self.make(values)

    def encode(self, arch: Arch) -> np.ndarray:
        """Fixed-length one-hot vector over all dims; inactive dims are all zero."""
        active = set(self.active(arch.values))
        parts = []
        for d in self.dims():
            v = np.zeros(len(d.options), dtype=np.float32)
            if d.name in active:
                v[d.index(arch.values[d.name])] = 1.0
            parts.append(v)
        return np.concatenate(parts)

    def size(self) -> int:
        """Exact number of distinct archs (override when some dims are conditional)."""
        return math.prod(len(d.options) for d in self.dims())

    def enumerate(self, limit: int = 1_000_000) -> Iterator[Arch]:
        """Every distinct arch, for spaces of at most ``limit`` members."""
        if self.size() > limit:
            raise EdgenasError(
                f"space {self.name} has {self.size():,} archs, too many to enumerate (limit {limit:,})"
            )
        seen: set[str] = set()
        dims = self.dims()
        for combo in itertools.product(*(d.options for d in dims)):
            arch = self.make(dict(zip((d.name for d in dims), combo, strict=True)))
            if arch.key() not in seen:
                seen.add(arch.key())
                yield arch

    def graph(self, arch: Arch, num_classes: int = 10) -> LayerGraph:
        from edgenas.blocks.base import graph_of

        return graph_of(self.block(arch, num_classes), self.input_shape(arch))

    def build(self, arch: Arch, num_classes: int = 10) -> nn.Module:
        return self.block(arch, num_classes).build()

    def cost(self, arch: Arch, num_classes: int = 10, precision: Precision = "int8") -> Cost:
        return estimate(self.graph(arch, num_classes), precision)


def _fmt(options: Sequence[Value]) -> str:
    shown = ", ".join(json.dumps(o, default=list) for o in options[:12])
    return shown + (f", ... ({len(options)} in all)" if len(options) > 12 else "")


SpaceFactory = Callable[..., SearchSpace]
SPACES: dict[str, SpaceFactory] = {}


def register_space(name: str) -> Callable[[SpaceFactory], SpaceFactory]:
    def deco(factory: SpaceFactory) -> SpaceFactory:
        if name in SPACES:
            raise ValueError(f"space {name!r} registered twice")
        SPACES[name] = factory
        return factory

    return deco


def get_space(name: str, **options: Any) -> SearchSpace:
    """A registered space by name, with its options (e.g. ``get_space("nasnet", blocks=5)``)."""
    _load_all()
    if name not in SPACES:
        raise EdgenasError(f"unknown space {name!r}; known spaces: {', '.join(sorted(SPACES))}")
    return SPACES[name](**options)


def list_spaces() -> list[str]:
    _load_all()
    return sorted(SPACES)


def _load_all() -> None:
    """Import every space module so its ``@register_space`` line runs."""
    import importlib
    import pkgutil

    import edgenas.spaces as package

    for info in pkgutil.iter_modules(package.__path__):
        if info.name not in ("base", "__init__"):
            importlib.import_module(f"edgenas.spaces.{info.name}")
