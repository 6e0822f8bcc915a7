"""Live streams: each running stream is a reader thread and an analysis thread with its own Analyzer.

The analysis thread always takes the newest frame (older ones are dropped, so the stream
stays live), analyses it, feeds the site's analytics (when a site config is given), keeps
the latest annotated frame for ``frame.jpg`` / MJPEG and publishes a per-frame summary
on the hub. States: ``starting`` (models loading), ``running``, ``degraded`` (the source
dropped and is being reconnected, or no frame for a while), ``stopped``, ``failed``.

Usage::

    manager = StreamManager(store, site, hub.publish, blur=False)
    manager.add(StreamSpec(id="table-7", source="rtsp://cam-7/stream", camera="table-7"))
    manager.start("table-7"); manager.get("table-7").status(); manager.stop_all()
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

import cv2

from .. import Analyzer
from ..analytics.affect import valence_arousal
from ..analytics.site import SiteConfig
from ..config import AnalyzerConfig
from ..errors import ConfigError, TiltwatchError, first_line
from ..pipeline.build import build_analyzer
from ..pipeline.faults import FrameFaults
from ..sinks.draw import annotate
from ..sources.base import Frame
from ..types import FrameResult
from .live_alerts import LiveAlerts, Publish
from .readers import LiveReader, check_source, masked_source
from .settings import StreamSpec

log = logging.getLogger(__name__)
STALL_S = 5.0  # running but no frame for this long: degraded
WATCHDOG_S = 15.0  # a camera or URL that sends nothing for this long is reconnected (the reader's watchdog)
LATENCY_WINDOW = 300  # frames of per-stage latency kept for metrics


class StreamError(TiltwatchError):
    """A stream request that cannot be done; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class LiveStream:
    def __init__(
        self,
        spec: StreamSpec,
        store,
        site: SiteConfig | None,
        publish: Publish,
        blur: bool = False,
        config: AnalyzerConfig | None = None,
    ):
        self.spec = spec
        self.config = config
        self.store = store
        self.site = site
        self.publish = publish
        self.blur = blur
        self.state = "stopped"
        self.last_error: str | None = None
        self.frames = 0
        self.faces = 0  # faces summed over frames
        self.faces_now = 0
        self.timings: dict[str, deque[float]] = {}
        self.started_at: float | None = None
        self._reader: LiveReader | None = None
        self._dropped_before = 0  # dropped / reconnects of earlier runs (readers are per run)
        self._reconnects_before = 0
        self.failed_frames = 0  # frames read but not analysable, all runs
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._done_at = deque(maxlen=60)  # monotonic times of recent analysed frames (fps)
        self._last_frame_at = 0.0
        self._latest: tuple[Frame, FrameResult] | None = None
        self._live: LiveAlerts | None = None
        self._jpeg: tuple[int, bytes] | None = None
        self._lock = threading.Lock()

    # --- control ------------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.active:
            raise StreamError(f"stream {self.spec.id!r} is already running", 409)
        self._stop.clear()
        self.state, self.last_error = "starting", None
        self.started_at = time.time()
        self._thread = threading.Thread(target=self._work, name=f"stream:{self.spec.id}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        """Stop reading and analysing; open visits and alerts are closed and stored. Idempotent."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("stream %s did not stop within %.0f s", self.spec.id, timeout)

    # --- what the API reads -------------------------------------------------------------------

    @property
    def fps(self) -> float:
        times = list(self._done_at)
        if len(times) < 2 or time.monotonic() - times[-1] > 2.0:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])

    @property
    def dropped(self) -> int:
        reader = self._reader
        return self._dropped_before + (reader.dropped if reader is not None else 0)

    @property
    def reconnects(self) -> int:
        reader = self._reader
        return self._reconnects_before + (reader.reconnects if reader is not None else 0)

    @property
    def queue_depth(self) -> int:
        reader = self._reader
        return reader.depth if reader is not None else 0

    @property
    def latest_index(self) -> int:
        latest = self._latest
        return latest[1].index if latest is not None else -1

    def current_state(self) -> str:
        reader = self._reader
        if self.state in ("starting", "running") and reader is not None and reader.problem:
            return "degraded"  # reconnecting
        if self.state == "running" and time.monotonic() - self._last_frame_at > STALL_S:
            return "degraded"  # connected, but no frame for a while
        return self.state

    def status(self) -> dict[str, Any]:
        state = self.current_state()
        reader = self._reader
        problem = reader.problem if reader is not None else None
        return {
            "id": self.spec.id,
            "source": masked_source(self.spec.source),
            "camera": self.camera,
            "loop": self.spec.loop,
            "state": state,
            "fps": round(self.fps, 2),
            "frames": self.frames,
            "faces": self.faces_now,
            "faces_total": self.faces,
            "dropped_frames": self.dropped,
            "failed_frames": self.failed_frames,
            "reconnects": self.reconnects,
            "queue_depth": self.queue_depth,
            "last_error": problem if state == "degraded" and problem else self.last_error,
            "started_at": self.started_at,
            "frame": self.latest_index,
        }

    def open_alerts(self) -> list[dict[str, Any]]:
        """Alerts open right now (their ``alert_open`` messages); empty without a site config."""
        live = self._live
        return live.open_alerts() if live is not None else []

    @property
    def camera(self) -> str | None:
        if self.site is not None:
            try:
                return self.site.camera(self.spec.camera).id
            except ConfigError:
                return self.spec.camera
        return self.spec.camera

    def jpeg(self, quality: int = 80) -> bytes | None:
        """The latest annotated frame as JPEG (encoded once per frame, by whoever asks first)."""
        latest = self._latest
        if latest is None:
            return None
        frame, result = latest
        with self._lock:
            if self._jpeg is not None and self._jpeg[0] == result.index:
                return self._jpeg[1]
            image = annotate(frame.image, result, blur=self.blur)
            ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
            if not ok:
                return None
            self._jpeg = (result.index, buf.tobytes())
            return self._jpeg[1]

    # --- the analysis thread ------------------------------------------------------------------

    def _work(self) -> None:
        analyzer = live = reader = None
        try:
            reader = self._reader = LiveReader(self.spec.source, loop=self.spec.loop, stall_s=WATCHDOG_S)
            camera = self.site.camera(self.spec.camera) if self.site is not None else None
            analyzer = build_analyzer(self.config or AnalyzerConfig.preset(), camera)
            wall0 = time.time()  # the reader's t=0: stream seconds + wall0 = epoch seconds
            if self.site is not None:
                live = LiveAlerts(
                    self.store,
                    self.site,
                    self.spec.camera,
                    masked_source(self.spec.source),
                    self.spec.id,
                    self.publish,
                    start_time=wall0,
                    lost_seconds=analyzer.config.lost_seconds,  # (visits end as the tracker's ids do, as in jobs)
                )
                analyzer.exclude = live.staff_filter  # staff faces: counted per zone, never analysed
                self._live = live
            reader.start()
            self._last_frame_at = time.monotonic()
            faults = FrameFaults(f"stream {self.spec.id}", log)
            for frame, result in analyzer.stream(self._frames_told_fps(reader, analyzer), self.spec.id):
                if isinstance(result, Exception):  # one bad frame is skipped; 50 in a row fail the stream
                    self.failed_frames += 1
                    faults.failed_frame(frame.index, result)
                    continue
                faults.analysed()
                self._record(analyzer, frame, result)
                if live is not None:
                    try:
                        live.write(frame, result)
                    except TiltwatchError as exc:  # the store is down: keep the stream live, say why
                        self.last_error = str(exc)
                        log.error("stream %s: %s", self.spec.id, exc)
                self.publish(self._message(result, wall0 + frame.timestamp, live))
            if reader.finished and reader.problem:
                raise TiltwatchError(reader.problem)
            self.state = "stopped"
        except Exception as exc:  # noqa: BLE001 - a failing stream must say why, not vanish
            self.state = "failed"
            self.last_error = first_line(exc)
            log.error("stream %s failed: %s", self.spec.id, self.last_error)
        finally:
            self._reader = None
            if reader is not None:
                reader.stop()
                self._dropped_before += reader.dropped
                self._reconnects_before += reader.reconnects
            self._live = None
            if live is not None:
                try:
                    live.close()
                except TiltwatchError as exc:
                    self.last_error = str(exc)
                    log.error("stream %s: %s", self.spec.id, exc)
            if analyzer is not None:
                analyzer.close()

    def _frames_told_fps(self, reader: LiveReader, analyzer: Analyzer) -> Iterator[Frame]:
        """The reader's frames; the analyzer learns the stream's frame rate before the first."""
        for i, frame in enumerate(reader.frames(self._stop)):
            if i == 0 and reader.fps:
                analyzer.set_fps(reader.fps)
            yield frame

    def _record(self, analyzer: Analyzer, frame: Frame, result: FrameResult) -> None:
        now = time.monotonic()
        self._done_at.append(now)
        self._last_frame_at = now
        self.frames += 1
        self.faces += len(result.faces)
        self.faces_now = len(result.faces)
        self._latest = (frame, result)
        for stage, seconds in result.speed.items():
            self.timings.setdefault(stage, deque(maxlen=LATENCY_WINDOW)).append(seconds)
        if self.state == "starting":
            self.state = "running"

    def _message(self, result: FrameResult, timestamp: float, live: LiveAlerts | None) -> dict[str, Any]:
        return frame_message(self.spec.id, self.camera, result, timestamp, self.fps, live)


