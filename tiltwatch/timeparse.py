"""Wall-clock times given by users: ISO 8601 (a time without a zone is UTC) or, where allowed, epoch seconds.

Usage::

    parse_time("2026-11-21T14:30:00Z", "--start-time")   # 1795789800.0
"""

from __future__ import annotations

from datetime import UTC, datetime

from .errors import ConfigError


def parse_time(text: str | None, name: str, epoch_ok: bool = False) -> float | None:
    """Epoch seconds of ``text`` (None stays None); ConfigError naming ``name`` when it is not a time."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    if epoch_ok:
        try:
            return float(text)
        except ValueError:
            pass
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        also = " or epoch seconds" if epoch_ok else ""
        raise ConfigError(f"{name}: expected ISO 8601 (e.g. 2026-11-21T14:30:00Z){also}, got {text!r}") from None
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()
