"""Shared test fixtures: paths to the reference data and a CLI runner."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from edgenas.cli import main

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
NB201_DIR = SHARED_DATA / "nb201"


@pytest.fixture
def cli(capsys):
    """Run ``edgenas ARGS``; returns (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def cli_error(cli):
    """Run ``edgenas ARGS`` on bad input: exit 2, one line on stderr, no traceback; returns it."""

    def run(*args: str) -> str:
        code, out, err = cli(*args)
        assert code == 2, (out, err)
        assert len(err.strip().splitlines()) == 1, err
        assert "Traceback" not in out + err
        return err

    return run


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """Test tensors are tiny: a second torch thread only contends with the rest of the machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def assert_routes_agree(analytic, traced, module=None, label: str = "") -> None:
    """The analytic cost and the module profiler's agree on every total (and torch's numel)."""
    if module is not None:
        assert analytic.params == sum(p.numel() for p in module.parameters()), label
    assert (analytic.params, analytic.macs, analytic.all_ops, analytic.flash_bytes) == (
        traced.params, traced.macs, traced.all_ops, traced.flash_bytes,
    ), label
    assert analytic.peak_sram_bytes == traced.peak_sram_bytes, label
