"""The run loop: frames from a source through the analyzer into every sink.

A frame that cannot be analysed is counted and skipped (:mod:`.faults`). The sinks are closed
(and so flushed) however the run ends: at the end of the source, on Ctrl-C or SIGTERM (the
caller turns SIGTERM into KeyboardInterrupt), when the live window is closed, or when an output
cannot be written (a full disk: OutputError).

Usage::

    stats = run(open_source("clip.mp4"), Analyzer(), [JsonlSink("out/results.jsonl")])
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from tqdm import tqdm

from ..errors import OutputError, first_line
from ..sinks.base import Sink
from ..sinks.window import StopRequested, WindowSink
from ..sources.base import FrameSource
from .analyzer import Analyzer
from .faults import FrameFaults
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
    signum: int | None = None  # the signal that interrupted the run, if one did (set by the caller)
    causes: dict[str, int] = field(default_factory=dict)  # why frames failed: first line -> frames

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        s = (
            f"{self.frames} frames in {self.seconds:.1f}s ({self.fps:.1f} fps), {self.faces} faces, "
            f"{len(self.tracks)} tracks"
        )
        if self.skipped or self.failed:
            s += f"; {len(self.skipped) + self.failed} unreadable frames or files skipped"
        return s + (" (interrupted)" if self.interrupted else "")


def run(
    source: FrameSource,
    analyzer: Analyzer,
    sinks: list[Sink],
    progress: bool = True,
    max_frames: int | None = None,
    threaded: bool = True,
) -> RunStats:
    """``threaded``: decode ahead, run the emotion model beside the next frame's detection and write
    behind, each on its own thread (results are identical).

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
    analysed = analyzer.stream(frames, source.name, overlap=threaded)
    faults, ended = FrameFaults(source.name, log), False
    try:
        # (a photo of a folder is named by its own file, a video frame by the video)
        for frame, result in analysed:
            if isinstance(result, Exception):  # one bad frame must not end a 24/7 run
                faults.failed_frame(frame.index, result)
                continue
            faults.analysed()
            try:
                if writer is not None:
                    writer.write(frame, result)
                for sink in here:
                    sink.write(frame, result)
            except OSError as exc:  # a full disk, a folder gone: what was written is kept
                raise _output_error(exc) from None
            stats.frames += 1
            stats.faces += len(result.faces)
            stats.tracks.update(f.track_id for f in result.faces if f.track_id is not None)
            bar.update(1)
            if max_frames is not None and stats.frames >= max_frames:
                break
        ended = True
    except (KeyboardInterrupt, StopRequested):
        stats.interrupted = ended = True
    finally:
        stats.seconds = time.perf_counter() - t0
        bar.close()
        analysed.close()  # (waits for a frame still in the emotion model)
        if hasattr(frames, "close"):
            frames.close()  # stop the read-ahead thread before the source closes under it
        source.close()
        stats.skipped = list(source.skipped)
        stats.failed, stats.causes = faults.failed, faults.causes
        _close_sinks(writer, here, raise_error=ended)  # (not over an error already on its way)
    return stats


def _output_error(exc: OSError) -> OutputError:
    where = f"{exc.filename}: " if exc.filename else ""
    return OutputError(f"{where}cannot write ({exc.strerror or first_line(exc)})")


def _close_sinks(writer: WriteBehind | None, here: list[Sink], raise_error: bool) -> None:
    """Close every sink, even when one fails; the first failure is raised after all are closed."""
    error: BaseException | None = None
    closers = ([writer.close] if writer is not None else []) + [s.close for s in here]
    for close in closers:
        try:
            close()
        except OSError as exc:
            error = error or _output_error(exc)
        except Exception as exc:  # noqa: BLE001 - the other sinks must still be closed
            error = error or exc
    if error is not None and raise_error:  # a run that ended well but could not flush its outputs
        raise error
    if error is not None:
        log.warning("while closing the outputs: %s", first_line(error))
