"""Keep mediapipe's native (absl/glog) start-up chatter off the user's terminal."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager


@contextmanager
def quiet_native_stderr():
    """Send file descriptor 2 to /dev/null for the block; Python exceptions still propagate.

    absl writes its warnings before any log level can be set, so the only lever is the fd.
    """
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # no real stderr (e.g. under some test runners)
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)
