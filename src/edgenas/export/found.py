"""Load what ``edgenas search`` found: ``best_arch.json`` plus ``best_weights.pt`` -> a trained network.

``best_arch.json`` holds ``space`` and ``values`` (and optionally ``space_options``,
``num_classes``, ``dataset``, ``data_dir``); the weights file is a plain ``state_dict`` of
``space.build(arch, num_classes)``, or a checkpoint written by ``edgenas train``. Every way
these files can be wrong ends in one :class:`EdgenasError` line naming the file and the fix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgenas.errors import EdgenasError
from edgenas.spaces import Arch, SearchSpace, get_space


@dataclass
class FoundModel:
    """A trained network of a search space, ready to export."""

    space: SearchSpace
    arch: Arch
    model: nn.Module
    num_classes: int
    input_shape: tuple[int, int, int]
    meta: dict[str, Any] = field(default_factory=dict)  # the rest of best_arch.json (cost, metrics...)

    @property
    def title(self) -> str:
        return f"{self.space.name} {self.space.to_string(self.arch)}"


def read_arch_file(path: str | Path) -> dict[str, Any]:
    """The JSON object of an arch file, checked to name a space and its values."""
    path = Path(path)
    if not path.is_file():
        raise EdgenasError(f"arch file {path} not found; give the best_arch.json that edgenas search wrote")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise EdgenasError(
            f"arch file {path} is not valid JSON ({e}); restore it from the search run"
        ) from None
    if not isinstance(data, dict) or "space" not in data or not isinstance(data.get("values"), dict):
        raise EdgenasError(
            f'arch file {path} needs "space" and "values"; give the best_arch.json of a search'
        )
    return data


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a weights file (a state_dict, or an edgenas training checkpoint), weights_only."""
    from edgenas.estimate.train import CHECKPOINT_FORMAT

    path = Path(path)
    if not path.is_file():
        raise EdgenasError(
            f"weights file {path} not found; give the best_weights.pt that edgenas search wrote"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # zip, pickle, EOF and "unsupported global" errors all mean a bad file
        reason = str(e).strip().splitlines()[0][:100] if str(e).strip() else type(e).__name__
        raise EdgenasError(
            f"weights file {path} is corrupt, truncated or not a weights-only checkpoint ({reason}); "
            "rerun the search (or edgenas train) to write it again"
        ) from None
    if isinstance(state, dict) and state.get("format") == CHECKPOINT_FORMAT:
        state = state.get("best_model") or state.get("model")
    if not isinstance(state, dict) or not state or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise EdgenasError(
            f"weights file {path} holds no state_dict of tensors; give the best_weights.pt of a search"
        )
    return state


def infer_num_classes(state: dict[str, torch.Tensor]) -> int:
    """Classifier outputs: the length of the last parameter tensor (the classifier's bias or weight)."""
    last = [v for v in state.values() if v.ndim >= 1 and v.is_floating_point()]
    if not last:
        raise EdgenasError("the weights hold no parameter tensors; pass --num-classes")
    return int(last[-1].shape[0])


def state_mismatch(expected: dict[str, torch.Tensor], given: dict[str, torch.Tensor]) -> str:
    """How ``given`` differs from the state_dict a network expects, in a few words ("" if it fits)."""
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    reshaped = [k for k in expected if k in given and given[k].shape != expected[k].shape]
    parts = []
    if missing:
        parts.append(f"{len(missing)} tensor(s) missing, e.g. {missing[0]}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected, e.g. {unexpected[0]}")
    if reshaped:
        k = reshaped[0]
        shapes = "x".join(map(str, given[k].shape)), "x".join(map(str, expected[k].shape))
        parts.append(f"{len(reshaped)} of another shape, e.g. {k} {shapes[0]} instead of {shapes[1]}")
    return ", ".join(parts)


def open_space(name: str, options: dict[str, Any]) -> SearchSpace:
    """``get_space`` with a one-line error for options the space does not take."""
    try:
        return get_space(name, **options)
    except EdgenasError:
        raise
    except (TypeError, ValueError) as e:
        raise EdgenasError(f"bad option for space {name} ({e}); check the -o values") from None


def load_found(
    arch_path: str | Path, weights_path: str | Path, *, space_options: dict[str, Any] | None = None,
    num_classes: int | None = None,
) -> FoundModel:
    """The network of ``arch_path`` with the weights of ``weights_path`` loaded, in eval mode.

    ``space_options`` override those recorded in the arch file; ``num_classes`` defaults to
    the file's, else the length of the classifier's last tensor in the weights.
    """
    data = read_arch_file(arch_path)
    options = {**(data.get("space_options") or {}), **(space_options or {})}
    space = open_space(str(data["space"]), options)
    try:
        arch = space.parse({"space": data["space"], "values": data["values"]})
    except EdgenasError as e:
        hint = "" if options else "; if the search used space options, pass them with -o KEY=VALUE"
        raise EdgenasError(f"arch file {arch_path}: {e}{hint}") from None
    state = read_state_dict(weights_path)
    classes = num_classes or data.get("num_classes") or infer_num_classes(state)
    if not isinstance(classes, int) or classes <= 0:
        raise EdgenasError(f"num_classes must be a positive integer, got {classes!r}")
    model = space.build(arch, classes)
    problem = state_mismatch(model.state_dict(), state)
    if problem:
        raise EdgenasError(
            f"weights file {weights_path} does not match the arch in {arch_path} ({problem}); "
            "give the weights saved with this arch"
        )
    model.load_state_dict(state)
    model.eval()
    c, h, w = space.input_shape(arch)
    meta = {k: v for k, v in data.items() if k not in ("space", "values")}
    return FoundModel(space, arch, model, classes, (c, h, w), meta)
