"""``edgenas search`` end to end: outputs, constraints, resume, and one-line errors."""

from __future__ import annotations

import csv
import json

import pytest

from conftest import NB201_DIR
from edgenas.search.journal import Journal
from edgenas.spaces import get_space

CSV = NB201_DIR / "nb201_12epoch.csv"
needs_nb201 = pytest.mark.skipif(not CSV.exists(), reason="NB201 table not found in ../shared/data")


def snapshot(path):
    j = Journal.open(path)
    try:
        return j.meta(), j.trials(), j.events()
    finally:
        j.close()


def tabular(tmp_path, *extra: str) -> list[str]:
    return ["search", "--space", "nb201", "--estimator", "tabular", "--data", str(CSV),
            "--journal", str(tmp_path / "run.db"), "--out", str(tmp_path / "out"), *extra]


@needs_nb201
def test_search_writes_journal_front_best_arch_and_plot(cli, tmp_path):
    code, out, err = cli(*tabular(tmp_path, "--strategy", "evolution", "--budget", "60"))
    assert code == 0, err
    rows = list(csv.DictReader((tmp_path / "out" / "trials.csv").open()))
    done = [r for r in rows if r["status"] == "done"]
    assert len(done) == 60
    best = json.loads((tmp_path / "out" / "best_arch.json").read_text())
    assert best["metrics"]["val_accuracy"] == max(float(r["val_accuracy"]) for r in done)
    assert best["space_options"] == {} and best["num_classes"] == 10
    arch = get_space("nb201").parse(json.dumps(best))
    assert get_space("nb201").to_string(arch) == best["string"]
    front = list(csv.DictReader((tmp_path / "out" / "pareto.csv").open()))
    assert best["arch_id"] in {r["arch_id"] for r in front}  # the most accurate is never dominated
    for r in front:  # no front member is dominated by any evaluated trial
        assert not any(
            float(o["val_accuracy"]) >= float(r["val_accuracy"]) and int(o["macs"]) <= int(r["macs"])
            and int(o["peak_sram_bytes"]) <= int(r["peak_sram_bytes"])
            and (float(o["val_accuracy"]), int(o["macs"]), int(o["peak_sram_bytes"]))
            != (float(r["val_accuracy"]), int(r["macs"]), int(r["peak_sram_bytes"]))
            for o in done
        )
    assert (tmp_path / "out" / "pareto.png").stat().st_size > 10_000
    assert "best" in out


@needs_nb201
def test_constraints_hold_for_every_evaluated_arch(cli, tmp_path):
    limit = 60_000_000
    code, _, err = cli(*tabular(tmp_path, "--budget", "40", "--max-macs", str(limit), "--sram", "40"))
    assert code == 0, err
    rows = list(csv.DictReader((tmp_path / "out" / "trials.csv").open()))
    done = [r for r in rows if r["status"] == "done"]
    assert len(done) == 40
    assert all(int(r["macs"]) <= limit and int(r["peak_sram_bytes"]) <= 40 * 1024 for r in done)
    rejected = [r for r in rows if r["status"] == "infeasible"]
    assert rejected and all(
        int(r["macs"]) > limit or int(r["peak_sram_bytes"]) > 40 * 1024 for r in rejected
    )


@needs_nb201
def test_rerun_resumes_and_extends_the_budget(cli, tmp_path):
    assert cli(*tabular(tmp_path, "--budget", "20"))[0] == 0
    first = (tmp_path / "out" / "trials.csv").read_text().splitlines()
    code, out, _ = cli(*tabular(tmp_path, "--budget", "30"))
    assert code == 0 and "resumed 20 finished trials" in out
    second = (tmp_path / "out" / "trials.csv").read_text().splitlines()
    assert second[: len(first)] == first
    assert sum(",done," in line for line in second) == 30


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--strategy", "nope"), "unknown strategy 'nope'"),
        (("--space", "nope"), "unknown space 'nope'"),
        (("--device", "nope"), "unknown device"),
        (("--budget", "0"), "--budget must be > 0"),
        (("--estimator", "nope"), "unknown estimator 'nope'"),
        (("--sram", "0.001"), "no arch of space nb201 among"),
        (("--strategy-option", "population"), "must look like KEY=VALUE"),
    ],
)
@needs_nb201
def test_bad_input_is_one_line_exit_2(cli_error, tmp_path, args, message):
    base = tabular(tmp_path, "--budget", "5")
    for flag in ("--space", "--budget"):
        if flag in args:
            i = base.index(flag)
            del base[i : i + 2]
    assert message in cli_error(*base, *args)


