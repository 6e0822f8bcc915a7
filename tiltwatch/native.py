"""Native libraries' own lines kept off the user's terminal: mediapipe's runtime announcing itself
at start-up (absl, glog, XNNPACK), libpng and libjpeg complaining about a damaged picture (the
picture is then skipped, or read as far as it goes, and our one line says so).

They write straight to file descriptor 2, before any log level can be set, so the only lever is
the descriptor: for the block it points at a temporary file. With ``drop`` (the decoders' lines),
whatever else the process writes there meanwhile (another thread's warning, a progress bar) is
written on afterwards, so only the library's lines go; without it (a runtime's start-up chatter)
everything written during the block goes. One block at a time in a process: the decoders are
quieted only where a command asks (:func:`keep_decoders_quiet`: ``analyze``), not in the server,
whose image workers would otherwise decode one at a time.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: the lines libpng and libjpeg (through OpenCV) print about a damaged or odd file
DECODER_LINES = re.compile(
    rb"^(libpng (error|warning)|Corrupt JPEG data|Premature end of JPEG file|Invalid SOS parameters"
    rb"|Inconsistent progression sequence|Warning: |JPEG datastream|Bogus |Huffman table)"
)
_ONE_AT_A_TIME = threading.RLock()  # (two blocks at once would restore each other's descriptor)
_decoders_quiet = False  # set by keep_decoders_quiet(): tiltwatch analyze's process


def quiet_decoders() -> bool:
    """Whether this process keeps the decoders' own lines off the terminal (the CLI does)."""
    return _decoders_quiet


@contextmanager
def quiet_native_stderr(drop: re.Pattern[bytes] | None = None) -> Iterator[None]:
    """Hold file descriptor 2's output for the block; afterwards write on every line except those
    ``drop`` matches (None: drop all, for a runtime's start-up chatter). Exceptions propagate."""
    fd = 2  # (the libraries write there, whatever sys.stderr has become)
    with _ONE_AT_A_TIME:  # (inside it: another block's descriptor must not be the one saved)
        try:
            saved = os.dup(fd)
        except OSError:  # no descriptor 2 at all (a daemon started without one)
            yield
            return
        try:
            held = tempfile.TemporaryFile()
        except OSError:  # no writable temporary folder: the lines are let through, nothing fails
            os.close(saved)
            yield
            return
        with held:
            _flush()
            try:
                os.dup2(held.fileno(), fd)
                yield
            finally:
                _flush()
                os.dup2(saved, fd)
                os.close(saved)
                if drop is not None:
                    held.seek(0)
                    kept = b"".join(line for line in held if not drop.match(line))
                    if kept:
                        os.write(fd, kept)


def quiet_native_logs() -> None:
    """OpenCV's and FFmpeg's own log lines off (they come before, and say less than, ours): for a
    command's process, before OpenCV first logs (``tiltwatch``, ``python -m tiltwatch.server``)."""
    os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
    os.environ.setdefault("AV_LOG_FORCE_NOCOLOR", "1")


def keep_decoders_quiet() -> None:
    """From now on this process keeps libpng's and libjpeg's lines off the terminal (``tiltwatch
    analyze``; see the module's docstring for why not the server)."""
    global _decoders_quiet
    _decoders_quiet = True


def _flush() -> None:
    try:
        sys.stderr.flush()
    except (AttributeError, OSError, ValueError):  # closed, or not a file
        pass
