"""The ``edgenas`` command line: a thin typer app over the library.

Each command group lives in its own module and is registered here with one line.
"""

from __future__ import annotations

import sys

import typer

from edgenas.cli import models_cmd, profile_cmd
from edgenas.cli.output import err_console
from edgenas.errors import EdgenasError

app = typer.Typer(
    name="edgenas",
    help="Hardware-aware neural architecture search for tiny and efficient networks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("profile")(profile_cmd.profile)
app.add_typer(models_cmd.app, name="models")


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
