"""The run loop: frames from a source through the analyzer into every sink.

A frame that cannot be analysed is counted and skipped; the sinks are closed (and so
flushed) however the run ends: at the end of the source, on Ctrl-C, or when the live
window is closed.

Usage::

    stats = run(open_source("clip.mp4"), Analyzer(), [JsonlSink("out/results.jsonl")])
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from tqdm import tqdm

from ..errors import TiltwatchError
from ..sinks.base import Sink
from ..sinks.window import StopRequested, WindowSink
from ..sources.base import FrameSource
from .analyzer import Analyzer
from .threads import WriteBehind, prefetch

log = logging.getLogger(__name__)


@dataclass
class RunStats:
    frames: int = 0  # frames analysed
    failed: int = 0  # frames read but not analysable
    skipped: list[str] = field(default_factory=list)  # what the source could not read, one line each
    faces: int = 0
    tracks: set[int] = field(default_factory=set)
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        s = (f"{self.frames} frames in {self.seconds:.1f}s ({self.fps:.1f} fps), {self.faces} faces, "
             f"{len(self.tracks)} tracks")
        if self.skipped or self.failed:
            s += f"; {len(self.skipped) + self.failed} unreadable frames or files skipped"
        return s + (" (interrupted)" if self.interrupted else "")


def run(source: FrameSource, analyzer: Analyzer, sinks: list[Sink], progress: bool = True,
        max_frames: int | None = None, threaded: bool = True) -> RunStats:
    """``threaded``: decode ahead and write behind on their own threads (results are identical).

    Live window sinks always stay on this thread (GUI toolkits want the main thread)."""
    stats = RunStats()
    if source.fps:
        analyzer.set_fps(source.fps / getattr(source, "stride", 1))
    total = source.total if max_frames is None else min(source.total or max_frames, max_frames)
    bar = tqdm(total=total, unit="frame", disable=not progress or source.live, desc=source.name[-40:])
    t0 = time.perf_counter()
    here = [s for s in sinks if isinstance(s, WindowSink) or not threaded]
    writer = WriteBehind([s for s in sinks if s not in here]) if len(here) < len(sinks) else None
    frames = prefetch(source) if threaded and not source.live else iter(source)
    try:
        for frame in frames:
            try:
                result = analyzer.analyze(frame.image, frame.timestamp, frame.index, source.name)
            except TiltwatchError as exc:
                stats.failed += 1
                log.warning("frame %d: %s", frame.index, exc)
                continue
            if writer is not None:
                writer.write(frame, result)
            for sink in here:
                sink.write(frame, result)
            stats.frames += 1
            stats.faces += len(result.faces)
            stats.tracks.update(f.track_id for f in result.faces if f.track_id is not None)
            bar.update(1)
            if max_frames is not None and stats.frames >= max_frames:
                break
    except (KeyboardInterrupt, StopRequested):
        stats.interrupted = True
    finally:
        stats.seconds = time.perf_counter() - t0
        bar.close()
        if hasattr(frames, "close"):
            frames.close()  # stop the read-ahead thread before the source closes under it
        source.close()
        if writer is not None:
            writer.close()
        for sink in here:
            sink.close()
        stats.skipped = list(source.skipped)
    return stats
