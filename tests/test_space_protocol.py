"""The generic SearchSpace protocol on a toy space: validation messages and canonical archs."""

import numpy as np
import pytest

from edgenas.errors import EdgenasError
from toy_search import ToySpace


def test_equal_values_make_equal_archs_with_the_same_id():
    space = ToySpace()
    a = space.make({"width": 8, "depth": 2, "kernel": 3})
    b = space.make({"width": 8.0, "depth": 2, "kernel": 3.0})
    assert a == b and a.id == b.id and a.key() == b.key()
    assert isinstance(b["width"], int)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"width": 8, "depth": 2}, "missing field 'kernel'; allowed values: 3, 5"),
        ({"width": 7, "depth": 2, "kernel": 3}, "'width' = 7 is not allowed; choose one of 4, 8, 16, 32"),
        ({"width": 8, "depth": 2, "kernel": 3, "bogus": 1}, "'bogus' is not a dimension of space toy"),
    ],
)
def test_bad_arch_names_the_field_and_allowed_values(values, message):
    with pytest.raises(EdgenasError, match=message):
        ToySpace().make(values)


def test_parse_rejects_json_from_another_space_and_broken_json():
    space = ToySpace()
    with pytest.raises(EdgenasError, match="from space 'nb201'"):
        space.parse('{"space": "nb201", "values": {}}')
    with pytest.raises(EdgenasError, match="not valid JSON"):
        space.parse('{"space": ')


def test_mutate_changes_exactly_one_choice_and_round_trip_holds():
    space, rng = ToySpace(), np.random.default_rng(0)
    for _ in range(30):
        a = space.sample(rng)
        b = space.mutate(a, rng)
        assert sum(a[k] != b[k] for k in a.values) == 1
        assert space.parse(a.model_dump_json()) == a
