"""``edgenas blocks compare``: blocks side by side with exact, hand-checkable numbers."""

import json

import pytest


def test_compare_json_has_exact_costs_and_ratios(cli):
    code, out, _ = cli("blocks", "compare", "--in", "64", "--out", "64", "--resolution", "56", "--json")
    assert code == 0
    data = json.loads(out)
    rows = {r["name"]: r for r in data["blocks"]}
    hw = 56 * 56
    assert rows["conv3x3"]["macs"] == 64 * 64 * 9 * hw == 115_605_504
    assert rows["conv3x3"]["peak_sram_bytes"] == 2 * 64 * hw  # int8 input + output
    assert rows["group_conv3x3"]["macs_vs_conv3x3"] == 0.25
    assert rows["depthwise_separable"]["macs"] == (64 * 9 + 64 * 64) * hw
    assert rows["bottleneck"]["macs"] == (64 * 16 + 16 * 16 * 9 + 16 * 64) * hw
    assert rows["mbconv_e6"]["peak_sram_bytes"] > rows["depthwise_separable"]["peak_sram_bytes"]
    classics = {"resnet_basic", "resnext_32x4d", "shufflenet_v1", "shufflenet_v2", "mbconv_e6_se_hswish"}
    assert classics <= set(rows)
    assert data["skipped"] == {}


def test_compare_table_and_blocks_that_cannot_fit_are_explained(cli):
    code, out, _ = cli("blocks", "compare", "--in", "64", "--out", "128", "--resolution", "28",
                       "--stride", "2", "--groups", "3")
    assert code == 0
    assert "MACs vs 3x3 conv" in out and "14,450,688" in out  # 3x3 conv 64 -> 128 at 14x14
    assert "group_conv3x3 left out" in out and "shufflenet_v1 left out" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--in", "0"), "--in must be a positive integer"),
        (("--stride", "3"), "stride must be 1 or 2"),
        (("--precision", "int4"), "use int8 or fp32"),
    ],
)
def test_compare_bad_input_is_one_line_exit_2(cli, args, message):
    code, _, err = cli("blocks", "compare", *args)
    assert code == 2
    assert message in err
