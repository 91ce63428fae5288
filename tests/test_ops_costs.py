"""Primitive ops: the lecture's seed numbers, checked against the modules torch builds."""

import pytest

from edgenas.errors import EdgenasError
from edgenas.ops import Conv2d, Linear, depthwise, pointwise


def n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(
    ("op", "weights", "weight_shape"),
    [
        (Conv2d(8, 16, 3), 1152, (16, 8, 3, 3)),
        (Conv2d(8, 16, 3, groups=4), 288, (16, 2, 3, 3)),
        (depthwise(8, 3), 72, (8, 1, 3, 3)),
        (pointwise(8, 16), 128, (16, 8, 1, 1)),
    ],
)
def test_conv_weights_match_lecture_and_torch(op, weights, weight_shape):
    assert op.weights() == weights
    assert op.weight_shape == weight_shape
    module = op.to_module()
    assert tuple(module.weight.shape) == weight_shape
    assert op.params() == n_params(module)


def test_linear_weights_and_bias():
    op = Linear(8, 16)
    assert (op.weights(), op.biases(), op.params()) == (128, 16, 144)
    assert op.params() == n_params(op.to_module())
    assert op.macs([(8,)], (16,)) == 128


@pytest.mark.parametrize("stride", [1, 2])
def test_conv_macs_are_weights_times_output_pixels(stride):
    op = Conv2d(8, 16, 3, stride)
    out = op.infer([(8, 32, 32)])
    side = 32 // stride
    assert out == (16, side, side)
    assert op.macs([(8, 32, 32)], out) == 1152 * side * side


def test_conv_output_shape_matches_torch():
    import torch

    for op in (Conv2d(3, 5, 5, 2), Conv2d(4, 4, 3, 2, 0, groups=2), Conv2d(4, 8, 7, 3)):
        out = op.to_module()(torch.zeros(1, op.in_channels, 17, 23))
        assert op.infer([(op.in_channels, 17, 23)]) == tuple(out.shape[1:])


@pytest.mark.parametrize(("cin", "cout", "groups"), [(8, 16, 3), (6, 16, 4), (8, 12, 8)])
def test_groups_that_do_not_divide_channels_are_rejected(cin, cout, groups):
    with pytest.raises(EdgenasError, match="must divide"):
        Conv2d(cin, cout, 3, groups=groups)
