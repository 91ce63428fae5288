"""Shared console output helpers: exact numbers with separators, byte sizes, JSON."""

from __future__ import annotations

import json
import sys

from rich.console import Console

console = Console()
err_console = Console(stderr=True)


def fmt_int(n: int) -> str:
    return f"{n:,}"


def fmt_bytes(n: int) -> str:
    """Exact bytes plus a readable kB/MB figure (1 kB = 1,024 bytes, as MCU datasheets use)."""
    if n < 1024:
        return f"{n:,} B"
    if n < 1024**2:
        return f"{n:,} ({n / 1024:.1f} kB)"
    return f"{n:,} ({n / 1024**2:.2f} MB)"


def print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")