@needs_nb201
def test_journal_of_another_search_is_refused_and_kept_intact(cli, tmp_path):
    assert cli(*tabular(tmp_path, "--budget", "10", "--strategy", "random"))[0] == 0
    before = snapshot(tmp_path / "run.db")
    code, _, err = cli(*tabular(tmp_path, "--budget", "10", "--strategy", "re"))
    assert code == 2 and "belongs to another search (strategy 'random'" in err
    code, _, err = cli(*tabular(tmp_path, "--budget", "10", "--seed", "1", "--strategy", "random"))
    assert code == 2 and "seed" in err
    assert snapshot(tmp_path / "run.db") == before


def test_missing_table_file_is_one_line(cli, tmp_path):
    code, _, err = cli("search", "--space", "nb201", "--estimator", "tabular", "--data",
                       str(tmp_path / "none.csv"), "--journal", str(tmp_path / "j.db"))
    assert code == 2 and "none.csv" in err
    assert not (tmp_path / "j.db").exists()


def test_missing_dataset_dir_fails_before_any_journal(cli, tmp_path):
    code, _, err = cli("search", "--space", "mcunet", "--dataset", "fashion-mnist", "--data-dir",
                       str(tmp_path / "nowhere"), "--journal", str(tmp_path / "j.db"))
    assert code == 2 and "nowhere" in err
    assert not (tmp_path / "j.db").exists()


@pytest.mark.slow
def test_training_search_builds_archs_with_the_given_space_options(cli, tmp_path):
    import torch

    opts = {"resolutions": [16], "widths": [0.3], "stages": [[16, 2, [1, 2]], [24, 2, [1]]]}
    flags = [f"--space-option={k}={json.dumps(v)}" for k, v in opts.items()]
    code, _, err = cli("search", "--space", "mcunet", *flags, "--dataset", "digits", "--budget", "2",
                       "--epochs", "1", "--train-size", "200", "--strategy", "random",
                       "--journal", str(tmp_path / "run.db"), "--out", str(tmp_path / "out"))
    assert code == 0, err
    best = json.loads((tmp_path / "out" / "best_arch.json").read_text())
    space = get_space("mcunet", **best["space_options"])
    assert best["space_options"] == opts
    model = space.build(space.parse(json.dumps(best)), best["num_classes"])
    state = torch.load(tmp_path / "out" / "best_weights.pt", weights_only=True)
    model.load_state_dict(state)  # strict: the trained network is the one these options build
    assert sum(p.numel() for p in model.parameters()) == best["cost"]["params"]


@pytest.mark.slow
def test_supernet_estimator_searches_the_space_the_supernet_was_trained_on(cli, tmp_path):
    ckpt = str(tmp_path / "sn.pt")
    code, _, err = cli("supernet", "train", "--space", "mcunet", "-o", "resolutions=[16]",
                       "-o", "stages=[[16,2,[1,2]],[24,2,[1,2]]]", "--width", "0.5", "--dataset", "digits",
                       "--epochs", "1", "--full-epochs", "1", "--out", ckpt)
    assert code == 0, err
    code, _, err = cli("search", "--space", "mcunet", "--estimator", "supernet", "--supernet", ckpt,
                       "--budget", "5", "--journal", str(tmp_path / "run.db"), "--out", str(tmp_path / "out"))
    assert code == 0, err
    rows = list(csv.DictReader((tmp_path / "out" / "trials.csv").open()))
    assert [r["status"] for r in rows] == ["done"] * 5
    assert all(r["arch"].startswith("r16_w0.5|") for r in rows)
    assert all(0 <= float(r["val_accuracy"]) <= 100 for r in rows)
    code, _, err = cli("search", "--space", "mcunet", "--estimator", "supernet", "--budget", "5",
                       "--journal", str(tmp_path / "other.db"))
    assert code == 2 and "needs --supernet PATH" in err
