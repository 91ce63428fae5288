"""The analytic cost and the module profiler agree with each other and with PyTorch/fvcore."""

import pytest
import torch
from torch import nn

from conftest import assert_routes_agree
from edgenas.blocks import Residual, conv_bn_act, depthwise_separable, graph_of, mbconv, seq
from edgenas.cost import estimate
from edgenas.cost.profiler import graph_from_module, profile_module
from edgenas.models import create_model, model_graph, model_spec
from edgenas.models.heads import classifier_net
from edgenas.ops import Conv2d, GlobalPool, Linear, Pool2d


def fvcore_conv_linear_macs(module: nn.Module, shape) -> int:
    from fvcore.nn import FlopCountAnalysis

    flops = FlopCountAnalysis(module.eval(), torch.zeros(1, *shape))
    flops.unsupported_ops_warnings(False)
    flops.uncalled_modules_warnings(False)
    by_op = flops.by_operator()
    return sum(by_op.get(k, 0) for k in ("conv", "linear", "addmm", "matmul"))


def small_resnet_like():
    return classifier_net(
        seq(
            conv_bn_act(3, 16, 3, 2),
            Residual(seq(conv_bn_act(16, 16), conv_bn_act(16, 16, act=None)), act="relu"),
            Residual(
                seq(conv_bn_act(16, 32, 3, 2), conv_bn_act(32, 32, act=None)),
                shortcut=seq(Conv2d(16, 32, 1, 2, 0)),
                act="relu",
            ),
            Pool2d("max", 3, 2, 1),
        ),
        32, 10,
    )


def grouped_chain():
    return classifier_net(
        seq(
            conv_bn_act(3, 24, 3, 2),
            conv_bn_act(24, 48, 3, 1, groups=4),
            depthwise_separable(48, 64, 2),
            conv_bn_act(64, 64, 5, 1, groups=64),
        ),
        64, 10, dropout=0.1,
    )


SPECS = {
    "mobilenet_v2": (lambda: model_spec("mobilenet_v2"), (3, 224, 224)),
    "mobilenet_v2_w035_r144": (lambda: model_spec("mobilenet_v2", width_mult=0.35), (3, 144, 144)),
    "resnet_like": (small_resnet_like, (3, 64, 64)),
    "grouped_chain": (grouped_chain, (3, 96, 80)),
}


@pytest.mark.parametrize("name", SPECS)
def test_params_equal_torch_numel_and_routes_agree(name):
    make, shape = SPECS[name]
    spec = make()
    module = spec.build()
    analytic = estimate(graph_of(spec, shape))
    traced = profile_module(module, shape)
    assert_routes_agree(analytic, traced, module)


@pytest.mark.parametrize("name", SPECS)
def test_macs_equal_fvcore_conv_linear_count(name):
    make, shape = SPECS[name]
    spec = make()
    assert estimate(graph_of(spec, shape)).macs == fvcore_conv_linear_macs(spec.build(), shape)


def test_mobilenet_v2_published_cost_and_mcunet_peak():
    cost = estimate(model_graph("mobilenet_v2", 224))
    assert cost.params == 3_504_872
    assert cost.macs == 300_774_272
    # second block's stride-2 depthwise: 112*112*96 in + 56*56*96 out, int8
    assert cost.peak_sram_bytes["mcunet"] == 112 * 112 * 96 + 56 * 56 * 96 == 1_505_280
    assert cost.peak_layer["mcunet"] == "features.2.1.0"
    fp32 = estimate(model_graph("mobilenet_v2", 224), precision="fp32")
    assert fp32.peak_sram_bytes["mcunet"] == 4 * 1_505_280


def test_per_layer_shapes_match_the_real_forward():
    spec = small_resnet_like()
    module = spec.build().eval()
    shapes = {}
    hooks = [
        m.register_forward_hook(lambda m, i, o, n=n: shapes.__setitem__(n, tuple(o.shape[1:])))
        for n, m in module.named_modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    module(torch.zeros(1, 3, 64, 64))
    for h in hooks:
        h.remove()
    layers = {layer.name: layer for layer in estimate(graph_of(spec, (3, 64, 64))).layers}
    assert shapes
    for name, shape in shapes.items():
        assert layers[name].output_shape == shape


def test_flash_counts_int8_weights_and_int32_folded_bn_biases():
    spec = classifier_net(seq(conv_bn_act(8, 16, 3)), 16, 10)
    cost = estimate(graph_of(spec, (8, 6, 6)))
    conv = 16 * 8 * 9 + 16 * 4  # int8 weights + int32 bias from the folded BN
    linear = 160 + 10 * 4
    assert cost.flash_bytes == conv + linear
    fp32 = estimate(graph_of(spec, (8, 6, 6)), "fp32")
    assert fp32.flash_bytes == 4 * (16 * 8 * 9 + 16 + 160 + 10)
    # BN parameters count as parameters (as torch counts them) but fold away in flash
    assert cost.params == 1152 + 32 + 170


def test_profiler_reads_user_modules_with_functional_ops():
    class TwoBranch(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(4, 8, 3, padding=1)
            self.b = nn.Conv2d(4, 8, 1)
            self.fc = nn.Linear(16, 3)

        def forward(self, x):
            y = torch.cat([torch.relu(self.a(x)), self.b(x)], 1)
            return self.fc(y.mean((2, 3)))

    cost = profile_module(TwoBranch(), (4, 8, 8))
    assert cost.macs == (8 * 4 * 9 + 8 * 4) * 64 + 16 * 3
    assert cost.params == 8 * 4 * 9 + 8 + 8 * 4 + 8 + 16 * 3 + 3


def test_profiler_uses_fake_tensors_so_huge_inputs_are_cheap():
    # a real forward at 2048x2048 would allocate ~0.8 GB of activations; fake tensors allocate none
    cost = profile_module(create_model("mobilenet_v2"), (3, 2048, 2048))
    assert cost.macs == estimate(model_graph("mobilenet_v2", 2048)).macs


def test_graph_from_module_keeps_forward_order():
    module = mbconv(16, 16, 1, 6).build()
    names = [n.name for n in graph_from_module(module, (16, 8, 8)).nodes]
    assert names.index("body.0.0") < names.index("body.1.0") < names.index("body.2.0")


def test_linear_only_network_costs():
    spec = seq(GlobalPool(flatten=True), Linear(8, 4))
    cost = estimate(graph_of(spec, (8, 3, 3)))
    assert (cost.params, cost.macs) == (36, 32)
