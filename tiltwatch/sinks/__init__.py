"""Where results go: JSONL per frame, a CSV per track, an annotated H.264 video, a live window."""

from .base import Sink
from .jsonl import JsonlSink
from .summary import SummaryCsvSink
from .video import AnnotatedVideoSink
from .window import WindowSink

__all__ = ["Sink", "JsonlSink", "SummaryCsvSink", "AnnotatedVideoSink", "WindowSink"]
