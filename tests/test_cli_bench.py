"""``edgenas bench nb201``: a small end-to-end run, its JSON and plot, and its one-line errors."""

from __future__ import annotations

import itertools
import json

import pytest
from PIL import Image

from conftest import NB201_DIR

CSV = NB201_DIR / "nb201_12epoch.csv"
needs_nb201 = pytest.mark.skipif(not CSV.is_file(), reason=f"NB201 table {CSV} not present")


@needs_nb201
def test_bench_prints_a_regret_table_and_writes_the_plot(cli, tmp_path):
    png = tmp_path / "regret.png"
    code, out, err = cli("bench", "nb201", "-s", "random", "--strategy", "re,local", "--queries", "30",
                         "--seeds", "3", "--data", str(CSV), "--plot", str(png))
    assert code == 0, err
    assert "best val in table 84.89" in out
    for text in ("regret @ 15", "regret @ 30", "test acc of pick @ 30", "random", "re", "local", " ± "):
        assert text in out
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size[0] > 400


@needs_nb201
def test_bench_json_is_consistent(cli):
    code, out, _ = cli("bench", "nb201", "-s", "random", "--queries", "20", "--seeds", "4",
                       "--dataset", "cifar100", "--data", str(CSV), "--json")
    assert code == 0
    data = json.loads(out)
    assert data["best_val"] == pytest.approx(61.32, abs=1e-3) and data["queries"] == 20
    r = data["strategies"]["random"]
    curve = r["mean_regret_curve"]
    assert len(curve) == 20 and all(a >= b for a, b in itertools.pairwise(curve))
    assert curve[-1] == pytest.approx(r["regret"], abs=1e-4) and r["regret"] >= 0
    assert curve[9] == pytest.approx(r["regret_half"], abs=1e-4)
    assert 0 < r["test_accuracy"] < 100


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-s", "bananas"], "unknown strategy 'bananas'; known strategies: grid, local, nsga2"),
        (["--queries", "0"], "--queries must be > 0, got 0"),
        (["--seeds", "-1"], "--seeds must be > 0, got -1"),
        (["--data", "/nonexistent/nb201.csv"], "NB201 table /nonexistent/nb201.csv not found; pass --data"),
        (["--dataset", "mnist"], "unknown NB201 dataset 'mnist'"),
    ],
)
def test_bench_errors_are_one_line_exit_2(cli_error, args, message):
    if "--data" not in args:
        args = [*args, "--data", str(CSV)]
        if not CSV.is_file() and "dataset" in " ".join(args):
            pytest.skip("needs the NB201 table")
    assert message in cli_error("bench", "nb201", *args)
