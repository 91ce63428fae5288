"""Parsing shared by the commands: repeatable ``KEY=VALUE`` options."""

from __future__ import annotations

import json
from typing import Any

from edgenas.errors import EdgenasError


def parse_options(items: list[str] | None, flag: str = "-o") -> dict[str, Any]:
    """``KEY=VALUE`` pairs; VALUE is JSON when it parses (numbers, lists), else a string."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise EdgenasError(f"{flag} {item!r} must look like KEY=VALUE, e.g. {flag} blocks=4")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out
