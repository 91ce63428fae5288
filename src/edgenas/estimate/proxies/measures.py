"""The built-in zero-cost proxies, following NASLib / mohsaied/zero-cost-nas definitions.

Scores are summed over the weights of every Conv2d and Linear layer, as the reference
implementations do. Data-dependent proxies use ``batch`` with cross-entropy loss and the
network in training mode (BatchNorm on batch statistics), again as the reference runs them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgenas.errors import EdgenasError
from edgenas.estimate.proxies.base import Batch, register_proxy
from edgenas.ops.modules import GlobalAvgPool

_WEIGHTED = (nn.Conv2d, nn.Linear)
_BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
_RELUS = (nn.ReLU, nn.ReLU6)
_GAPS = (GlobalAvgPool, nn.AdaptiveAvgPool2d)


def weighted_layers(net: nn.Module) -> Iterator[nn.Conv2d | nn.Linear]:
    """Conv and linear layers in module order: the layers every proxy sums over."""
    return (m for m in net.modules() if isinstance(m, _WEIGHTED))


def replace_modules(net: nn.Module, kinds: tuple[type, ...], factory: Callable[[], nn.Module]) -> None:
    """Swap every submodule of a type in ``kinds`` for ``factory()``, in place."""
    for _, parent in list(net.named_modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, kinds):
                setattr(parent, child_name, factory())


def _saliency_sum(net: nn.Module) -> float:
    """sum |theta * dX/dtheta| over conv/linear weights, from the gradients left by a backward pass."""
    return sum(
        float((m.weight.detach() * m.weight.grad).abs().sum())
        for m in weighted_layers(net) if m.weight.grad is not None
    )


def _loss(net: nn.Module, batch: Batch) -> torch.Tensor:
    return F.cross_entropy(net(batch.inputs), batch.targets)


# --- data-free ----------------------------------------------------------------------------
@register_proxy("synflow", uses_data=False, naslib_key="synflow")
def synflow(net: nn.Module, batch: Batch) -> float:
    """log sum |theta * dR/dtheta|, R = sum of outputs of |weights| on an all-ones input, no BN.

    Tanaka et al. 2020 as NASLib computes it: BatchNorm removed (identity), every parameter
    replaced by its absolute value, float64, a single all-ones image. NASLib reports the
    natural log of the sum, and so do we; a network whose output does not depend on any
    weight scores -inf.
    """
    replace_modules(net, _BATCHNORMS, nn.Identity)
    net = net.double().eval()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    net.zero_grad()
    out = net(torch.ones((1, *batch.input_shape), dtype=torch.float64))
    out.sum().backward()
    total = _saliency_sum(net)
    return math.log(total) if total > 0 else -math.inf


@register_proxy("zen", uses_data=False)
def zen(net: nn.Module, batch: Batch) -> float:
    """Zen-score: log E|f(x) - f(x + 0.01 e)| before global pooling + sum of log BN scales.

    Lin et al. 2021 (ZenNAS ``compute_zen_score``): weights N(0, 1), BN affine 1/0, training
    mode, Gaussian inputs of the batch's shape; each BN adds log sqrt(mean running_var)
    after the two forward passes.
    """
    gaps = [m for m in net.modules() if isinstance(m, _GAPS)]
    if not gaps:
        raise EdgenasError(
            "zen needs a network with a global average pool (GlobalAvgPool or AdaptiveAvgPool2d)"
        )
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, _WEIGHTED):
                nn.init.normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, _BATCHNORMS):
                m.reset_running_stats()
                if m.affine:
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)
    features: list[torch.Tensor] = []
    handle = gaps[-1].register_forward_pre_hook(lambda m, inp: features.append(inp[0]))
    net.train()
    shape = tuple(batch.inputs.shape)
    x = torch.randn(shape)
    mixed = x + 1e-2 * torch.randn(shape)
    with torch.no_grad():
        net(x)
        net(mixed)
    handle.remove()
    diff = (features[0] - features[1]).abs().flatten(1).sum(1).mean()
    log_bn = sum(
        0.5 * math.log(float(m.running_var.mean())) for m in net.modules() if isinstance(m, _BATCHNORMS)
    )
    return math.log(float(diff)) + log_bn if float(diff) > 0 else -math.inf


@register_proxy("params", uses_data=False, naslib_key="params")
def params(net: nn.Module, batch: Batch) -> float:
    """Parameter count (baseline), from edgenas's module profiler."""
    from edgenas.cost.profiler import profile_module

    return float(profile_module(net, batch.input_shape).params)


@register_proxy("macs", uses_data=False, naslib_key="flops")
def macs(net: nn.Module, batch: Batch) -> float:
    """Conv + linear multiply-accumulates for one image (baseline), from the module profiler."""
    from edgenas.cost.profiler import profile_module

    return float(profile_module(net, batch.input_shape).macs)


