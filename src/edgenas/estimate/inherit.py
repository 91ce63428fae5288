"""Weight inheritance: start a candidate from trained weights instead of from scratch.

- :func:`widen` (Net2WiderNet, Chen et al. 2016): more output channels in a conv(+BN); new
  channels replicate random old ones and the next layer divides the replicated inputs by
  their copy count, so the network computes the same function.
- :func:`deepen` (Net2DeeperNet): insert an identity-initialised conv + BN (+ ReLU after a
  ReLU, which is idempotent) after a layer; the function is unchanged in eval mode.
- :func:`inherit_weights` (Once-for-All style): copy a trained parent's weights into a child
  of the same space where module names match: the first k channels, kernels centre-cropped.
- :func:`recalibrate_bn`: recompute BN running statistics on a few batches, as OFA does for
  each sub-network before measuring it.

All functions leave their inputs untouched and return new modules (or fill ``child``).
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import nn

from edgenas.errors import EdgenasError


def _module(model: nn.Module, name: str) -> nn.Module:
    try:
        return model.get_submodule(name)
    except AttributeError:
        raise EdgenasError(
            f"the model has no layer {name!r}; give a name from model.named_modules()"
        ) from None


def _is_depthwise(m: nn.Conv2d) -> bool:
    return m.groups > 1 and m.groups == m.in_channels == m.out_channels


# --- Net2WiderNet ---------------------------------------------------------------------------
@dataclass(frozen=True)
class WidenPlan:
    """The layers one widening touches, in forward order."""

    conv: str  # the layer that gets more output channels
    bn: str | None  # its BatchNorm
    followers: tuple[tuple[str, str | None], ...]  # depthwise convs (+BN) between, replicated too
    consumer: str  # the conv or linear reading the widened channels (gets more inputs)


def plan_widen(model: nn.Module, conv: str) -> WidenPlan:
    """Find the BN, depthwise followers and consumer of ``conv`` from the module order.

    Assumes modules are registered in forward order (true of networks built from edgenas
    blocks); give a :class:`WidenPlan` yourself for other networks.
    """
    kinds = (nn.Conv2d, nn.BatchNorm2d, nn.Linear)
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, kinds)]
    names = [n for n, _ in layers]
    if conv not in names or not isinstance(layers[names.index(conv)][1], nn.Conv2d):
        raise EdgenasError(f"{conv!r} is not a Conv2d of the model; give the name of a conv layer")
    start = layers[names.index(conv)][1]
    if start.groups != 1:
        raise EdgenasError(f"{conv!r} is a grouped conv; widen the plain conv that feeds it")
    width = start.out_channels
    rest = iter(layers[names.index(conv) + 1:])
    bn = None
    followers: list[tuple[str, str | None]] = []
    pending: str | None = None  # a depthwise conv awaiting its BN
    for name, m in rest:
        if isinstance(m, nn.BatchNorm2d) and m.num_features == width:
            if pending is not None:
                followers.append((pending, name))
                pending = None
            elif bn is None and not followers:
                bn = name
            continue
        if pending is not None:
            followers.append((pending, None))
            pending = None
        if isinstance(m, nn.Conv2d) and _is_depthwise(m) and m.in_channels == width:
            pending = name
            continue
        in_features = m.in_channels if isinstance(m, nn.Conv2d) else getattr(m, "in_features", None)
        if in_features != width or (isinstance(m, nn.Conv2d) and m.groups != 1):
            raise EdgenasError(
                f"the layer after {conv!r} is {name!r}, which does not read its {width} channels directly; "
                "give a WidenPlan for this network"
            )
        return WidenPlan(conv, bn, tuple(followers), name)
    raise EdgenasError(f"nothing reads the output of {conv!r}; widen a layer that has a consumer")


def _mapping(old: int, new: int, gen: torch.Generator) -> torch.Tensor:
    """Net2Net's g: new channel j copies old channel j, then random old channels."""
    if new < old:
        raise EdgenasError(
            f"widen needs a width >= the current {old}, got {new}; to shrink, use inherit_weights"
        )
    return torch.cat([torch.arange(old), torch.randint(0, old, (new - old,), generator=gen)])


def _replicated_conv(m: nn.Conv2d, g: torch.Tensor, depthwise: bool = False) -> nn.Conv2d:
    """Output channel j is old output channel g(j) (a depthwise conv's input follows)."""
    width = len(g)
    new = nn.Conv2d(width if depthwise else m.in_channels, width, m.kernel_size, m.stride, m.padding,
                    m.dilation, groups=width if depthwise else 1, bias=m.bias is not None,
                    padding_mode=m.padding_mode)
    with torch.no_grad():
        new.weight.copy_(m.weight[g])
        if m.bias is not None:
            new.bias.copy_(m.bias[g])
    return new


def _replicated_bn(m: nn.BatchNorm2d, g: torch.Tensor) -> nn.BatchNorm2d:
    new = nn.BatchNorm2d(len(g), m.eps, m.momentum, m.affine, m.track_running_stats)
    with torch.no_grad():
        if m.affine:
            new.weight.copy_(m.weight[g])
            new.bias.copy_(m.bias[g])
        if m.track_running_stats:
            new.running_mean.copy_(m.running_mean[g])
            new.running_var.copy_(m.running_var[g])
            new.num_batches_tracked.copy_(m.num_batches_tracked)
    return new


