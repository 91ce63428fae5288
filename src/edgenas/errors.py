"""User-facing errors: one line naming the problem and the fix; the CLI turns them into exit 2."""


class EdgenasError(ValueError):
    """Bad input from the user (unknown name, malformed file, impossible constraint).

    The message is a single line that says what is wrong and how to fix it.
    """