# --- gradient-based -----------------------------------------------------------------------
@register_proxy("snip", naslib_key="snip")
def snip(net: nn.Module, batch: Batch) -> float:
    """sum |theta * dL/dtheta| (Lee et al. 2019; the gradient w.r.t. a unit mask on each weight)."""
    net.train().zero_grad()
    _loss(net, batch).backward()
    return _saliency_sum(net)


@register_proxy("grad_norm", naslib_key="grad_norm")
def grad_norm(net: nn.Module, batch: Batch) -> float:
    """Sum over layers of the L2 norm of dL/dW (Abdelfattah et al. 2021)."""
    net.train().zero_grad()
    _loss(net, batch).backward()
    return sum(float(m.weight.grad.norm()) for m in weighted_layers(net) if m.weight.grad is not None)


@register_proxy("grasp", naslib_key="grasp")
def grasp(net: nn.Module, batch: Batch) -> float:
    """sum -theta * (H g), the Hessian-gradient product of GraSP (Wang et al. 2020)."""
    net.train().zero_grad()
    layers = list(weighted_layers(net))
    weights = [m.weight for m in layers]
    grad_w = torch.autograd.grad(_loss(net, batch), weights, allow_unused=True)
    grad_f = torch.autograd.grad(_loss(net, batch), weights, create_graph=True, allow_unused=True)
    z = sum(
        (gw.detach() * gf).sum()
        for gw, gf in zip(grad_w, grad_f, strict=True) if gw is not None and gf is not None
    )
    if not isinstance(z, torch.Tensor) or not z.requires_grad:
        return 0.0
    z.backward()
    return sum(float((-w.detach() * w.grad).sum()) for w in weights if w.grad is not None)


@register_proxy("fisher", naslib_key="fisher")
def fisher(net: nn.Module, batch: Batch) -> float:
    """Channel saliency 0.5 E_n[(sum_hw a * dL/da)^2] of every conv/linear output (Turner et al.).

    As in the reference, each channel's value is counted once per weight of that channel
    (it is broadcast over the filter before the sum).
    """
    per_channel: dict[nn.Module, torch.Tensor] = {}

    def on_grad(layer: nn.Module, act: torch.Tensor, grad: torch.Tensor) -> None:
        g_nk = (act * grad).sum(tuple(range(2, act.dim()))) if act.dim() > 2 else act * grad
        value = g_nk.pow(2).mean(0).mul(0.5)
        per_channel[layer] = per_channel.get(layer, 0) + value

    def on_forward(layer: nn.Module, inp: tuple, out: torch.Tensor) -> None:
        act = out.detach().clone()
        out.register_hook(lambda grad: on_grad(layer, act, grad.detach()))

    layers = list(weighted_layers(net))
    handles = [m.register_forward_hook(on_forward) for m in layers]
    net.train().zero_grad()
    _loss(net, batch).backward()
    for h in handles:
        h.remove()
    total = 0.0
    for m in layers:
        if m in per_channel:
            total += float(per_channel[m].abs().sum()) * math.prod(m.weight.shape[1:])
    return total


@register_proxy("jacob_cov", naslib_key="jacov")
def jacob_cov(net: nn.Module, batch: Batch) -> float:
    """-sum(log(v + k) + 1/(v + k)) over eigenvalues v of the input-Jacobian correlation matrix.

    Mellor et al.'s first NASWOT score as NASLib ships it (k = 1e-5): Jacobian of the summed
    outputs w.r.t. each input image, correlated across the batch. NaN when a row is constant.
    """
    net.train().zero_grad()
    x = batch.inputs.clone().requires_grad_(True)
    y = net(x)
    y.backward(torch.ones_like(y))
    jac = x.grad.reshape(x.shape[0], -1).double().numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(jac)
    if not np.all(np.isfinite(corr)):
        return math.nan
    v = np.linalg.eigvalsh(corr)
    k = 1e-5
    return float(-np.sum(np.log(v + k) + 1.0 / (v + k)))


@register_proxy("naswot")
def naswot(net: nn.Module, batch: Batch) -> float:
    """log |K_H|, K_H[i, j] = number of ReLUs where images i and j agree on active/inactive.

    Mellor et al. 2021 (second version), hooking every nn.ReLU / nn.ReLU6 module's input as
    NASLib's ``nwot`` does; ReLUs called as functions are not seen.
    """
    n = batch.inputs.shape[0]
    kernel = torch.zeros((n, n), dtype=torch.float64)

    def count(module: nn.Module, inp: tuple) -> None:
        codes = (inp[0].detach().reshape(n, -1) > 0).double()
        kernel.add_(codes @ codes.T + (1 - codes) @ (1 - codes).T)

    handles = [m.register_forward_pre_hook(count) for m in net.modules() if isinstance(m, _RELUS)]
    net.train()
    with torch.no_grad():
        net(batch.inputs)
    for h in handles:
        h.remove()
    sign, logdet = np.linalg.slogdet(kernel.numpy())
    return float(logdet) if sign > 0 else -math.inf
