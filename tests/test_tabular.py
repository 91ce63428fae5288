"""The NAS-Bench-201 table: loading, look-ups by arch and arch string, and one-line errors."""

from __future__ import annotations

import pickle

import pytest

from conftest import NB201_DIR
from edgenas.errors import EdgenasError
from edgenas.estimate.tabular import ENV_VAR, FILENAME, NB201Evaluator, find_nb201, load_nb201
from edgenas.spaces import get_space

CSV = NB201_DIR / FILENAME
needs_nb201 = pytest.mark.skipif(not CSV.is_file(), reason=f"NB201 table {CSV} not present")
# first data row of the CSV (NAS-Bench-201 index 0)
ARCH0 = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
HEADER = "arch,cellstr,cifar10-test,cifar10-val,cifar100-test,cifar100-val,imagenet-test,imagenet-val\n"


@pytest.fixture(scope="module")
def table():
    return load_nb201(CSV)


@needs_nb201
def test_table_has_every_cell_and_the_published_values(table):
    assert len(table) == 15_625 == get_space("nb201").size()
    assert table.best("cifar10") == pytest.approx(84.892, abs=1e-3)
    assert table.best("cifar100") == pytest.approx(61.32, abs=1e-3)
    assert table.best("imagenet", "val") == pytest.approx(38.6667, abs=1e-3)
    i = table.row(ARCH0)
    assert i == 0
    assert table.column("cifar10", "val")[i] == pytest.approx(63.364, abs=1e-3)
    assert table.column("cifar10", "test")[i] == 69.55
    assert table.column("ImageNet16-120", "test")[i] == pytest.approx(17.0, abs=1e-6)


@needs_nb201
def test_evaluator_looks_up_archs_and_strings_and_pickles(table):
    space = get_space("nb201")
    ev = NB201Evaluator("cifar100", table)
    arch = space.from_string(ARCH0)
    expected = {"val_accuracy": pytest.approx(31.84), "test_accuracy": pytest.approx(31.26)}
    assert ev(arch) == ev(ARCH0) == expected
    # every arch of the space has a row: the space's strings and the table's agree
    assert sorted(ev.row(a) for a in space.enumerate()) == list(range(15_625))
    clone = pickle.loads(pickle.dumps(ev))
    assert clone(arch) == ev(arch) and clone.best_val() == pytest.approx(61.32, abs=1e-3)
    with pytest.raises(EdgenasError, match="unknown NB201 dataset 'svhn'"):
        NB201Evaluator("svhn", table)
    with pytest.raises(EdgenasError, match="is not in the NB201 table"):
        ev("|none~0|+|none~0|none~1|+|none~0|none~1|bogus~2|")


def test_explicit_path_env_var_and_search_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv(ENV_VAR, raising=False)
    small = tmp_path / "small.csv"
    small.write_text(HEADER + f"0,{ARCH0},69.55,63.364,31.26,31.84,17.0,18.4667\n")
    assert len(load_nb201(small)) == 1
    with pytest.raises(EdgenasError, match=r"table .*nope.csv not found; pass --data .* or set EDGENAS"):
        load_nb201(tmp_path / "nope.csv")
    monkeypatch.setenv(ENV_VAR, str(small))
    assert find_nb201() == small
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "gone.csv"))
    with pytest.raises(EdgenasError, match=r"gone\.csv not found"):
        find_nb201()
    monkeypatch.delenv(ENV_VAR)
    if not (tmp_path.parent / "shared" / "data" / "nb201" / FILENAME).exists():
        with pytest.raises(EdgenasError, match=r"NB201 table not found in .*nb201_12epoch.csv, "):
            find_nb201()
    (tmp_path / FILENAME).write_text(small.read_text())  # ./nb201_12epoch.csv is found first
    assert find_nb201() == tmp_path / FILENAME


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("arch,cellstr,cifar10-val\n0,x,1\n", "has no column 'cifar10-test'"),
        (HEADER + f"0,{ARCH0},69.55,abc,31.26,31.84,17.0,18.4\n", "line 2 has a non-numeric accuracy"),
        (HEADER + f"0,{ARCH0},69.55,63.3,31.26,31.84,17.0\n", "line 2 has a non-numeric accuracy"),
        (HEADER, "has no rows"),
        ("", "has no column 'cellstr' .columns: none."),
        (HEADER + f"0,{ARCH0},1,2,3,4,5,6\n1,{ARCH0},1,2,3,4,5,6\n", "lists an arch twice"),
    ],
)
def test_malformed_tables_are_one_line_errors(tmp_path, content, message):
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    with pytest.raises(EdgenasError, match=message) as e:
        load_nb201(bad)
    assert "\n" not in str(e.value) and str(bad) in str(e.value) and "--data" in str(e.value)


def test_binary_file_is_a_one_line_error(tmp_path):
    bad = tmp_path / "table.csv"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x00garbage")
    with pytest.raises(EdgenasError, match="not a text CSV file"):
        load_nb201(bad)
