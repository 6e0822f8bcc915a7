"""Alerts per visit: tilt, disengagement, distress spikes; each with its evidence.

Tilt and disengagement use one hysteresis rule: the condition must hold for ``seconds``
(measured from when it first crossed ``threshold``) before the alert fires, and the alert
stays open until the value crosses back past ``release``; a value hovering around the
threshold therefore gives one alert, not a flicker of many. An alert is emitted when it
closes (or when its visit or the run ends), with its full time range.

Usage::

    engine = AlertEngine(site.alerts, camera="cam-1")
    alerts = engine.update(visit_key, track_id, t, zone, smoothed_probs, attentive)
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from ..emotions import EMOTIONS
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

    def update(self, t: float, v: float) -> tuple[float, float, float, list] | None:
        """Feed one value; returns (start, end, peak, series) when an alert closes, else None."""
        if self.since is None:
            if self._beyond(v, self.threshold):
                self.since, self.peak, self.series = t, v, [(t, v)]
            return None
        if self._beyond(v, self.release):  # still on (hysteresis band counts as on)
            self.series.append((t, v))
            if len(self.series) > 2 * SERIES_KEPT:  # an alert on for hours: every other point, evenly spread
                self.series = self.series[::2]
            self.peak = max(self.peak, v) if self.above else min(self.peak, v)
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


class AlertEngine:
    def __init__(self, rules: AlertRules, camera: str):
        self.rules = rules
        self.camera = camera
        self._visits: dict[str, _VisitAlerts] = {}
        self._track: dict[str, int] = {}

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
        self, visit_key: str, track_id: int, t: float, zone: str | None, probs, attentive: bool | None
    ) -> list[Alert]:
        st = self._state(visit_key)
        self._track[visit_key] = track_id
        st.zone = zone if zone is not None else st.zone
        out: list[Alert] = []

        idx = [EMOTIONS.index(e) for e in self.rules.tilt.emotions]
        neg = max(float(probs[i]) for i in idx)
        if st.tilt.since is None or not st.tilt_emotion:
            st.tilt_emotion = EMOTIONS[max(idx, key=lambda i: probs[i])]
        done = st.tilt.update(t, neg)
        if done:
            out.append(
                self._alert(
                    "tilt",
                    visit_key,
                    done,
                    self.rules.tilt.threshold,
                    st,
                    {"emotion": st.tilt_emotion, "emotions": self.rules.tilt.emotions},
                )
            )

        if attentive is not None:
            rule = self.rules.disengagement
            st.attention.append((t, bool(attentive)))
            while st.attention and st.attention[0][0] < t - rule.window:
                st.attention.popleft()
            if t - st.attention[0][0] >= rule.window * 0.9:  # judge only a (nearly) full window
                share = sum(a for _, a in st.attention) / len(st.attention)
                done = st.disengaged.update(t, share)
                if done:
                    out.append(
                        self._alert("disengagement", visit_key, done, rule.threshold, st, {"window_s": rule.window})
                    )

        rule = self.rules.distress
        level = float(probs[EMOTIONS.index("fear")] + probs[EMOTIONS.index("sadness")])
        st.distress.append((t, level))
        while st.distress and st.distress[0][0] < t - rule.within:
            st.distress.popleft()
        t_low, low = min(reversed(st.distress), key=lambda p: p[1])  # the latest low point
        if level >= rule.threshold and level - low >= rule.rise and t - st.last_spike >= rule.cooldown:
            st.last_spike = t
            out.append(
                self._alert(
                    "distress",
                    visit_key,
                    (t_low, t, level, list(st.distress)),
                    rule.threshold,
                    st,
                    {"rise": round(level - low, 4), "from": round(low, 4)},
                )
            )
        return out

    def close(self, visit_key: str, t: float) -> list[Alert]:
        """The visit ended: emit its open alerts with ``t`` as their end."""
        st = self._visits.pop(visit_key, None)
        if st is None:
            return []
        out = []
        for kind, h, thr in (
            ("tilt", st.tilt, self.rules.tilt.threshold),
            ("disengagement", st.disengaged, self.rules.disengagement.threshold),
        ):
            done = h.finish(t)
            if done:
                out.append(self._alert(kind, visit_key, done, thr, st, {}))
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
