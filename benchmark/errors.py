"""Errors the CLI turns into one-line messages instead of tracebacks."""


class UsageError(ValueError):
    """Bad input from the user: the CLI prints the message and exits with code 2.

    A ``ValueError``, so that plugin code and callers of the Python API can treat a bad value
    the way Python does everywhere else.
    """


class SinkStartError(UsageError):
    """A sink that started in the background could not (a deleted MLflow experiment): the run stops, exit 2."""


def describe_exception(exc: BaseException) -> str:
    """One line for a plugin's exception (``sys.exit`` included)."""
    if isinstance(exc, SystemExit):
        return f"called sys.exit({exc.code!r})"
    return " ".join(f"{type(exc).__name__}: {exc}".split())
