"""Errors the CLI turns into one-line messages instead of tracebacks."""


class UsageError(Exception):
    """Bad input from the user: the CLI prints the message and exits with code 2."""
