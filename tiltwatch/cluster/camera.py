"""One Ray actor per camera: its own reader, its own Analyzer (models loaded once, tracker and smoother
state inside it) and its own analytics into the store.

The actor starts working in its constructor, so when Ray restarts it (the process was killed, its
node died) it resumes by itself; every start is a new run in the store (``Store.start_run``, which
also closes the run the dead process left open), so a person seen after a restart is never merged
with one seen before it. Actors are *detached*: they outlive the process that started them (an API
restart does not stop the cameras) and are found again by name (:func:`get_camera`).

Two ways to read:

* live (the default): :class:`~tiltwatch.server.readers.LiveReader`, newest frame only, reconnects
  with backoff, and its no-frame watchdog (``stall_s``) gives up a connection that sends nothing;
  a file or ``sample`` is played paced to its frame rate (``loop`` to repeat it);
* ``every_frame``: a file read whole, in order, as fast as the analyzer goes (``tiltwatch analyze``'s
  results, frame for frame; what ``bench --cluster`` measures).

States: ``starting`` (models loading), ``ready`` (started with ``hold``: waiting for ``go()``),
``running``, ``reconnecting`` (the source dropped or sends nothing: the reader reconnects),
``finished`` (the file ended, or ``max_frames``), ``stopped`` (``stop()``), ``failed``
(``last_error`` says why). ``restarts`` comes from Ray's control store (``None`` where it cannot say).
A control plane (:mod:`.control`) reads ``poll()``: the status and, with ``publish``, each frame's
summary and the alerts as the server's WebSocket sends them; ``jpeg()`` is the newest frame, annotated.

Usage::

    spec = CameraSpec(id="table-7", source="rtsp://cam-7/stream", site=site.model_dump(),
                      store_url="postgresql+psycopg://...", num_cpus=2)
    actor = start_camera(spec)
    ray.get(actor.status.remote())   # {'state': 'running', 'frames': ..., 'fps': ..., 'node': ..., ...}
    remove_camera("table-7")         # stop (visits and alerts closed) and let it go
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from . import NAMESPACE, require_ray

log = logging.getLogger(__name__)


CAMERA_SLOT = "tiltwatch_camera"  # the Ray resource a camera takes with ``slot``: a node's cap of cameras
STALL_S = 5.0  # running, but no frame for this long: reconnecting
MESSAGES = 256  # frame and alert messages kept for poll()


@dataclass
class CameraSpec:
    """Everything a camera actor needs, all plain data (it travels to whichever node runs the actor)."""

    id: str  # the actor's name is ``camera:<id>``
    source: str  # a file, 'sample', a camera index or a stream URL
    camera: str | None = None  # which camera of the site config this is (default: the site's only one)
    site: dict[str, Any] | None = None  # SiteConfig.model_dump(): with store_url, visits and alerts are stored
    store_url: str | None = None  # sqlite:///file.db (tests) or postgresql+psycopg://... (production)
    store_batch_s: float = 2.0  # the store writes at least this often (a crash loses at most that much)
    config: dict[str, Any] = field(default_factory=dict)  # the base AnalyzerConfig (preset + settings file)
    overrides: dict[str, Any] = field(default_factory=dict)  # explicit settings, over the site camera's own
    every_frame: bool = False  # read a file whole and in order instead of live (newest frame only)
    loop: bool = False  # live: play a file or 'sample' again at its end
    stall_s: float | None = 15.0  # live cameras and URLs: reconnect when no frame came for this long
    max_frames: int | None = None  # stop after this many analysed frames (per run)
    results: str | None = None  # append each frame's FrameResult.to_dict() here, one JSON line each
    encode: bool = False  # also annotate and encode H.264 (to a scratch file: what files cost)
    video_preset: str = "superfast"
    publish: bool = False  # keep each frame's summary and the alerts for poll() (the control plane's feed)
    num_cpus: float = 1.0  # Ray resources of the actor
    memory_mb: int | None = None  # Ray's logical memory reservation (scheduling only, not a hard limit)
    slot: bool = False  # take one CAMERA_SLOT: only nodes that declare them run it, at most that many
    max_task_retries: int = -1  # method calls retried across restarts (-1: always)
    hold: bool = False  # load the models, open the source, then wait for go() (a benchmark's common start)

    @property
    def name(self) -> str:
        return f"camera:{self.id}"


class CameraActor:
    """The actor's body (plain Python: Ray wraps it in :func:`actor_class`)."""

    def __init__(self, spec: CameraSpec):
        self.spec = spec
        self.state = "starting"
        self.last_error: str | None = None
        self.frames = self.faces = self.faces_now = 0
        self.failed_frames = 0  # frames read but not analysable
        self.run_id: str | None = None
        self.started_at = time.time()
        self._done_at: deque[float] = deque(maxlen=60)
        self._first_at: float | None = None
        self._began_at: float | None = None  # when the loop began (after go): a run's fps is over its span
        self._last_at: float | None = None
        self._latest = None  # (Frame, FrameResult) of the newest analysed frame
        self._jpeg: tuple[int, bool, bytes] | None = None
        self._messages: deque[tuple[int, dict]] = deque(maxlen=MESSAGES)
        self._seq = 0
        self._lock = threading.Lock()
        self._source = self._frames = self._live = None
        self._wall0 = time.time()
        self._stop = threading.Event()
        self._go = threading.Event()
        self._thread = threading.Thread(target=self._work, name=f"camera:{spec.id}", daemon=True)
        self._thread.start()

    # --- the actor's methods ------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        ray = require_ray()
        from ..server.readers import masked_source

        ctx = ray.get_runtime_context()
        times = list(self._done_at)
        fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) >= 2 and times[-1] > times[0] else 0.0
        span = self._last_at - self._began_at if self._began_at is not None and self._last_at else 0.0
        reader = self._source
        latest = self._latest
        return {
            "id": self.spec.id,
            "camera": self.spec.camera,
            "source": masked_source(self.spec.source),
            "loop": self.spec.loop,
            "state": self._state(),
            "frames": self.frames,
            "faces": self.faces,
            "faces_now": self.faces_now,
            "frame": latest[1].index if latest is not None else -1,
            "fps": round(fps, 2),
            "fps_run": round(self.frames / span, 2) if span > 0 else 0.0,
            "seconds": span,
            "node": ctx.get_node_id(),
            "pid": os.getpid(),
            "restarts": self._restarts(ctx),
            "run_id": self.run_id,
            "started_at": self.started_at,
            "dropped_frames": getattr(reader, "dropped", 0),
            "failed_frames": self.failed_frames,
            "reconnects": getattr(reader, "reconnects", 0),
            "stalls": getattr(reader, "stalls", 0),
            "last_error": getattr(reader, "problem", None) or self.last_error,
        }

    def _restarts(self, ctx) -> int | None:
        """How often Ray restarted this actor: read once, the figure is this process's for its life."""
        if getattr(self, "_restarts_seen", None) is None:
            self._restarts_seen = _restarts(ctx.get_actor_id())
        return self._restarts_seen

    def poll(self, since: int = 0) -> dict[str, Any]:
        """The status and the messages (``publish``: frames, alerts) after number ``since``; ``seq``: the last."""
        with self._lock:
            messages = [m for n, m in self._messages if n > since]
            seq = self._seq
        return {"status": self.status(), "messages": messages, "seq": seq, "open_alerts": self.open_alerts()}

    def jpeg(self, blur: bool = False, quality: int = 80) -> bytes | None:
        """The newest analysed frame, annotated, as JPEG (None before the first)."""
        import cv2

        from ..sinks.draw import annotate

        latest = self._latest
        if latest is None:
            return None
        frame, result = latest
        cached = self._jpeg
        if cached is not None and cached[:2] == (result.index, blur):
            return cached[2]
        ok, buf = cv2.imencode(".jpg", annotate(frame.image, result, blur=blur), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            return None
        self._jpeg = (result.index, blur, buf.tobytes())
        return self._jpeg[2]

    def open_alerts(self) -> list[dict[str, Any]]:
        live = self._live
        return live.open_alerts() if live is not None and hasattr(live, "open_alerts") else []

    def describe(self) -> dict[str, Any]:
        """The spec this actor runs (a control plane that restarted finds its cameras by it)."""
        from dataclasses import asdict

        return asdict(self.spec)

    def go(self) -> None:
        """Start analysing (a camera started with ``hold``, once it is ``ready``)."""
        self._go.set()

    def stop(self, timeout: float = 30.0) -> dict[str, Any]:
        """Stop reading and analysing; open visits and alerts are closed and stored, the run ended."""
        self._stop.set()
        self._go.set()
        self._thread.join(timeout)
        return self.status()

    def _state(self) -> str:
        reader = self._source
        if self.state in ("starting", "running") and getattr(reader, "problem", None):
            return "reconnecting"  # the source dropped or stalled: its reader reconnects
        if self.state == "running" and not self.spec.every_frame and self._last_at is not None:
            if time.monotonic() - self._last_at > STALL_S:
                return "reconnecting"  # connected, but nothing comes (the watchdog takes over at stall_s)
        return self.state

    def _publish(self, message: dict[str, Any]) -> None:
        with self._lock:
            self._seq += 1
            self._messages.append((self._seq, message))

    # --- the work thread ----------------------------------------------------------------------

    def _work(self) -> None:
        from ..errors import TiltwatchError, first_line

        spec = self.spec
        analyzer = analytics = store = None
        files: list = []
        try:
            analyzer, analytics, store, files, reader, fps, name = self._setup()
            if spec.hold:
                self.state = "ready"
                while not (self._go.wait(0.2) or self._stop.is_set()):
                    pass
            self._began_at = time.monotonic()
            self._loop(analyzer, analytics, files, reader, fps, name)
            if reader is not None and getattr(reader, "finished", False) and getattr(reader, "problem", None):
                raise TiltwatchError(reader.problem)
            self.state = "stopped" if self._stop.is_set() else "finished"
        except Exception as exc:  # noqa: BLE001 - a failing camera must say why, not vanish
            self.state, self.last_error = "failed", first_line(exc)
            log.error("camera %s failed: %s", spec.id, self.last_error)
        finally:
            self._close(files, analytics, store, analyzer)

    def _setup(self):
        """Site, analyzer, source, file sinks and the store's analytics; the live reader started."""
        from ..analytics.site import SiteConfig
        from ..config import AnalyzerConfig
        from ..pipeline.build import build_analyzer

        spec = self.spec
        site = SiteConfig.model_validate(spec.site) if spec.site is not None else None
        cam = site.camera(spec.camera) if site is not None else None
        base = AnalyzerConfig.model_validate(spec.config) if spec.config else AnalyzerConfig.preset()
        frames, fps, name, reader = self._open()
        self._frames = frames
        analyzer = build_analyzer(base, cam, spec.overrides, fps=fps)
        files = self._file_sinks(fps)
        self._wall0 = time.time()  # the live reader's t=0 (a file's: its first frame, as for analyze)
        analytics = store = None
        if site is not None and spec.store_url:
            analytics, store = self._analytics(site, cam.id, analyzer.config.lost_seconds)
            analyzer.exclude = analytics.staff_filter  # staff faces: counted per zone, never analysed
        if hasattr(reader, "start"):
            reader.start()
        return analyzer, analytics, store, files, reader, fps, name

    def _analytics(self, site, camera: str, lost_seconds: float):
        """Visits, alerts and zone counts into the store (with ``publish``: alerts announced as they open)."""
        from ..analytics.sink import AnalyticsSink
        from ..server.live_alerts import LiveAlerts
        from ..server.readers import masked_source
        from ..store import Store

        spec = self.spec
        store = Store(spec.store_url, batch_seconds=spec.store_batch_s)
        wall0 = self._wall0
        source = masked_source(spec.source)
        if spec.publish:
            live = LiveAlerts(store, site, camera, source, spec.id, self._publish, wall0, lost_seconds)
            self.run_id = live.sink.run_id
        else:
            live = AnalyticsSink(store, site, camera, source, start_time=wall0, lost_seconds=lost_seconds)
            self.run_id = live.run_id
        self._live = live
        return live, store

    def _loop(self, analyzer, analytics, files, reader, fps, name) -> None:
        from ..errors import TiltwatchError
        from ..pipeline.faults import FrameFaults

        spec = self.spec
        faults = FrameFaults(f"camera {spec.id}", log)
        for frame, result in analyzer.stream(self._frames_until_stopped(analyzer, reader, fps), name):
            if isinstance(result, Exception):  # one bad frame is skipped; 50 in a row fail the camera
                self.failed_frames += 1
                faults.failed_frame(frame.index, result)
                continue
            faults.analysed()
            for sink in files:
                sink.write(frame, result)
            if analytics is not None:
                try:
                    analytics.write(frame, result)
                except TiltwatchError as exc:  # the store is down: keep analysing, say why
                    self.last_error = str(exc)
            self._count(frame, result)
            if spec.max_frames is not None and self.frames >= spec.max_frames:
                break

    def _frames_until_stopped(self, analyzer, reader, fps):
        """The source's frames until a stop is asked; the analyzer learns their rate before the first."""
        for i, frame in enumerate(self._frames):
            if self._stop.is_set():
                return
            rate = getattr(reader, "fps", None) or fps  # (a live file's rate is known once it is open)
            if i == 0 and rate:  # as the runner does: the source's rate, once
                analyzer.set_fps(rate / (getattr(reader, "stride", 1) or 1))
            yield frame

    def _open(self):
        """(frames, fps, source name, reader) for the spec's way of reading."""
        if self.spec.every_frame:
            from ..pipeline.threads import prefetch
            from ..sources import open_source

            src = open_source(self.spec.source)
            self._source = src
            return prefetch(src), src.fps, src.name, src
        from ..server.readers import LiveReader

        stall = self.spec.stall_s  # (started once the models are loaded)
        reader = LiveReader(self.spec.source, loop=self.spec.loop, stall_s=stall)
        self._source = reader
        return reader.frames(self._stop), reader.fps, self.spec.id, reader

    def _file_sinks(self, fps: float | None) -> list:
        sinks: list = []
        if self.spec.results:
            sinks.append(_JsonLines(self.spec.results))
        if self.spec.encode:
            import tempfile
            from pathlib import Path

            from ..sinks.video import AnnotatedVideoSink

            self._scratch = tempfile.TemporaryDirectory(prefix="tiltwatch-camera-")
            sinks.append(
                AnnotatedVideoSink(
                    Path(self._scratch.name) / "annotated.mp4", fps=fps or 25.0, preset=self.spec.video_preset
                )
            )
        return sinks

    def _count(self, frame, result) -> None:
        now = time.monotonic()
        if self._first_at is None:
            self._first_at = now
        self._last_at = now
        self._done_at.append(now)
        self.frames += 1
        self.faces += len(result.faces)
        self.faces_now = len(result.faces)
        if self.state in ("starting", "ready"):
            self.state = "running"
        if not self.spec.every_frame:
            self._latest = (frame, result)  # (live only: a file read whole keeps no frames)
        if self.spec.publish:
            from ..server.streams import frame_message

            times = list(self._done_at)
            fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) >= 2 and times[-1] > times[0] else 0.0
            live = self._live if hasattr(self._live, "zone_of") else None
            stamp = self._wall0 + frame.timestamp
            self._publish(frame_message(self.spec.id, self.spec.camera, result, stamp, fps, live))

    def _close(self, files, analytics, store, analyzer) -> None:
        from ..errors import first_line

        source = self._source
        frames = self._frames  # (the read-ahead thread stops before its source closes)
        steps = [getattr(frames, "close", None), getattr(source, "stop", None) or getattr(source, "close", None)]
        steps += [s.close for s in files] + [analytics.close if analytics is not None else None]
        steps += [store.close if store is not None else None, analyzer.close if analyzer is not None else None]
        for step in steps:
            if step is None:
                continue
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - the rest must still be closed
                self.last_error = self.last_error or first_line(exc)
        scratch = getattr(self, "_scratch", None)
        if scratch is not None:
            scratch.cleanup()