def _divided_consumer(m: nn.Module, g: torch.Tensor, noise: float, gen: torch.Generator) -> nn.Module:
    """The consumer reads input j as old input g(j), divided by how often g(j) was copied."""
    counts = torch.bincount(g).to(torch.float32)[g]
    if isinstance(m, nn.Linear):
        new: nn.Module = nn.Linear(len(g), m.out_features, bias=m.bias is not None)
        w = m.weight[:, g] / counts
    elif isinstance(m, nn.Conv2d):
        new = nn.Conv2d(len(g), m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation,
                        bias=m.bias is not None, padding_mode=m.padding_mode)
        w = m.weight[:, g] / counts[:, None, None]
    else:
        raise EdgenasError(f"cannot widen into a {type(m).__name__}; the consumer must be a Conv2d or Linear")
    with torch.no_grad():
        if noise:
            w = w + noise * w.abs().mean() * torch.randn(w.shape, generator=gen)
        new.weight.copy_(w)
        if m.bias is not None:
            new.bias.copy_(m.bias)
    return new


def widen(model: nn.Module, conv: str, width: int, *, plan: WidenPlan | None = None, seed: int = 0,
          noise: float = 0.0) -> nn.Module:
    """A copy of ``model`` with ``width`` output channels in ``conv``, same function (noise 0)."""
    plan = plan or plan_widen(model, conv)
    model = copy.deepcopy(model)
    old = _module(model, plan.conv)
    if not isinstance(old, nn.Conv2d) or old.groups != 1:
        raise EdgenasError(f"{plan.conv!r} must be a plain Conv2d to widen")
    gen = torch.Generator().manual_seed(seed)
    g = _mapping(old.out_channels, width, gen)
    model.set_submodule(plan.conv, _replicated_conv(old, g))
    if plan.bn is not None:
        model.set_submodule(plan.bn, _replicated_bn(_module(model, plan.bn), g))
    for dw, bn in plan.followers:
        m = _module(model, dw)
        if not isinstance(m, nn.Conv2d) or not _is_depthwise(m):
            raise EdgenasError(f"follower {dw!r} must be a depthwise conv")
        model.set_submodule(dw, _replicated_conv(m, g, depthwise=True))
        if bn is not None:
            model.set_submodule(bn, _replicated_bn(_module(model, bn), g))
    model.set_submodule(plan.consumer, _divided_consumer(_module(model, plan.consumer), g, noise, gen))
    return model


# --- Net2DeeperNet --------------------------------------------------------------------------
_ACTS: dict[str, tuple[Callable[[], nn.Module], tuple[type[nn.Module], ...]]] = {
    # activation -> (module, output types after which it is the identity)
    "relu": (nn.ReLU, (nn.ReLU, nn.ReLU6)),
    "relu6": (nn.ReLU6, (nn.ReLU6,)),
}


def _last_leaf(m: nn.Module) -> nn.Module:
    leaves = [x for x in m.modules() if not list(x.children())]
    return leaves[-1] if leaves else m


def identity_conv_bn(channels: int, kernel: int = 3, act: str | None = "relu") -> nn.Sequential:
    """Conv (identity kernel) -> BN (identity in eval mode) -> optional activation."""
    if kernel % 2 == 0:
        raise EdgenasError(f"an identity conv needs an odd kernel, got {kernel}")
    conv = nn.Conv2d(channels, channels, kernel, 1, kernel // 2, bias=False)
    bn = nn.BatchNorm2d(channels)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[torch.arange(channels), torch.arange(channels), kernel // 2, kernel // 2] = 1.0
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0)
        bn.weight.fill_((1.0 + bn.eps) ** 0.5)  # undoes the division by sqrt(var + eps)
        bn.bias.zero_()
    layers: OrderedDict[str, nn.Module] = OrderedDict([("0", conv), ("1", bn)])
    if act is not None:
        layers["2"] = _ACTS[act][0]()
    return nn.Sequential(layers)


def deepen(model: nn.Module, after: str, *, kernel: int = 3, act: str | None = "relu",
           channels: int | None = None) -> nn.Module:
    """A copy of ``model`` with an identity conv(+BN, act) inserted after layer ``after``.

    The new layer is appended as a child of ``after`` when it is an ``nn.Sequential`` (the
    names of existing weights do not change), else ``after`` becomes ``Sequential(old, new)``.
    ``act`` must be idempotent on what ``after`` outputs (ReLU after ReLU/ReLU6); use
    ``act=None`` after a linear layer.
    """
    if act is not None and act not in _ACTS:
        raise EdgenasError(f"deepen supports act {', '.join(_ACTS)} or None, got {act!r}")
    model = copy.deepcopy(model)
    target = _module(model, after)
    if channels is None:
        sized = [m for m in target.modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))]
        if not sized:
            raise EdgenasError(f"cannot tell the channels of {after!r}; pass channels=")
        last = sized[-1]
        channels = last.num_features if isinstance(last, nn.BatchNorm2d) else last.out_channels
    if act is not None and not isinstance(_last_leaf(target), _ACTS[act][1]):
        raise EdgenasError(
            f"{after!r} does not end in a {act}-compatible activation, so a new {act} would change the "
            "function; pass act=None or deepen after an activation"
        )
    new = identity_conv_bn(channels, kernel, act)
    if isinstance(target, nn.Sequential):
        children = OrderedDict(target.named_children())
        children[str(len(children))] = new
        model.set_submodule(after, nn.Sequential(children))
    else:
        model.set_submodule(after, nn.Sequential(target, new))
    return model


