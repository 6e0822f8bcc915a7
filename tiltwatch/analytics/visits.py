"""From per-frame results to visits: one per track, with zones, dwell, affect and attention.

Usage::

    builder = VisitBuilder(camera_cfg, run_id="r1", sample_every=0.5, lost_seconds=2.0,
                           baseline=site.baseline, tilt_emotions=site.alerts.tilt.emotions)
    update = builder.update(result, t=start_epoch + result.timestamp)
    update.observations, update.visits, update.closed   # what to store
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..emotions import EMOTIONS
from ..types import FrameResult
from .affect import attentive, valence_arousal
from .baseline import BaselineLearner
from .records import Observation, Visit
from .site import BaselineRule, CameraConfig, TiltRule
from .zones import ZoneMap


@dataclass
class _Track:
    key: str
    track_id: int
    start: float
    last: float
    frames: int = 0
    zones: list[str] = field(default_factory=list)
    dwell: dict[str, float] = field(default_factory=dict)
    prob_sum: np.ndarray = field(default_factory=lambda: np.zeros(len(EMOTIONS)))
    va_sum: np.ndarray = field(default_factory=lambda: np.zeros(2))
    att_time: float = 0.0  # seconds spent attentive
    cone_time: float = 0.0  # seconds spent in a zone with an attention cone, with a pose
    last_sample: float = float("-inf")
    zone: str | None = None
    baseline: BaselineLearner | None = None
    tilt_max: np.ndarray | None = None  # each tilt emotion's highest smoothed value over the visit


@dataclass
class FaceState:
    """What the alert engine needs about one face in one frame."""

    visit_key: str
    track_id: int
    zone: str | None
    probs: np.ndarray
    attentive: bool | None
    baseline: BaselineLearner | None = None  # the track's (shared with the alert engine)


@dataclass
class VisitUpdate:
    observations: list[Observation] = field(default_factory=list)
    visits: list[Visit] = field(default_factory=list)  # changed visits, to upsert
    closed: list[str] = field(default_factory=list)  # visit keys that ended with this frame
    faces: list[FaceState] = field(default_factory=list)


class VisitBuilder:
    """``baseline``: how each track learns its resting expression (default: the site default);
    ``tilt_emotions``: those whose peak and peak deviation from the baseline each visit records."""

    def __init__(
        self,
        camera: CameraConfig,
        run_id: str,
        sample_every: float = 0.5,
        lost_seconds: float = 2.0,
        baseline: BaselineRule | None = None,
        tilt_emotions: list[str] | None = None,
    ):
        self.camera = camera
        self.zones = ZoneMap(camera)
        self.run_id = run_id
        self.sample_every = sample_every
        self.lost_seconds = lost_seconds
        self.baseline = BaselineRule() if baseline is None else baseline
        self._tilt = [EMOTIONS.index(e) for e in (TiltRule().emotions if tilt_emotions is None else tilt_emotions)]
        self._tracks: dict[int, _Track] = {}

    def update(self, result: FrameResult, t: float) -> VisitUpdate:
        up = VisitUpdate()
        for face in result.faces:
            if face.track_id is None:
                continue
            emo = face.smoothed.emotion or (None if face.abstained else face.emotion)
            if emo is None:
                continue
            tr = self._tracks.get(face.track_id)
            if face.abstained and tr is not None:  # seen, so the visit goes on, but it moves nothing
                tr.last = t
                continue
            if tr is None:
                tr = self._tracks[face.track_id] = _Track(f"{self.run_id}:{face.track_id}", face.track_id, t, t)
                tr.baseline = BaselineLearner(self.baseline, t, steady=self._tilt)
            dt = min(t - tr.last, self.lost_seconds) if tr.frames else 0.0
            zone_cfg = self.zones.zone_of_box(face.box)
            zone = zone_cfg.name if zone_cfg is not None and not zone_cfg.staff else None
            if zone is not None and zone not in tr.zones:
                tr.zones.append(zone)
            if tr.zone is not None:  # dwell: the time since the last frame counts for the zone it was in
                tr.dwell[tr.zone] = tr.dwell.get(tr.zone, 0.0) + dt
            pose = face.smoothed.pose or face.pose
            att = None
            if pose is not None and zone_cfg is not None and zone_cfg.attention is not None:
                att = attentive(pose.yaw, pose.pitch, zone_cfg.attention)
                tr.cone_time += dt
                tr.att_time += dt if att else 0.0
            probs = np.asarray(emo.probs, float)
            va = valence_arousal(probs)
            tr.prob_sum += probs
            tr.va_sum += va
            tr.frames += 1
            tr.last, tr.zone = t, zone
            self._tilt_peaks(tr, t, probs, face.quality)
            up.faces.append(FaceState(tr.key, tr.track_id, zone, probs, att, tr.baseline))
            if t - tr.last_sample >= self.sample_every:
                tr.last_sample = t
                up.observations.append(
                    Observation(
                        camera=self.camera.id,
                        visit_key=tr.key,
                        t=t,
                        zone=zone,
                        probs=[round(float(p), 4) for p in probs],
                        valence=round(va[0], 4),
                        arousal=round(va[1], 4),
                        yaw=round(pose.yaw, 2) if pose else None,
                        pitch=round(pose.pitch, 2) if pose else None,
                        attentive=att,
                        quality=face.quality,
                    )
                )
                up.visits.append(self._visit(tr))
        for tid, tr in list(self._tracks.items()):
            if t - tr.last > self.lost_seconds:
                up.visits.append(self._visit(tr, closed=True))
                up.closed.append(tr.key)
                del self._tracks[tid]
        return up

    def _tilt_peaks(self, tr: _Track, t: float, probs: np.ndarray, quality: float | None) -> None:
        """Feed the track's baseline; keep each tilt emotion's peak (its peak rise above the baseline
        over the whole visit, learning included, is then the peak minus the baseline)."""
        tr.baseline.update(t, probs, quality)
        tilt = probs[self._tilt]
        tr.tilt_max = tilt.copy() if tr.tilt_max is None else np.maximum(tr.tilt_max, tilt)

    def _peaks(self, tr: _Track) -> tuple[float | None, float | None]:
        """The visit's peak tilt score and peak deviation from the baseline (None without one)."""
        if tr.tilt_max is None:
            return None, None
        peak = round(float(tr.tilt_max.max()), 4)
        if tr.baseline.probs is None:
            return peak, None
        return peak, round(float((tr.tilt_max - tr.baseline.probs[self._tilt]).max()), 4)

    def close_all(self) -> list[Visit]:
        visits = [self._visit(tr, closed=True) for tr in self._tracks.values()]
        self._tracks.clear()
        return visits

    def _visit(self, tr: _Track, closed: bool = False) -> Visit:
        if closed:  # a visit over within its learning window keeps what it learned, if enough
            tr.baseline.finish()
        mean = tr.prob_sum / max(tr.frames, 1)
        peak_tilt, peak_deviation = self._peaks(tr)
        va = tr.va_sum / max(tr.frames, 1)
        return Visit(
            camera=self.camera.id,
            visit_key=tr.key,
            run_id=self.run_id,
            track_id=tr.track_id,
            start=tr.start,
            end=tr.last,
            zones=list(tr.zones),
            dwell_s={z: round(s, 3) for z, s in tr.dwell.items()},
            frames=tr.frames,
            mean_probs=[round(float(p), 4) for p in mean],
            dominant=EMOTIONS[int(np.argmax(mean))],
            mean_valence=round(float(va[0]), 4),
            mean_arousal=round(float(va[1]), 4),
            attention=round(tr.att_time / tr.cone_time, 4) if tr.cone_time > 0 else None,
            closed=closed,
            baseline=tr.baseline.rounded(),
            baseline_frames=tr.baseline.frames,
            peak_tilt=peak_tilt,
            peak_deviation=peak_deviation,
        )
