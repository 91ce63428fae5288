"""The ``edgenas`` command line: a thin typer app over the library.

Each command group lives in its own module ``edgenas/cli/*_cmd.py`` that defines
``register(app)``; every such module is found and registered here, so adding a command is
one new file.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import typer

from edgenas.cli.output import err_console
from edgenas.errors import EdgenasError

app = typer.Typer(
    name="edgenas",
    help="Hardware-aware neural architecture search for tiny and efficient networks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register_commands() -> None:
    import edgenas.cli as package

    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name.endswith("_cmd"):
            importlib.import_module(f"edgenas.cli.{info.name}").register(app)


_register_commands()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; bad input gives one line on stderr and exit code 2, never a traceback."""
    try:
        app(args=argv)
    except EdgenasError as e:
        err_console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        return 2
    except SystemExit as e:  # typer's normal end, and its exit 2 for usage errors
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return 0


def entry() -> None:
    sys.exit(main())
