"""Peak SRAM: MCUNet's method and true liveness, on hand-computed graphs."""

from edgenas.blocks import conv_bn_act, depthwise_separable, graph_of, mbconv, seq
from edgenas.cost import estimate, peak_liveness, peak_mcunet
from edgenas.models.heads import classifier_net
from edgenas.ops import Activation, Concat, Conv2d, LayerGraph


def test_two_branch_concat_liveness_by_hand():
    # input 4x8x8 (256) -> a: 8x8x8 (512), b: 8x8x8 (512), cat 16x8x8 (1024), c: 2x8x8 (128)
    g = LayerGraph((4, 8, 8))
    g.add("a", Conv2d(4, 8, 3), "input")
    g.add("b", Conv2d(4, 8, 1), "input")
    g.add("cat", Concat(), "a", "b")
    g.add("c", Conv2d(16, 2, 1), "cat")
    peak = peak_liveness(g)
    # step a: in + a = 768; step b: in + a + b = 1280; cat: a + b + cat = 2048; c: cat + c = 1152
    assert (peak.bytes, peak.layer) == (2048, "cat")
    # MCUNet's method looks at convs only: a: 256+512; b: 256+512 + a (alive) = 1280; c: 1152
    assert peak_mcunet(g).bytes == 1280


def test_fused_activation_shares_its_input_buffer():
    g = LayerGraph((4, 8, 8))
    g.add("a", Conv2d(4, 8, 3), "input")
    g.add("relu", Activation("relu"))
    g.add("b", Conv2d(8, 8, 3))
    assert peak_liveness(g).bytes == 512 + 512


def test_residual_block_keeps_its_input_alive_mcunet_rule():
    # MBConv 8->8, expand 6, 4x4: input 128, hidden 48*16 = 768
    g = graph_of(mbconv(8, 8, 1, 6), (8, 4, 4))
    x, hidden = 8 * 16, 48 * 16
    expand = x + hidden
    dw = hidden + hidden + x  # the block input is kept for the add
    project = hidden + x  # accumulates into the residual in place
    assert peak_mcunet(g).bytes == max(expand, dw, project) == dw
    assert peak_mcunet(g).layer == "body.1.0"
    # liveness also keeps the input at the projection (no in-place add): hidden + x + x
    assert peak_liveness(g).bytes == max(expand, dw, hidden + 2 * x)


def test_liveness_never_exceeds_mcunet_on_chains():
    chains = [
        classifier_net(seq(conv_bn_act(3, 16, 3, 2), depthwise_separable(16, 32, 2),
                           depthwise_separable(32, 64, 1), conv_bn_act(64, 128, 1)), 128, 10),
        seq(conv_bn_act(3, 8, 5), conv_bn_act(8, 32, 3, 2), conv_bn_act(32, 4, 1)),
        seq(mbconv(16, 24, 2, 6), mbconv(24, 40, 2, 3, 5)),  # stride 2: no residual
    ]
    for chain in chains:
        for res in (32, 57, 96):
            g = graph_of(chain, (3 if chain is not chains[2] else 16, res, res))
            assert peak_liveness(g).bytes <= peak_mcunet(g).bytes


def test_peak_bytes_scale_with_precision():
    g = graph_of(seq(conv_bn_act(3, 8, 3)), (3, 10, 10))
    assert estimate(g, "fp32").peak_sram_bytes["liveness"] == 4 * estimate(g).peak_sram_bytes["liveness"]
