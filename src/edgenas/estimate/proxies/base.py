"""The proxy protocol: a registry of named scores computed from a network at initialisation.

A proxy is a function ``(net, batch) -> float`` where higher should mean "more accurate after
training". :func:`compute_proxy` hands it a private deep copy of the network (proxies change
weights, swap layers, leave gradients behind) and runs it under its own seeded RNG, so the
result depends only on (network, batch, seed) and the caller's RNG state is left untouched.
A proxy that cannot score a network returns NaN; ``-inf`` means "worst possible" (no signal
reaches the output).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from edgenas.errors import EdgenasError


@dataclass(frozen=True)
class Batch:
    """One fixed mini-batch: ``inputs`` (N, C, H, W) (or (N, features)) and class ``targets`` (N,)."""

    inputs: torch.Tensor
    targets: torch.Tensor
    source: str = "?"

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input, without the batch dimension."""
        return tuple(int(d) for d in self.inputs.shape[1:])


ProxyFn = Callable[[nn.Module, Batch], float]


@dataclass(frozen=True)
class ProxyInfo:
    """A registered proxy; ``naslib_key`` names the same score in NASLib's zc_*.json files."""

    name: str
    fn: ProxyFn
    uses_data: bool
    naslib_key: str | None
    summary: str


PROXIES: dict[str, ProxyInfo] = {}


def register_proxy(
    name: str, *, uses_data: bool = True, naslib_key: str | None = None
) -> Callable[[ProxyFn], ProxyFn]:
    """Register ``fn`` as proxy ``name``; the first docstring line becomes its summary."""

    def deco(fn: ProxyFn) -> ProxyFn:
        if name in PROXIES:
            raise ValueError(f"proxy {name!r} registered twice")
        summary = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        PROXIES[name] = ProxyInfo(name, fn, uses_data, naslib_key, summary)
        return fn

    return deco


def list_proxies() -> list[str]:
    _load_all()
    return list(PROXIES)


def get_proxy(name: str) -> ProxyInfo:
    _load_all()
    if name not in PROXIES:
        raise EdgenasError(f"unknown proxy {name!r}; known proxies: {', '.join(PROXIES)}")
    return PROXIES[name]


def parse_proxy_names(text: str | Sequence[str] | None) -> list[str]:
    """``"synflow,snip"`` (or a list) -> validated names; None or "all" -> every proxy."""
    if text is None or text == "all":
        return list_proxies()
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    if not names:
        raise EdgenasError(f"no proxy named; choose from: {', '.join(list_proxies())}")
    for n in names:
        get_proxy(n)
    return names


def compute_proxy(name: str, model: nn.Module, batch: Batch, *, seed: int = 0) -> float:
    """Score ``model`` with proxy ``name`` on ``batch``; deterministic for a given ``seed``."""
    info = get_proxy(name)
    net = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return float(info.fn(net, batch))


def compute_proxies(
    names: Sequence[str], model: nn.Module, batch: Batch, *, seed: int = 0
) -> dict[str, float]:
    return {n: compute_proxy(n, model, batch, seed=seed) for n in names}


def _load_all() -> None:
    import edgenas.estimate.proxies.measures  # noqa: F401  (registers the built-in proxies)