def frame_message(
    stream: str, camera: str | None, result: FrameResult, timestamp: float, fps: float, live: LiveAlerts | None
) -> dict[str, Any]:
    """A frame's summary as the WebSocket sends it (a live stream's and a camera actor's alike)."""
    faces = []
    for f in result.faces:
        emo = f.smoothed.emotion or f.emotion
        pose = f.smoothed.pose or f.pose
        valence, arousal = valence_arousal(emo.probs) if emo is not None else (None, None)
        faces.append(
            {
                "track_id": f.track_id,
                "box": [round(v, 1) for v in f.xywh],
                "label": emo.label if emo else None,
                "probs": emo.to_dict(digits=3)["probs"] if emo else None,  # (live: 3 digits do)
                "pose": pose.to_dict() if pose else None,
                "valence": None if valence is None else round(valence, 3),
                "arousal": None if arousal is None else round(arousal, 3),
                "zone": live.zone_of(f) if live is not None else None,
            }
        )
    return {
        "type": "frame",
        "stream": stream,
        "camera": camera,
        "frame": result.index,
        "timestamp": round(timestamp, 3),
        "width": result.width,
        "height": result.height,
        "fps": round(fps, 2),
        "faces": faces,
    }


class StreamRegistry:
    """The server's streams by id, thread-safe: what the routes call. :class:`StreamManager` runs
    each stream on a thread of this process; ``tiltwatch.cluster.control.ClusterManager`` as a
    camera actor on a Ray cluster. ``site``: the site config the cameras are checked against."""

    def __init__(self, site: SiteConfig | None):
        self.site = site
        self._streams: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _add(self, spec: StreamSpec, make) -> Any:
        """Check ``spec`` (its source, its camera in the site), then keep ``make(spec)`` under its id."""
        try:
            check_source(spec.source)
            if self.site is not None:
                self.site.camera(spec.camera)
        except TiltwatchError as exc:
            raise StreamError(str(exc), 422) from None
        with self._lock:
            if spec.id in self._streams:
                raise StreamError(f"stream {spec.id!r} already exists", 409)
            stream = self._streams[spec.id] = make(spec)
        return stream

    def has(self, stream_id: str) -> bool:
        return stream_id in self._streams

    def get(self, stream_id: str) -> Any:
        stream = self._streams.get(stream_id)
        if stream is None:
            raise StreamError(f"no stream {stream_id!r}", 404)
        return stream

    def all(self) -> list[Any]:
        with self._lock:
            return list(self._streams.values())

    def start(self, stream_id: str) -> Any:
        stream = self.get(stream_id)
        stream.start()
        return stream

    def stop(self, stream_id: str) -> Any:
        stream = self.get(stream_id)
        stream.stop()
        return stream

    def remove(self, stream_id: str) -> None:
        stream = self.get(stream_id)
        stream.stop()
        with self._lock:
            self._streams.pop(stream_id, None)

    def summary(self) -> dict[str, int]:
        counts: dict[str, int] = {"total": 0}
        for s in self.all():
            state = s.current_state()
            counts[state] = counts.get(state, 0) + 1
            counts["total"] += 1
        return counts


class StreamManager(StreamRegistry):
    """The server's streams, each on its own thread with its own analyzer."""

    def __init__(
        self, store, site: SiteConfig | None, publish: Publish, blur: bool = False, config: AnalyzerConfig | None = None
    ):
        super().__init__(site)
        self.store = store
        self.config = config
        self.publish = publish
        self.blur = blur

    def add(self, spec: StreamSpec) -> LiveStream:
        return self._add(spec, lambda s: LiveStream(s, self.store, self.site, self.publish, self.blur, self.config))

    def stop_all(self) -> None:
        """Signal every stream, then wait for each (they close their visits and alerts in parallel)."""
        streams = self.all()
        for s in streams:
            s._stop.set()
        for s in streams:
            s.stop()
