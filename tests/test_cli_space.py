"""``edgenas space`` and ``edgenas profile --space --arch``: output, round trips, one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgenas.spaces import get_space, list_spaces

SMALL = ("-o", "resolutions=[64,112]", "-o", "widths=[0.3,0.6]")


def test_space_list_shows_every_space_with_its_exact_size(cli):
    code, out, _ = cli("space", "list", "--json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)}
    assert sorted(rows) == list_spaces()
    assert rows["mcunet"]["size"] == get_space("mcunet").size() == 14_099_608_759_186_970_831_448
    code, out, _ = cli("space", "list")
    assert code == 0 and "topology" in out and "232,543,710" in out


def test_space_info_lists_dims_and_honours_options(cli):
    code, out, _ = cli("space", "info", "topology", "-o", "blocks=3", "-o", "levels=1", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["size"] == 3 * 3 * 4 * 3 * 7
    dims = {d["name"]: d["options"] for d in data["dims"]}
    assert dims["path"] == [[0, 0, 0], [0, 0, 1], [0, 1, 1], [1, 1, 1]]
    assert dims["agg3"] == ["sum", "concat"]
    code, out, _ = cli("space", "info", "mcunet")
    assert code == 0 and "k0_3" in out and "14,099,608,759,186,970,831,448 architectures" in out


def test_sampled_arch_profiles_to_the_same_cost(cli, tmp_path):
    code, out, _ = cli("space", "sample", "mcunet", "-n", "3", "--seed", "7", "--json")
    assert code == 0
    rows = json.loads(out)
    assert len(rows) == 3 and len({r["id"] for r in rows}) == 3
    f = tmp_path / "arch.json"
    f.write_text(json.dumps(rows[1]["arch"]))
    code, out, _ = cli("profile", "--space", "mcunet", "--arch", str(f), "--json")
    assert code == 0
    cost = json.loads(out)
    assert (cost["params"], cost["macs"], cost["flash_bytes"], cost["peak_sram_bytes"]) == (
        rows[1]["params"], rows[1]["macs"], rows[1]["flash_bytes"], rows[1]["peak_sram_bytes"],
    )
    code, out, _ = cli("profile", "--space", "mcunet", "--arch", rows[1]["string"])
    assert code == 0 and f"{rows[1]['macs']:,}" in out and rows[1]["id"] in out


def test_sample_table_prints_exact_costs(cli):
    code, out, _ = cli("space", "sample", "resnet", "-n", "2", "--seed", "0")
    space = get_space("resnet")
    first = space.sample(np.random.default_rng(0))
    assert code == 0
    assert f"{space.cost(first, 1000).macs:,}" in out and space.to_string(first) in out


def test_optimize_json_and_plot(cli, tmp_path):
    png = tmp_path / "cdf.png"
    code, out, _ = cli("space", "optimize", "--space", "mcunet", "--device", "stm32f746", "--samples", "40",
                       "--plot", str(png), "--json", *SMALL)
    assert code == 0
    data = json.loads(out)
    subs = data["subspaces"]
    assert data["device"]["sram_bytes"] == 320 * 1024 and len(subs) == 4
    assert [s["rank"] for s in subs] == [1, 2, 3, 4]
    assert [s["mean_macs"] for s in subs] == sorted((s["mean_macs"] for s in subs), reverse=True)
    assert png.stat().st_size > 10_000


def test_optimize_table_with_sram_override(cli):
    code, out, _ = cli("space", "optimize", "--device", "stm32f746", "--sram", "128", "--samples", "20",
                       *SMALL)
    assert code == 0
    assert "131,072" in out and "w0.3-r64" in out and "rank" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("space", "info", "nosuch"), "unknown space 'nosuch'; known spaces: "),
        (("space", "sample", "mcunet", "-o", "colour=1"), "space mcunet has no option ['colour']"),
        (("space", "optimize", "--device", "esp8266"), "unknown device 'esp8266'; known devices: "),
        (("space", "optimize"), "give a --device"),
        (("space", "optimize", "--space", "nb201", "--device", "cpu"), "no width and resolution"),
        (("space", "optimize", "--sram", "-1"), "--sram must be a positive number of kB"),
        (("profile", "--space", "mcunet"), "give both --space NAME and --arch"),
        (("profile", "--space", "nosuch", "--arch", "{}"), "unknown space 'nosuch'"),
        (("profile", "--space", "mcunet", "--arch", "missing.json"), "arch file missing.json not found"),
        (("profile",), "give a MODEL"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli_error, args, message):
    assert message in cli_error(*args)


def test_malformed_arch_json_names_the_field_and_its_allowed_values(cli, tmp_path):
    space = get_space("resnet")
    values = {d.name: d.options[0] for d in space.dims()}
    values["d2"] = 4
    f = tmp_path / "bad.json"
    f.write_text(json.dumps({"space": "resnet", "values": values}))
    code, _, err = cli("profile", "--space", "resnet", "--arch", str(f))
    assert code == 2 and "arch field 'd2' = 4 is not allowed; choose one of 3, 5, 7, 9" in err
    f.write_text('{"space": "resnet", "values": {')
    code, _, err = cli("profile", "--space", "resnet", "--arch", str(f))
    assert code == 2 and "not valid JSON" in err
    del values["width"]
    values["d2"] = 3
    f.write_text(json.dumps({"space": "resnet", "values": values}))
    code, _, err = cli("profile", "--space", "resnet", "--arch", str(f))
    assert code == 2 and "missing field 'width'; allowed values: 0.65, 0.8, 1.0" in err
