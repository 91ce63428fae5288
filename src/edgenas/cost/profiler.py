"""Module profiler: any ``nn.Module`` -> the same layer graph the analytic route builds.

The module is traced with ``torch.fx``. Known layers (conv, linear, BN, activations,
pooling) become op specs through a converter registry and get their output shape from the
spec itself; everything else runs on ``meta`` tensors, so a large input costs no real
compute. The cost formulas of :mod:`edgenas.cost.estimate` then do the rest: both routes
share one set of formulas, and the tests check they agree with what PyTorch builds.
"""

from __future__ import annotations

import operator
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import fx, nn
from torch.nn.utils.stateless import _reparametrize_module

from edgenas.cost.estimate import Cost, Precision, estimate
from edgenas.errors import EdgenasError
from edgenas.ops.graph import INPUT, LayerGraph
from edgenas.ops.specs import (
    Activation,
    Add,
    BatchNorm2d,
    Concat,
    Conv2d,
    GlobalPool,
    Linear,
    Mul,
    Op,
    Opaque,
    Pool2d,
    Shape,
    View,
    numel,
)

# A converter maps a leaf module and its input shapes to an op spec (None: not analysable).
ModuleConverter = Callable[[nn.Module, list[Shape]], Op | None]
MODULE_CONVERTERS: dict[type[nn.Module], ModuleConverter] = {}


def register_module(*types: type[nn.Module]) -> Callable[[ModuleConverter], ModuleConverter]:
    def deco(fn: ModuleConverter) -> ModuleConverter:
        for t in types:
            MODULE_CONVERTERS[t] = fn
        return fn

    return deco


@register_module(nn.Conv2d)
def _conv(m: nn.Conv2d, ins: list[Shape]) -> Op:
    if isinstance(m.padding, str):
        raise EdgenasError("string padding is not supported by the profiler; give padding as ints")
    return Conv2d(
        m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding,
        groups=m.groups, bias=m.bias is not None, dilation=m.dilation[0],
    )


@register_module(nn.Linear)
def _linear(m: nn.Linear, ins: list[Shape]) -> Op:
    return Linear(m.in_features, m.out_features, bias=m.bias is not None)


@register_module(nn.BatchNorm2d)
def _bn(m: nn.BatchNorm2d, ins: list[Shape]) -> Op:
    return BatchNorm2d(m.num_features, affine=m.affine)


_ACT_MODULES = {
    nn.ReLU: "relu", nn.ReLU6: "relu6", nn.Hardswish: "hardswish", nn.Hardsigmoid: "hardsigmoid",
    nn.Sigmoid: "sigmoid", nn.SiLU: "silu", nn.GELU: "gelu", nn.Tanh: "tanh",
}
for _t, _fn in _ACT_MODULES.items():
    MODULE_CONVERTERS[_t] = lambda m, ins, fn=_fn: Activation(fn)


def _int(v: int | tuple[int, ...]) -> int:
    return v if isinstance(v, int) else int(v[0])


@register_module(nn.MaxPool2d, nn.AvgPool2d)
def _pool(m: nn.Module, ins: list[Shape]) -> Op | None:
    if isinstance(m, nn.MaxPool2d) and _int(m.dilation) != 1:
        return None
    return Pool2d(
        "max" if isinstance(m, nn.MaxPool2d) else "avg", _int(m.kernel_size),
        _int(m.stride), _int(m.padding), ceil_mode=m.ceil_mode,
        count_include_pad=getattr(m, "count_include_pad", True),
    )


@register_module(nn.AdaptiveAvgPool2d)
def _gap(m: nn.AdaptiveAvgPool2d, ins: list[Shape]) -> Op | None:
    size = m.output_size
    return GlobalPool() if size in (1, (1, 1)) else None


@register_module(nn.Dropout, nn.Identity)
def _identity(m: nn.Module, ins: list[Shape]) -> Op:
    return View(shape=ins[0])


@register_module(nn.Flatten)
def _flatten(m: nn.Flatten, ins: list[Shape]) -> Op | None:
    return View() if m.start_dim == 1 and m.end_dim == -1 else None


# --- functions and tensor methods (shapes come from the meta run) --------------------------
_ADD = {operator.add, operator.iadd, torch.add, "add", "add_"}
_MUL = {operator.mul, operator.imul, torch.mul, "mul", "mul_"}
_ACT_FUNCS = {
    torch.relu: "relu", nn.functional.relu: "relu", nn.functional.relu6: "relu6",
    torch.sigmoid: "sigmoid", nn.functional.hardswish: "hardswish",
    nn.functional.hardsigmoid: "hardsigmoid", nn.functional.silu: "silu",
    "relu": "relu", "sigmoid": "sigmoid", "relu_": "relu",
}
_VIEWS = {
    torch.flatten, torch.reshape, torch.transpose, torch.permute, torch.squeeze,
    torch.unsqueeze, operator.getitem, "view", "reshape", "flatten", "transpose",
    "permute", "contiguous", "squeeze", "unsqueeze", "clone", "detach",
}
_GLOBAL_MEANS = {torch.mean, "mean", nn.functional.adaptive_avg_pool2d}
_SCALAR_ARITH = {operator.truediv, operator.sub, torch.div, "div", "sub"}


