"""``edgenas profile`` and ``edgenas models``: output and one-line errors with exit code 2."""

import json

import pytest


def test_profile_json_has_the_documented_keys(cli):
    code, out, _ = cli("profile", "mobilenet_v2", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["params"] == 3_504_872
    assert data["macs"] == 300_774_272
    assert data["peak_sram_bytes"] == {"mcunet": 1_505_280, "liveness": 1_505_280}
    assert data["flash_bytes"] > data["params"]  # int8 weights + int32 biases
    assert {"name", "type", "output_shape", "params", "macs"} <= set(data["per_layer"][0])


def test_profile_table_prints_exact_numbers(cli):
    code, out, _ = cli("profile", "mobilenet_v2", "--per-layer")
    assert code == 0
    assert "3,504,872" in out and "300,774,272" in out and "features.2.1.0" in out


def test_profile_trace_route_matches_analytic(cli):
    _, a, _ = cli("profile", "mobilenet_v2", "--resolution", "96", "--json")
    _, t, _ = cli("profile", "mobilenet_v2", "--resolution", "96", "--json", "--trace")
    a, t = json.loads(a), json.loads(t)
    assert (a["params"], a["macs"], a["peak_sram_bytes"]) == (t["params"], t["macs"], t["peak_sram_bytes"])


def test_profile_user_factory_file(cli, tmp_path):
    f = tmp_path / "net.py"
    f.write_text(
        "from torch import nn\n"
        "def build():\n"
        "    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(),"
        " nn.Linear(8 * 16 * 16, 10))\n"
    )
    code, out, _ = cli("profile", f"{f}:build", "--resolution", "16", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["macs"] == 8 * 27 * 256 + 2048 * 10
    assert data["params"] == 8 * 27 + 8 + 2048 * 10 + 10


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("profile", "no_such_net"), "known models: "),
        (("profile", "mobilenet_v2", "--resolution", "0"), "resolution must be > 0"),
        (("profile", "mobilenet_v2", "--width", "-1"), "width multiplier must be > 0"),
        (("profile", "missing/file.py:build"), "not found"),
        (("profile", "mobilenet_v2", "--precision", "int4"), "use int8 or fp32"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli_error, args, message):
    assert message in cli_error(*args)


def test_missing_factory_in_existing_file(cli, tmp_path):
    f = tmp_path / "net.py"
    f.write_text("x = 1\n")
    code, _, err = cli("profile", f"{f}:build")
    assert code == 2 and "no factory 'build'" in err


def test_models_lists_registered_models_with_costs(cli):
    code, out, _ = cli("models", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert code == 0
    assert rows["mobilenet_v2"]["macs"] == 300_774_272
