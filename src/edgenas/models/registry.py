"""Model registry: ``@register_model`` and ``create_model(name, ...)``, timm style.

A registered factory returns a block spec, so every model can be built as an nn.Module or
costed analytically from the same description.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from edgenas.blocks.base import Block, graph_of
from edgenas.errors import EdgenasError
from edgenas.ops import LayerGraph

Factory = Callable[..., Block]


@dataclass(frozen=True)
class ModelEntry:
    name: str
    factory: Factory
    resolution: int  # the input size the model is published at
    description: str


MODELS: dict[str, ModelEntry] = {}


def register_model(
    name: str, resolution: int = 224, description: str = ""
) -> Callable[[Factory], Factory]:
    def deco(fn: Factory) -> Factory:
        if name in MODELS:
            raise ValueError(f"model {name!r} registered twice")
        doc = description or (fn.__doc__ or "").strip().splitlines()[0]
        MODELS[name] = ModelEntry(name, fn, resolution, doc)
        return fn

    return deco


def model_entry(name: str) -> ModelEntry:
    _load_all()
    if name not in MODELS:
        raise EdgenasError(f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def model_spec(
    name: str, num_classes: int = 1000, width_mult: float | None = None, **kwargs
) -> Block:
    """The block spec of a registered model (``width_mult`` None: the model's own default)."""
    entry = model_entry(name)
    if width_mult is not None:
        if not (isinstance(width_mult, (int, float)) and math.isfinite(width_mult) and width_mult > 0):
            raise EdgenasError(f"width multiplier must be > 0, got {width_mult}")
        kwargs["width_mult"] = width_mult
    if num_classes <= 0:
        raise EdgenasError(f"num_classes must be a positive integer, got {num_classes}")
    return entry.factory(num_classes=num_classes, **kwargs)


def create_model(
    name: str, num_classes: int = 1000, width_mult: float | None = None, **kwargs
) -> nn.Module:
    """Build a registered model as an nn.Module."""
    return model_spec(name, num_classes, width_mult, **kwargs).build()


def model_graph(
    name: str, resolution: int | None = None, num_classes: int = 1000,
    width_mult: float | None = None,
    in_channels: int = 3, **kwargs,
) -> LayerGraph:
    """The analytic layer graph of a registered model at ``resolution`` (no torch modules)."""
    resolution = model_entry(name).resolution if resolution is None else resolution
    if resolution <= 0:
        raise EdgenasError(f"resolution must be > 0, got {resolution}")
    spec = model_spec(name, num_classes, width_mult, **kwargs)
    return graph_of(spec, (in_channels, resolution, resolution))


def list_models() -> list[ModelEntry]:
    _load_all()
    return [MODELS[k] for k in sorted(MODELS)]


def _load_all() -> None:
    """Import the model modules so their ``@register_model`` lines run."""
    import edgenas.models.zoo  # noqa: F401