def _function_op(node: fx.Node, n_tensors: int, out: Shape) -> Op:
    target = node.target
    if target in _ADD:
        return Add() if n_tensors >= 2 else View(shape=out)
    if target in _MUL:
        return Mul() if n_tensors >= 2 else View(shape=out)
    if target in _ACT_FUNCS:
        return Activation(_ACT_FUNCS[target])
    if target in (torch.cat, torch.concat):
        return Concat()
    if target in _VIEWS or (n_tensors == 1 and target in _SCALAR_ARITH):
        return View(shape=out)
    if target in _GLOBAL_MEANS and len(out) in (1, 3) and out[1:] in ((), (1, 1)):
        return GlobalPool(flatten=len(out) == 1)
    return Opaque(getattr(target, "__name__", str(target)), 0, out)


def _tensor_args(node: fx.Node) -> list[fx.Node]:
    found: list[fx.Node] = []
    fx.node.map_arg((node.args, node.kwargs), found.append)
    return found


class _ShapeInterpreter(fx.Interpreter):
    """Runs the traced graph on meta tensors; known leaf modules use their spec's shape."""

    def __init__(self, gm: fx.GraphModule) -> None:
        super().__init__(gm)
        self.ops: dict[fx.Node, Op] = {}

    def run_node(self, n: fx.Node) -> Any:
        self._current = n
        return super().run_node(n)

    def call_module(self, target: str, args: tuple, kwargs: dict) -> Any:
        sub = self.fetch_attr(target)
        convert = MODULE_CONVERTERS.get(type(sub))
        if convert is not None and len(args) == 1 and not kwargs:
            ins = [tuple(args[0].shape[1:])]
            op = convert(sub, ins)
            if op is not None:
                self.ops[self._current] = op
                return torch.empty((args[0].shape[0], *op.infer(ins)), device="meta")
        return super().call_module(target, args, kwargs)


def _first_line(e: Exception) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def _trace(module: nn.Module, input_shape: Shape) -> tuple[fx.GraphModule, dict, dict]:
    """Trace ``module``; return the graph, each node's value (meta tensors) and known ops."""
    try:
        gm = fx.symbolic_trace(module)
    except Exception as e:  # fx raises many types for untraceable Python
        raise EdgenasError(
            f"cannot trace {type(module).__name__} with torch.fx ({_first_line(e)}); "
            "keep forward() free of data-dependent Python control flow"
        ) from None
    meta = {
        k: torch.empty_like(v, device="meta")
        for k, v in (*gm.named_parameters(), *gm.named_buffers())
    }
    interp = _ShapeInterpreter(gm)
    values: dict[fx.Node, Any] = {}
    original = interp.run_node

    def record(n: fx.Node) -> Any:
        values[n] = original(n)
        return values[n]

    interp.run_node = record  # type: ignore[method-assign]
    was_training = module.training
    gm.eval()
    try:
        with _reparametrize_module(gm, meta):
            interp.run(torch.empty(1, *input_shape, device="meta"))
    except EdgenasError:
        raise
    except Exception as e:
        raise EdgenasError(
            f"{type(module).__name__} fails on input {tuple(input_shape)}: {_first_line(e)}; "
            "check the input shape and resolution"
        ) from None
    finally:
        gm.train(was_training)
    return gm, values, interp.ops


def graph_from_module(module: nn.Module, input_shape: Shape) -> LayerGraph:
    """Trace ``module`` on a ``(C, H, W)`` input and convert it to a :class:`LayerGraph`."""
    gm, values, known = _trace(module, tuple(input_shape))
    graph = LayerGraph(tuple(input_shape))
    name_of: dict[fx.Node, str] = {}
    unknown: list[str] = []
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            name_of[node] = INPUT
            continue
        if node.op in ("output", "get_attr"):
            continue
        value = values.get(node)
        srcs = [name_of[a] for a in _tensor_args(node) if a in name_of]
        if not isinstance(value, torch.Tensor):  # a tuple (chunk) or a Python value (size)
            if srcs:
                name_of[node] = srcs[0]
            continue
        out: Shape = tuple(int(d) for d in value.shape[1:])
        if node in known:
            op = known[node]
        elif node.op == "call_module":
            sub = gm.get_submodule(node.target)
            n_params = sum(p.numel() for p in sub.parameters())
            op = Opaque(type(sub).__name__, n_params, out)
            unknown.append(type(sub).__name__)
        else:
            op = _function_op(node, len(srcs), out)
            if isinstance(op, Opaque):
                unknown.append(op.type_name)
        name = str(node.target) if node.op == "call_module" else node.name
        name_of[node] = graph.add(name, op, *(srcs or [INPUT]))
        if graph.shape(name) != out and numel(graph.shape(name)) != numel(out):
            raise EdgenasError(f"shape mismatch at {name}: spec {graph.shape(name)}, torch {out}")
    if unknown:
        warnings.warn(
            f"no cost formula for {sorted(set(unknown))}: their MACs count as 0", stacklevel=2
        )
    return graph


def profile_module(
    module: nn.Module, input_shape: Shape, precision: Precision = "int8"
) -> Cost:
    """Per-layer and total cost of any module on a ``(C, H, W)`` input."""
    return estimate(graph_from_module(module, input_shape), precision)
