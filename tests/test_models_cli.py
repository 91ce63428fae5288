"""``edgenas models`` lists the zoo; bad model names and widths give one line and exit 2."""

import json

import pytest

TABLE = {  # torchvision's counts at 224x224 (test_models_zoo checks all of them by both routes)
    "resnet50": (25_557_032, 4_089_184_256),
    "resnext50_32x4d": (25_028_904, 4_230_479_872),
    "mobilenet_v3_small": (2_542_856, 56_510_400),
}


def test_models_lists_every_reference_network_with_exact_counts(cli):
    code, out, _ = cli("models", "--json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)}
    assert set(TABLE) | {"mobilenet_v1", "shufflenet_v1", "mcunet_320kb"} <= set(rows)
    for name, (params, macs) in TABLE.items():
        assert (rows[name]["params"], rows[name]["macs"]) == (params, macs)
    assert rows["mcunet_320kb"]["resolution"] == 176


def test_models_table_shows_the_new_models(cli):
    code, out, _ = cli("models")
    assert code == 0
    assert "resnext50_32x4d" in out and "4,230,479,872" in out and "mcunet_320kb" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("profile", "resnet_9000"), "unknown model 'resnet_9000'"),
        (("profile", "shufflenet_v2_x1_0", "--width", "0.7"), "ShuffleNetV2 has no width 0.7"),
        (("profile", "resnet18", "--width", "0"), "width multiplier must be > 0"),
    ],
)
def test_unknown_model_or_invalid_width_is_one_line_exit_2(cli_error, args, message):
    assert message in cli_error(*args)
