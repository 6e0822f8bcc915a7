"""Errors tiltwatch raises on purpose: each carries a one-line message for the user.

The HTTP service answers each kind with its own status (``HTTP_STATUS``, most specific first),
and the CLI prints ``error: <message>`` and exits non-zero, never a traceback.
"""

from __future__ import annotations


class TiltwatchError(Exception):
    """Base of every error meant to be shown to a user as one line."""


class InputError(TiltwatchError):
    """An input (file, image, stream, dataset) that cannot be used, named in the message."""


class ConfigError(TiltwatchError):
    """A configuration value or file that is wrong, named in the message."""


class ModelError(TiltwatchError):
    """A model file that cannot be loaded or does not fit the pipeline."""


class StoreError(TiltwatchError):
    """The store (database) cannot be opened, read or written."""


class OutputError(TiltwatchError):
    """An output file or folder that cannot be written (a file in the way, no permission, a full disk)."""


class BusyError(TiltwatchError):
    """Too much work already waiting: retry shortly."""


# error type -> HTTP status of the service's answer (the first match wins: subclasses first)
HTTP_STATUS: list[tuple[type[TiltwatchError], int]] = [
    (InputError, 422), (ConfigError, 422), (BusyError, 503), (StoreError, 503), (OutputError, 507),
    (ModelError, 500), (TiltwatchError, 500)]


def http_status(exc: TiltwatchError) -> int:
    """The HTTP status for ``exc``: its own ``status`` if it has one, else by type."""
    own = getattr(exc, "status", None)
    if isinstance(own, int):
        return own
    return next(status for kind, status in HTTP_STATUS if isinstance(exc, kind))


def first_line(exc: BaseException, limit: int = 300) -> str:
    """An exception as one line for a log or a status field: its message's first line, else its type."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__


def one_line(exc) -> str:
    """A pydantic ``ValidationError`` as one line: ``where: what`` of the first error, and how many more.

    A misspelt key is reported before the "missing" error of the key it was meant to be."""
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    if not errors:
        return "invalid value"
    first = errors[0]
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "value"
    what = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {what}{more}"
