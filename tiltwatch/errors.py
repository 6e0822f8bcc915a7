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
    (InputError, 422),
    (ConfigError, 422),
    (BusyError, 503),
    (StoreError, 503),
    (OutputError, 507),
    (ModelError, 500),
    (TiltwatchError, 500),
]


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


def pydantic_message(exc) -> str:
    """A pydantic ``ValidationError`` as one line (see :func:`validation_message`)."""
    return validation_message(list(exc.errors()))


def validation_message(errors: list[dict], skip: tuple[str, ...] = ("body",)) -> str:
    """One line for pydantic's errors: ``where: what`` of the first, and how many more.

    Bad JSON reads ``request body is not valid JSON: <why> (at byte N)``; a wrong type names the
    type it got (``source: Input should be a valid string, got int``)."""
    if not errors:
        return "invalid request"
    errors = sorted(errors, key=lambda e: e.get("type") != "extra_forbidden")  # a misspelt key before its
    first = errors[0]  # real name's "missing"
    kind = str(first.get("type", ""))
    loc = tuple(first.get("loc", ()))
    if kind == "json_invalid":
        at = f" (at character {loc[1]})" if len(loc) > 1 else ""
        return f"request body is not valid JSON: {(first.get('ctx') or {}).get('error', 'decode error')}{at}"
    if kind == "missing" and loc == ("body",):
        return "request body is missing: send a JSON object"
    where = ".".join(str(p) for p in loc if p not in skip) or "request body"
    what = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    if kind.endswith("_type") and "input" in first:  # strict types: say what came instead
        what += f", got {_json_type(first['input'])}"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {what}{more}"


def _json_type(value: object) -> str:
    names = {bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "object"}
    return "null" if value is None else names.get(type(value), type(value).__name__)
