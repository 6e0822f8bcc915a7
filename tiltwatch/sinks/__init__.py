"""Where results go: JSONL per frame, a CSV per track, an annotated H.264 video, a live window.

The sinks load on first use: the output folder's checks (``sinks.folder``) run before the
video and drawing stack (PyAV, mediapipe's mesh indices) is imported, so a bad input is
reported at once.
"""

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

if TYPE_CHECKING:
    from .base import Sink
    from .jsonl import JsonlSink
    from .summary import SummaryCsvSink
    from .video import AnnotatedVideoSink
    from .window import WindowSink

__all__ = ["Sink", "JsonlSink", "SummaryCsvSink", "AnnotatedVideoSink", "WindowSink"]
__getattr__ = lazy_exports(
    __name__,
    {
        "Sink": ".base",
        "JsonlSink": ".jsonl",
        "SummaryCsvSink": ".summary",
        "AnnotatedVideoSink": ".video",
        "WindowSink": ".window",
    },
)
