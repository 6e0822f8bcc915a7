"""Alerts as they happen: an :class:`AnalyticsSink` that also announces alerts when they *open*.

``AnalyticsSink`` stores an alert (and calls ``on_alert``) when it closes, with its full time
range: right for reports, too late for a live dashboard. This wrapper feeds the sink as
usual and then asks the alert engine which alerts are open; the first time a tilt or
disengagement alert is, it publishes an ``alert_open`` message, and
when the closed :class:`Alert` comes through ``on_alert`` it publishes an ``alert`` message.
Distress spikes are emitted by the engine at once, so they arrive as ``alert`` directly.

Usage::

    live = LiveAlerts(store, site, camera_id="cam-1", source="rtsp://...", stream="cam-1", publish=hub.publish)
    analyzer = Analyzer(exclude=live.staff_filter)
    live.write(frame, result)   # per frame, like any sink
    live.close()                # closes open visits and alerts, flushes the store
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from ..analytics.records import Alert
from ..analytics.sink import AnalyticsSink
from ..analytics.site import SiteConfig
from ..sinks.base import Sink
from ..sources.base import Frame
from ..types import FaceResult, FrameResult

Publish = Callable[[dict[str, Any]], None]


class LiveAlerts(Sink):
    def __init__(
        self,
        store,
        site: SiteConfig,
        camera_id: str | None,
        source: str,
        stream: str,
        publish: Publish,
        start_time: float | None = None,
        lost_seconds: float = 2.0,
    ):
        self.stream = stream
        self.publish = publish
        self.sink = AnalyticsSink(
            store, site, camera_id, source, start_time=start_time, lost_seconds=lost_seconds, on_alert=self._closed
        )
        self._open: dict[tuple[str, str], dict[str, Any]] = {}  # (visit key, kind) -> its alert_open message
        self._lock = threading.Lock()

    @property
    def camera(self) -> str:
        return self.sink.camera.id

    def staff_filter(self, face: FaceResult) -> str | None:
        return self.sink.staff_filter(face)

    def zone_of(self, face: FaceResult) -> str | None:
        """The patron zone a face is in (staff faces never reach here: the analyzer drops them)."""
        zone = self.sink.zones.zone_of_box(face.box)
        return zone.name if zone is not None and not zone.staff else None

    def write(self, frame: Frame, result: FrameResult) -> None:
        self.sink.write(frame, result)
        self._announce_opened()

    def close(self) -> None:
        self.sink.close()
        with self._lock:
            self._open.clear()

    def open_alerts(self) -> list[dict[str, Any]]:
        """The ``alert_open`` messages of alerts still open (for clients that connect late)."""
        with self._lock:
            return list(self._open.values())

    def _announce_opened(self) -> None:
        active = set()
        for a in self.sink.alerts.open_alerts():
            key = (a.visit_key, a.kind)
            active.add(key)
            known = self._open.get(key)
            if known is not None and known["start"] == round(a.start, 3):
                continue
            message = {
                "type": "alert_open",
                "stream": self.stream,
                "camera": self.camera,
                "kind": a.kind,
                "visit_key": a.visit_key,
                "track_id": a.track_id,
                "zone": a.zone,
                "start": round(a.start, 3),
                "value": round(a.value, 4),
                "threshold": a.threshold,
            }
            if a.emotion is not None:
                message["emotion"] = a.emotion
            with self._lock:
                self._open[key] = message
            self.publish(message)
        with self._lock:
            for gone in set(self._open) - active:
                del self._open[gone]

    def _closed(self, alert: Alert) -> None:
        self.publish({"type": "alert", "stream": self.stream, **asdict(alert)})
