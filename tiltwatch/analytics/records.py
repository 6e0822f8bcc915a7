"""What the analytics produce and the store keeps: plain typed records, no database types.

Times are seconds since the Unix epoch (UTC) as floats. Probabilities are lists in the
order of :data:`tiltwatch.emotions.EMOTIONS`. Staff zones never produce an
:class:`Observation`, a :class:`Visit` or an :class:`Alert`: only :class:`ZoneCount` rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Observation:
    """One tracked patron face at one moment (smoothed values), sampled for timelines and heatmaps."""

    camera: str
    visit_key: str  # "<run_id>:<track_id>": unique per visit across runs
    t: float
    zone: str | None  # the (non-staff) zone the face is in, or None outside every zone
    probs: list[float]  # 8 smoothed emotion probabilities
    valence: float  # -1 .. 1
    arousal: float  # -1 .. 1
    yaw: float | None
    pitch: float | None
    attentive: bool | None  # head pose inside the zone's attention cone; None without pose or zone
    quality: float | None = None  # the face's quality score at that moment (0..1)


@dataclass
class Visit:
    """A track seen as one visit; rewritten (upserted by ``visit_key``) while it goes on."""

    camera: str
    visit_key: str
    run_id: str
    track_id: int
    start: float
    end: float
    zones: list[str]  # every non-staff zone the visit touched, in order of first entry
    dwell_s: dict[str, float]  # seconds spent per zone
    frames: int
    mean_probs: list[float]
    dominant: str
    mean_valence: float
    mean_arousal: float
    attention: float | None  # share of time attentive (None if never in a zone with a cone)
    closed: bool = False  # the track ended (not seen for longer than the tracker keeps ids)
    interrupted: bool = False  # closed by a later run or purge: its process was killed mid-visit
    # the person's own resting expression (analytics/baseline.py): the median of each of the 8
    # smoothed probabilities over the visit's first confident seconds; None until learned, or never
    baseline: list[float] | None = None
    baseline_frames: int = 0  # confident observations the baseline was learned from (0: none)
    peak_tilt: float | None = None  # highest tilt score (largest of the tilt emotions, smoothed)
    peak_deviation: float | None = None  # highest rise of a tilt emotion above its baseline (None: no baseline)


@dataclass
class Alert:
    """A condition that held for long enough, with the evidence that shows it."""

    camera: str
    kind: str  # "tilt" | "disengagement" | "distress"
    visit_key: str
    track_id: int
    zone: str | None
    start: float
    end: float
    value: float  # the peak (tilt, distress) or lowest (disengagement) value over the alert
    threshold: float
    evidence: dict = field(default_factory=dict)  # e.g. {"emotion": "anger", "series": [[t, v], ...]}


@dataclass
class ZoneCount:
    """Staff zones: how many faces, nothing else."""

    camera: str
    zone: str
    t: float
    count: int