# --- Once-for-All style inheritance ---------------------------------------------------------
@dataclass
class InheritReport:
    """Which child tensors came from the parent: unchanged, sliced/cropped, or not at all."""

    exact: list[str] = field(default_factory=list)
    adapted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    inherited_params: int = 0  # child parameter elements now holding parent values
    total_params: int = 0

    @property
    def fraction(self) -> float:
        return self.inherited_params / self.total_params if self.total_params else 0.0


def _copy_overlap(dst: torch.Tensor, src: torch.Tensor, kernel_dims: int = 0) -> int:
    """Copy the leading overlap of ``src`` into ``dst``; the last ``kernel_dims`` are centred.

    Kernels: a larger parent kernel is centre-cropped (OFA); a smaller one is placed in the
    centre of a zeroed child kernel, so the child starts with the parent's receptive field.
    """
    d_idx, s_idx = [], []
    lead = dst.ndim - kernel_dims
    for i, (d, s) in enumerate(zip(dst.shape, src.shape, strict=True)):
        n = min(d, s)
        if i < lead:
            d_idx.append(slice(0, n))
            s_idx.append(slice(0, n))
        else:
            d_idx.append(slice((d - n) // 2, (d - n) // 2 + n))
            s_idx.append(slice((s - n) // 2, (s - n) // 2 + n))
    if kernel_dims and any(d > s for d, s in zip(dst.shape[lead:], src.shape[lead:], strict=True)):
        dst[tuple(d_idx[:lead])] = 0.0
    dst[tuple(d_idx)] = src[tuple(s_idx)]
    return int(dst[tuple(d_idx)].numel())


def _compatible(a: nn.Module, b: nn.Module) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, nn.Conv2d):
        return _is_depthwise(a) == _is_depthwise(b) and (a.groups == 1) == (b.groups == 1)  # type: ignore[arg-type]
    return True


@torch.no_grad()
def inherit_weights(child: nn.Module, parent: nn.Module,
                    name_map: Callable[[str], str | None] | None = None) -> InheritReport:
    """Fill ``child`` in place with ``parent``'s weights wherever module names match.

    Conv, BN and linear tensors take the first k channels/features of the parent's (children
    wider than the parent keep their own initialisation beyond k) and centre-cropped kernels;
    other tensors are copied when shapes are equal. ``name_map`` maps a child module name to
    the parent's (None: no parent module), e.g. for spaces that renumber blocks.
    """
    parent_modules = dict(parent.named_modules())
    report = InheritReport(total_params=sum(p.numel() for p in child.parameters()))
    for name, module in child.named_modules():
        tensors = list(module.named_parameters(recurse=False)) + list(module.named_buffers(recurse=False))
        if not tensors:
            continue
        source_name = name_map(name) if name_map is not None else name
        source = parent_modules.get(source_name) if source_name is not None else None
        if source is None or not _compatible(module, source):
            report.skipped += [f"{name}.{t}" for t, _ in tensors]
            continue
        src_tensors = dict(source.named_parameters(recurse=False)) | dict(source.named_buffers(recurse=False))
        for tname, dst in tensors:
            full = f"{name}.{tname}" if name else tname
            src = src_tensors.get(tname)
            if src is None or src.ndim != dst.ndim:
                report.skipped.append(full)
                continue
            if src.shape == dst.shape:
                dst.copy_(src)
                report.exact.append(full)
                n = dst.numel()
            elif isinstance(module, (nn.Conv2d, nn.BatchNorm2d, nn.Linear)):
                kernel_dims = 2 if isinstance(module, nn.Conv2d) and dst.ndim == 4 else 0
                n = _copy_overlap(dst, src, kernel_dims)
                report.adapted.append(full)
            else:
                report.skipped.append(full)
                continue
            if isinstance(dst, nn.Parameter):
                report.inherited_params += n
    return report


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                   max_batches: int = 20) -> nn.Module:
    """Reset BN running statistics and re-estimate them (cumulative mean) on a few batches."""
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d) and m.track_running_stats]
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average over the batches seen
    was_training = model.training
    model.train()
    try:
        for i, (x, _) in enumerate(batches):
            if i >= max_batches:
                break
            model(x)
    finally:
        for m, momentum in zip(bns, momenta, strict=True):
            m.momentum = momentum
        model.train(was_training)
    return model
