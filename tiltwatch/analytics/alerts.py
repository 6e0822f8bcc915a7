"""Alerts per visit: tilt, disengagement, distress spikes; each with its evidence.

Tilt and disengagement use one hysteresis rule: the condition must hold for ``seconds``
(measured from when it first crossed ``threshold``) before the alert fires, and the alert
stays open until the value crosses back past ``release``; a value hovering around the
threshold therefore gives one alert, not a flicker of many. An alert is emitted when it
closes (or when its visit or the run ends), with its full time range.

Tilt and the track's baseline (:mod:`tiltwatch.analytics.baseline`): once a track has one, a
tilt emotion counts only while it is both at least ``threshold`` and at least ``margin`` above
its baseline. One hysteresis does both: it follows, per emotion, ``min(p, p - b + threshold -
margin)``, which is at least ``threshold`` exactly when both hold and falls below ``release``
when either falls back (the deviation past ``margin - (threshold - release)``). The alert's
value and series stay the absolute probability; its evidence adds the baseline and the peak
deviation. While the baseline is still being learned the track's frames wait (at most
``baseline.seconds`` of them); when learning ends they are replayed under the rule that then
applies, so each visit gets exactly the tilt alerts of one rule over its whole length, with
their true times, only announced up to ``baseline.seconds`` late. A track with no baseline (too
few confident observations, a face that was not steady, or ``enabled: false``) follows the
absolute rule alone, exactly as without a baseline.

Usage::

    engine = AlertEngine(site.alerts, camera="cam-1")
    alerts = engine.update(visit_key, track_id, t, zone, smoothed_probs, attentive, baseline=learner)
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from ..emotions import EMOTIONS
from .baseline import BaselineLearner
from .records import Alert
from .site import AlertRules

SERIES_KEPT = 120  # points of an open alert's series kept for its evidence (thinned to 60 when it closes)


@dataclass
class Hysteresis:
    """``above=True``: fires when value >= threshold for ``seconds``, closes when value < release.
    ``above=False`` mirrors it (value <= threshold, closes when value > release)."""

    threshold: float
    release: float
    seconds: float
    above: bool = True
    since: float | None = None  # when the value first crossed the threshold
    active: bool = False
    peak: float | None = None
    series: list = field(default_factory=list)

    def _beyond(self, v: float, level: float) -> bool:
        return v >= level if self.above else v <= level

    def update(self, t: float, v: float, shown: float | None = None) -> tuple[float, float, float, list] | None:
        """Feed one value; returns (start, end, peak, series) when an alert closes, else None.
        ``shown``: what the peak and series record, when not ``v`` itself (tilt: the absolute value)."""
        shown = v if shown is None else shown
        if self.since is None:
            if self._beyond(v, self.threshold):
                self.since, self.peak, self.series = t, shown, [(t, shown)]
            return None
        if self._beyond(v, self.release):  # still on (hysteresis band counts as on)
            self.series.append((t, shown))
            if len(self.series) > 2 * SERIES_KEPT:  # an alert on for hours: every other point, evenly spread
                self.series = self.series[::2]
            self.peak = max(self.peak, shown) if self.above else min(self.peak, shown)
            if not self.active and t - self.since >= self.seconds:
                self.active = True
            return None
        return self.finish(t)

    def finish(self, t: float) -> tuple[float, float, float, list] | None:
        done = (self.since, t, self.peak, self.series) if self.active else None
        self.since, self.active, self.peak, self.series = None, False, None, []
        return done


def _thin(series: list, n: int = 60) -> list:
    step = max(1, len(series) // n)
    return [[round(t, 3), round(v, 4)] for t, v in series[::step]]


@dataclass(frozen=True)
class OpenAlert:
    """A tilt or disengagement alert in progress (it has fired and not yet closed)."""

    kind: str
    visit_key: str
    track_id: int
    zone: str | None
    start: float
    value: float  # the peak so far
    threshold: float
    emotion: str | None = None  # tilt: the emotion that drove it


@dataclass
class _VisitAlerts:
    tilt: Hysteresis
    disengaged: Hysteresis
    attention: deque = field(default_factory=deque)  # (t, attentive)
    distress: deque = field(default_factory=deque)  # (t, fear + sadness)
    last_spike: float = float("-inf")
    tilt_emotion: str = ""
    zone: str | None = None
    baseline: BaselineLearner | None = None
    tilt_deviation: float | None = None  # the open tilt episode's peak rise above the baseline
    waiting: list = field(default_factory=list)  # (t, probs) while the baseline learns, replayed after


class AlertEngine:
    def __init__(self, rules: AlertRules, camera: str):
        self.rules = rules
        self.camera = camera
        self._visits: dict[str, _VisitAlerts] = {}
        self._track: dict[str, int] = {}
        self._tilt_idx = [EMOTIONS.index(e) for e in rules.tilt.emotions]

    def _state(self, key: str) -> _VisitAlerts:
        if key not in self._visits:
            r = self.rules
            self._visits[key] = _VisitAlerts(
                tilt=Hysteresis(r.tilt.threshold, r.tilt.release, r.tilt.seconds),
                disengaged=Hysteresis(
                    r.disengagement.threshold, r.disengagement.release, r.disengagement.seconds, above=False
                ),
            )
        return self._visits[key]

    def update(
        self,
        visit_key: str,
        track_id: int,
        t: float,
        zone: str | None,
        probs,
        attentive: bool | None,
        baseline: BaselineLearner | None = None,
    ) -> list[Alert]:
        """One face of a visit at ``t``: its smoothed probabilities, whether it looks into its zone's
        cone (None: no cone or no pose) and its track's baseline (None: the absolute rule alone)."""
        st = self._state(visit_key)
        self._track[visit_key] = track_id
        st.zone = zone if zone is not None else st.zone
        st.baseline = baseline if baseline is not None else st.baseline
        probs = np.asarray(probs, float)
        out = self._tilt(visit_key, st, t, probs)
        if attentive is not None:
            out += self._disengagement(visit_key, st, t, attentive)
        return out + self._distress(visit_key, st, t, probs)

    def _tilt_value(self, st: _VisitAlerts, probs: np.ndarray) -> tuple[float, float, str, float | None]:
        """(what the hysteresis follows, the absolute value shown, the emotion, the rise above the baseline)."""
        rule = self.rules.tilt
        p = probs[self._tilt_idx]
        base = None if st.baseline is None else st.baseline.probs
        if base is None:  # the absolute rule
            i = int(np.argmax(p))
            return float(p[i]), float(p[i]), rule.emotions[i], None
        rise = p - base[self._tilt_idx]
        gate = np.minimum(p, rise + (rule.threshold - rule.margin))  # >= threshold: both hold
        i = int(np.argmax(gate))
        return float(gate[i]), float(p[i]), rule.emotions[i], float(rise.max())

    def _tilt(self, key: str, st: _VisitAlerts, t: float, probs: np.ndarray) -> list[Alert]:
        if st.baseline is not None and st.baseline.learning:  # which rule applies is not known yet
            st.waiting.append((t, probs))
            return []
        return self._replay(key, st) + self._tilt_step(key, st, t, probs)

    def _replay(self, key: str, st: _VisitAlerts) -> list[Alert]:
        """The baseline's learning is over: the frames that waited for it, under the rule that now applies."""
        waiting, st.waiting = st.waiting, []
        return [a for t, probs in waiting for a in self._tilt_step(key, st, t, probs)]

    def _tilt_step(self, key: str, st: _VisitAlerts, t: float, probs: np.ndarray) -> list[Alert]:
        gate, shown, emotion, rise = self._tilt_value(st, probs)
        if st.tilt.since is None:  # no episode yet: this frame's emotion would start it
            st.tilt_emotion, st.tilt_deviation = emotion, None
        done = st.tilt.update(t, gate, shown)
        if st.tilt.since is not None and rise is not None:
            st.tilt_deviation = rise if st.tilt_deviation is None else max(rise, st.tilt_deviation)
        return [self._alert("tilt", key, done, self.rules.tilt.threshold, st, self._tilt_evidence(st))] if done else []

    def _tilt_evidence(self, st: _VisitAlerts) -> dict:
        rule = self.rules.tilt
        extra = {"emotion": st.tilt_emotion, "emotions": rule.emotions}
        base = None if st.baseline is None else st.baseline.probs
        if base is not None:
            extra["baseline"] = {e: round(float(base[EMOTIONS.index(e)]), 4) for e in rule.emotions}
            extra["margin"] = rule.margin
            if st.tilt_deviation is not None:
                extra["deviation"] = round(st.tilt_deviation, 4)
        return extra

    def _disengagement(self, key: str, st: _VisitAlerts, t: float, attentive: bool) -> list[Alert]:
        rule = self.rules.disengagement
        st.attention.append((t, bool(attentive)))
        while st.attention and st.attention[0][0] < t - rule.window:
            st.attention.popleft()
        if t - st.attention[0][0] < rule.window * 0.9:  # judge only a (nearly) full window
            return []
        share = sum(a for _, a in st.attention) / len(st.attention)
        done = st.disengaged.update(t, share)
        return [self._alert("disengagement", key, done, rule.threshold, st, {"window_s": rule.window})] if done else []

    def _distress(self, key: str, st: _VisitAlerts, t: float, probs: np.ndarray) -> list[Alert]:
        rule = self.rules.distress
        level = float(probs[EMOTIONS.index("fear")] + probs[EMOTIONS.index("sadness")])
        st.distress.append((t, level))
        while st.distress and st.distress[0][0] < t - rule.within:
            st.distress.popleft()
        t_low, low = min(reversed(st.distress), key=lambda p: p[1])  # the latest low point
        if level < rule.threshold or level - low < rule.rise or t - st.last_spike < rule.cooldown:
            return []
        st.last_spike = t
        evidence = {"rise": round(level - low, 4), "from": round(low, 4)}
        return [self._alert("distress", key, (t_low, t, level, list(st.distress)), rule.threshold, st, evidence)]

    def close(self, visit_key: str, t: float) -> list[Alert]:
        """The visit ended: emit its open alerts with ``t`` as their end."""
        st = self._visits.pop(visit_key, None)
        if st is None:
            return []
        if st.baseline is not None:  # it may have ended within its learning window (finish is idempotent)
            st.baseline.finish()
        out = self._replay(visit_key, st)  # the frames that waited, if any
        done = st.tilt.finish(t)
        if done:
            out.append(self._alert("tilt", visit_key, done, self.rules.tilt.threshold, st, self._tilt_evidence(st)))
        done = st.disengaged.finish(t)
        if done:
            out.append(self._alert("disengagement", visit_key, done, self.rules.disengagement.threshold, st, {}))
        return out

    def open_alerts(self) -> list[OpenAlert]:
        """Tilt and disengagement alerts that have fired and not yet closed (for live views)."""
        out = []
        for key, st in self._visits.items():
            for kind, h, rule in (
                ("tilt", st.tilt, self.rules.tilt),
                ("disengagement", st.disengaged, self.rules.disengagement),
            ):
                if h.active:
                    out.append(
                        OpenAlert(
                            kind,
                            key,
                            self._track[key],
                            st.zone,
                            h.since,
                            float(h.peak),
                            rule.threshold,
                            st.tilt_emotion if kind == "tilt" else None,
                        )
                    )
        return out

    def close_all(self, t: float) -> list[Alert]:
        return [a for key in list(self._visits) for a in self.close(key, t)]

    def _alert(self, kind, visit_key, done, threshold, st: _VisitAlerts, extra: dict) -> Alert:
        start, end, peak, series = done
        return Alert(
            camera=self.camera,
            kind=kind,
            visit_key=visit_key,
            track_id=self._track[visit_key],
            zone=st.zone,
            start=start,
            end=end,
            value=round(float(peak), 4),
            threshold=threshold,
            evidence={**extra, "series": _thin(series)},
        )
