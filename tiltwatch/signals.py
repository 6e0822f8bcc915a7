"""SIGTERM (what ``timeout``, ``docker stop`` and systemd send) handled like Ctrl-C.

Inside ``stop_on_sigterm()`` a SIGTERM raises KeyboardInterrupt in the main thread, so a run
stops the way Ctrl-C stops it: sinks closed and flushed, visits closed, outputs kept. The
caller exits with 128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM).

Usage::

    with stop_on_sigterm() as signalled:
        stats = run(...)
    if stats.interrupted: sys.exit(128 + (signalled.signum or signal.SIGINT))
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass
class Signalled:
    signum: int | None = None  # the signal that stopped the run (None: Ctrl-C or none)


@contextmanager
def stop_on_sigterm() -> Iterator[Signalled]:
    got = Signalled()
    if threading.current_thread() is not threading.main_thread():  # signals reach only the main thread
        yield got
        return

    def handler(signum, frame) -> None:
        got.signum = signum
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield got
    finally:
        signal.signal(signal.SIGTERM, previous)
