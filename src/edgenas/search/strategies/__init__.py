"""Search strategies behind one ask/tell protocol, chosen by name from a registry.

Each strategy is one module here with a ``@register_strategy("name")`` class; every module
is imported on first use, so adding a strategy is one new file.
"""

from edgenas.search.strategies.base import (
    STRATEGIES,
    Objective,
    Strategy,
    _load_all,
    list_strategies,
    make_strategy,
    register_strategy,
)

_load_all()

__all__ = ["STRATEGIES", "Objective", "Strategy", "list_strategies", "make_strategy", "register_strategy"]
