"""Weight inheritance: Net2Net operations preserve the function; OFA-style copying helps training."""

import pytest
import torch
from torch import nn

from edgenas.errors import EdgenasError
from edgenas.estimate.data import load_dataset
from edgenas.estimate.inherit import (
    WidenPlan,
    deepen,
    inherit_weights,
    plan_widen,
    recalibrate_bn,
    widen,
)
from edgenas.estimate.train import TrainConfig, evaluate, train
from edgenas.spaces import get_space


def randomise_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BN statistics and affine parameters, so BN handling is really tested."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=gen) * 0.5)
                m.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(c, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(c, generator=gen) * 0.2)
    return model.eval()


def plain_cnn() -> nn.Module:
    torch.manual_seed(0)
    return randomise_bn(nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, 2, 1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
    ))


def space_net(**values):
    space = get_space("mcunet", resolutions=[16], widths=[0.5], kernels=[3, 5], expands=[3, 6],
                      stages=[[24, 2, [1, 2]], [40, 2, [1, 2]]], stem=16, first=8)
    arch = space.make({d.name: values.get(d.name, d.options[0]) for d in space.dims()})
    return space, arch


X = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(1))


def test_widen_plain_conv_and_the_conv_before_a_linear_head():
    model = plain_cnn()
    before = model(X)
    wide = widen(model, "0", 13, seed=3)
    assert wide[0].out_channels == 13 and wide[1].num_features == 13 and wide[3].in_channels == 13
    torch.testing.assert_close(wide.eval()(X), before, atol=1e-5, rtol=0)
    wider = widen(wide, "3", 20)  # read through global pooling by the classifier
    assert wider[8].in_features == 20
    torch.testing.assert_close(wider.eval()(X), before, atol=1e-5, rtol=0)
    assert model[0].out_channels == 8  # the original is untouched
    # the new channels are copies of old ones: each widened output duplicates an existing one
    acts = wide[:3](X)
    assert all(any(torch.equal(acts[:, j], acts[:, i]) for i in range(8)) for j in range(8, 13))
    noisy = widen(model, "0", 13, seed=3, noise=0.1).eval()(X)
    assert not torch.allclose(noisy, before, atol=1e-5)


def test_widen_mbconv_expansion_replicates_the_depthwise_conv():
    space, arch = space_net(d0=2, e0_1=3)
    torch.manual_seed(0)
    model = randomise_bn(space.build(arch, 10))
    plan = plan_widen(model, "s0b1.body.0.0")  # the expand 1x1 conv of a residual MBConv
    assert plan == WidenPlan("s0b1.body.0.0", "s0b1.body.0.1", (("s0b1.body.1.0", "s0b1.body.1.1"),),
                             "s0b1.body.2.0")
    hidden = model.get_submodule("s0b1.body.0.0").out_channels
    wide = widen(model, "s0b1.body.0.0", hidden + 17, plan=plan).eval()
    assert wide.get_submodule("s0b1.body.1.0").groups == hidden + 17
    torch.testing.assert_close(wide(X), model(X), atol=1e-5, rtol=0)


def test_widen_errors():
    model = plain_cnn()
    with pytest.raises(EdgenasError, match="needs a width >= the current 8"):
        widen(model, "0", 4)
    with pytest.raises(EdgenasError, match="'1' is not a Conv2d"):
        widen(model, "1", 12)
    with pytest.raises(EdgenasError, match="has no layer 'nope'"):
        widen(model, "nope", 12, plan=WidenPlan("nope", None, (), "3"))


def test_deepen_inserts_an_identity_layer():
    space, arch = space_net()
    torch.manual_seed(0)
    model = randomise_bn(space.build(arch, 10))
    before = model(X)
    deeper = deepen(model, "stem", act="relu6").eval()  # the stem ends in ReLU6
    assert isinstance(deeper.get_submodule("stem.3.0"), nn.Conv2d)
    assert set(model.state_dict()) < set(deeper.state_dict())  # existing names are kept
    torch.testing.assert_close(deeper(X), before, atol=1e-5, rtol=0)
    after_linear = deepen(model, "s1b0.2", act=None, kernel=5).eval()  # after the linear projection
    torch.testing.assert_close(after_linear(X), before, atol=1e-5, rtol=0)
    with pytest.raises(EdgenasError, match="does not end in a relu-compatible activation"):
        deepen(model, "s1b0.2")
    plain = plain_cnn()
    wrapped = deepen(plain, "2", channels=8).eval()  # a bare ReLU is wrapped in a Sequential
    torch.testing.assert_close(wrapped(X), plain(X), atol=1e-5, rtol=0)


def test_inherit_weights_crops_kernels_and_takes_first_channels():
    space, big = space_net(d0=2, d1=2, **{f"{p}{s}_{b}": v for s in (0, 1) for b in (0, 1)
                                          for p, v in (("k", 5), ("e", 6))})
    _, small = space_net()
    torch.manual_seed(0)
    parent, child = space.build(big, 10), space.build(small, 10)
    report = inherit_weights(child, parent)
    assert report.skipped == [] and report.fraction == 1.0  # the child is a sub-network
    p_dw, c_dw = parent.get_submodule("s0b0.1.0").weight, child.get_submodule("s0b0.1.0").weight
    assert p_dw.shape[2:] == (5, 5) and c_dw.shape[2:] == (3, 3)
    assert torch.equal(c_dw, p_dw[: c_dw.shape[0], :, 1:4, 1:4])
    p_exp, c_exp = parent.get_submodule("s0b0.0.0").weight, child.get_submodule("s0b0.0.0").weight
    assert torch.equal(c_exp, p_exp[: c_exp.shape[0]])
    assert "stem.0.weight" in report.exact and "s0b0.1.0.weight" in report.adapted
    # the other way round: a larger child kernel holds the parent's in its centre, zeros around
    grown = space.build(big, 10)
    back = inherit_weights(grown, child)
    g_dw = grown.get_submodule("s0b0.1.0").weight.detach()
    assert torch.equal(g_dw[: c_dw.shape[0], :, 1:4, 1:4], c_dw)
    assert float(g_dw[: c_dw.shape[0], :, 0].abs().sum()) == 0.0
    assert "s1b1.body.0.0.weight" in back.skipped and 0 < back.fraction < 1


@pytest.mark.slow
def test_inherited_child_trains_faster_than_from_scratch():
    space, big = space_net(d0=2, d1=2, **{f"{p}{s}_{b}": v for s in (0, 1) for b in (0, 1)
                                          for p, v in (("k", 5), ("e", 6))})
    _, small = space_net()
    data = load_dataset("digits", resolution=16, channels=3)
    torch.manual_seed(0)
    parent = space.build(big, 10)
    train(parent, data, TrainConfig(epochs=3, batch_size=64, threads=1), progress=False)
    torch.manual_seed(1)
    scratch = space.build(small, 10)
    torch.manual_seed(1)
    child = space.build(small, 10)
    inherit_weights(child, parent)
    chance = evaluate(scratch, data, "val")
    recalibrate_bn(child, data.loader("train", 64))
    assert evaluate(child, data, "val") > chance  # measured: 0.30 vs 0.10 before any training
    one_epoch = TrainConfig(epochs=1, batch_size=64, threads=1)
    inherited = train(child, data, one_epoch, progress=False)
    fresh = train(scratch, data, one_epoch, progress=False)
    # measured: 0.78 vs 0.17 after one epoch
    assert inherited.best_val_acc > fresh.best_val_acc + 0.2, (inherited, fresh)
