"""The sink that turns a run's frames into visits, alerts and staff-zone counts in the store.

Usage::

    sink = AnalyticsSink(store, site, camera_id="cam-1", source="clip.mp4")
    run(source, Analyzer(exclude=sink.staff_filter), [sink])
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from ..sinks.base import Sink
from ..sources.base import Frame
from ..types import FaceResult, FrameResult
from .alerts import AlertEngine
from .records import Alert, ZoneCount
from .site import SiteConfig
from .visits import VisitBuilder
from .zones import ZoneMap

log = logging.getLogger(__name__)
_SAID_OUTSIDE: set[tuple[str, str, int, int]] = set()  # (camera, zone, w, h) said once a process: a stream restarts


class AnalyticsSink(Sink):
    """``start_time``: wall-clock time (epoch seconds) of the source's t=0; default: now."""

    def __init__(
        self,
        store,
        site: SiteConfig,
        camera_id: str | None,
        source: str,
        start_time: float | None = None,
        lost_seconds: float = 2.0,
        on_alert: Callable[[Alert], None] | None = None,
    ):
        self.store = store
        self.site = site
        self.camera = site.camera(camera_id)
        self.t0 = time.time() if start_time is None else start_time
        self.run_id = store.start_run(self.camera.id, source)
        self.zones = ZoneMap(self.camera)
        self.visits = VisitBuilder(
            self.camera, self.run_id, site.sample_every, lost_seconds, site.baseline, site.alerts.tilt.emotions
        )
        self.alerts = AlertEngine(site.alerts, self.camera.id)
        self.on_alert = on_alert
        self._last_count = float("-inf")
        self._t = self.t0
        self.alert_count = 0
        self._checked_frame = False

    def staff_filter(self, face: FaceResult) -> str | None:
        """For ``Analyzer(exclude=...)``: the staff zone a face is in, if any."""
        zone = self.zones.zone_of_box(face.box)
        return zone.name if zone is not None and zone.staff else None

    def _emit(self, alerts: list[Alert]) -> None:
        for a in alerts:
            self.store.add(a)
            self.alert_count += 1
            if self.on_alert is not None:
                self.on_alert(a)

    def write(self, frame: Frame, result: FrameResult) -> None:
        if not self._checked_frame:  # the frame's size is known only now
            self._checked_frame = True
            for name in self.zones.outside(result.width, result.height):
                said = (self.camera.id, name, result.width, result.height)
                if said in _SAID_OUTSIDE:
                    continue
                _SAID_OUTSIDE.add(said)
                log.warning(
                    "camera %s: zone %r lies wholly outside the %dx%d frame; it will never hold a face "
                    "(check its polygon against this camera's picture)",
                    self.camera.id,
                    name,
                    result.width,
                    result.height,
                )
        t = self._t = self.t0 + result.timestamp
        up = self.visits.update(result, t)
        for obs in up.observations:
            self.store.add(obs)
        for v in up.visits:
            self.store.upsert_visit(v)
        for f in up.faces:
            self._emit(self.alerts.update(f.visit_key, f.track_id, t, f.zone, f.probs, f.attentive, f.baseline))
        for key in up.closed:
            self._emit(self.alerts.close(key, t))
        if result.detected and t - self._last_count >= self.site.sample_every:
            self._last_count = t
            for z in self.zones.staff_zones:
                self.store.add(ZoneCount(self.camera.id, z.name, t, int(result.excluded.get(z.name, 0))))

    def close(self) -> None:
        for v in self.visits.close_all():
            self.store.upsert_visit(v)
        self._emit(self.alerts.close_all(self._t))
        self.store.flush()
        self.store.end_run(self.run_id)
