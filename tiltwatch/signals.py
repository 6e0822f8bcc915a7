"""SIGTERM (what ``timeout``, ``docker stop`` and systemd send) handled like Ctrl-C.

Inside ``stop_on_sigterm()`` a SIGTERM raises KeyboardInterrupt in the main thread, so a run
stops the way Ctrl-C stops it: sinks closed and flushed, visits closed, outputs kept. The
caller exits with 128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM).

Usage::

    with stop_on_sigterm(deferred=True) as signalled:
        ... set up (models load) ...
        signalled.raise_from_now_on()
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
    signum: int | None = None  # the signal that stopped the run (SIGTERM, SIGINT; None: none)
    deferred: bool = False  # only noted for now (set-up: a KeyboardInterrupt inside an import breaks it)

    def raise_from_now_on(self) -> None:
        """End the deferral: KeyboardInterrupt now if a signal came meanwhile, at each one from here on."""
        self.deferred = False
        if self.signum is not None:
            raise KeyboardInterrupt


@contextmanager
def stop_on_sigterm(deferred: bool = False) -> Iterator[Signalled]:
    """``deferred``: until ``raise_from_now_on()``, a first SIGTERM or SIGINT is only noted in
    ``signum`` (a C extension being imported turns a KeyboardInterrupt into ImportError: a
    traceback, exit 1); a second one interrupts at once (a set-up that hangs can still be stopped)."""
    got = Signalled(deferred=deferred)
    if threading.current_thread() is not threading.main_thread():  # signals reach only the main thread
        yield got
        return

    def handler(signum, frame) -> None:
        again = got.signum is not None
        got.signum = signum
        if not got.deferred or again:
            raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield got
    finally:
        for sig, before in previous.items():
            signal.signal(sig, before)
