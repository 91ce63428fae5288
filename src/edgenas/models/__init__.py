"""Reference networks built from blocks, registered by name."""

from edgenas.models.registry import (
    MODELS,
    ModelEntry,
    create_model,
    list_models,
    model_entry,
    model_graph,
    model_spec,
    register_model,
)

__all__ = [
    "MODELS", "ModelEntry", "create_model", "list_models", "model_entry", "model_graph",
    "model_spec", "register_model",
]