class _JsonLines:
    """results.jsonl's lines (as JsonlSink writes them), appended: a restarted actor adds a new pass."""

    def __init__(self, path: str):
        self._fh = open(path, "a", buffering=1)

    def write(self, frame, result) -> None:
        self._fh.write(json.dumps(result.to_dict(), separators=(",", ":")) + "\n")

    def close(self) -> None:
        self._fh.close()


def _restarts(actor_id: str | None) -> int | None:
    """How often Ray restarted this actor (from the cluster's control store; None if it cannot say)."""
    try:
        from ray._private import state  # (the public state API needs the dashboard running)

        return int(state.actors(actor_id=actor_id).get("NumRestarts", 0))
    except Exception:  # noqa: BLE001 - a figure for status only
        return None


_ACTOR = None


def actor_class():
    """``CameraActor`` as a Ray actor class (made once)."""
    global _ACTOR
    if _ACTOR is None:
        ray = require_ray()
        _ACTOR = ray.remote(CameraActor)
    return _ACTOR


def camera_options(spec: CameraSpec, node_id: str | None = None, spread: bool = False) -> dict[str, Any]:
    """The actor's Ray options: named, detached, restarted for ever; ``node_id``: prefer that node (soft:
    when it dies the camera moves on); ``spread``: one camera a node as far as they go."""
    opts: dict[str, Any] = {
        "name": spec.name,
        "namespace": NAMESPACE,
        "lifetime": "detached",
        "max_restarts": -1,
        "max_task_retries": spec.max_task_retries,
        "num_cpus": spec.num_cpus,
    }
    if spec.slot:
        opts["resources"] = {CAMERA_SLOT: 1}
    if spec.memory_mb:
        opts["memory"] = int(spec.memory_mb) * 1024 * 1024
    if node_id is not None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        opts["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node_id, soft=True)
    elif spread:
        opts["scheduling_strategy"] = "SPREAD"
    return opts


def start_camera(spec: CameraSpec, node_id: str | None = None, spread: bool = False):
    """Start the camera's actor (it starts working at once) and return its handle."""
    return actor_class().options(**camera_options(spec, node_id, spread)).remote(spec)


def get_camera(camera_id: str):
    """The running actor of camera ``camera_id`` (ValueError if there is none)."""
    ray = require_ray()
    return ray.get_actor(f"camera:{camera_id}", namespace=NAMESPACE)


def remove_camera(camera_id: str, timeout: float = 30.0) -> dict[str, Any] | None:
    """Stop the camera (its run ended in the store) and end its actor for good; its last status."""
    ray = require_ray()
    try:
        actor = get_camera(camera_id)
    except ValueError:
        return None
    try:
        last = ray.get(actor.stop.remote(), timeout=timeout)
    except Exception:  # noqa: BLE001 - it goes either way
        last = None
    ray.kill(actor, no_restart=True)
    return last
