"""Shared test fixtures: paths to the reference data and a CLI runner."""

from __future__ import annotations

from pathlib import Path

import pytest

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
