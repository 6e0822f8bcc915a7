"""The typed results that flow from stage to stage and out to every sink.

A :class:`FrameResult` holds one frame's :class:`FaceResult` list. Stages fill in the
fields they own (detector: box and score; mesh: landmarks; pose; emotion; tracker:
``track_id``; smoother: ``smoothed``) and sinks read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .emotions import EMOTIONS

#: Bumped whenever a field of the JSON output changes meaning or goes away.
SCHEMA_VERSION = 1


@dataclass
class Pose:
    """Head pose in degrees. yaw > 0: face turned towards the image's right;
    pitch > 0: face tilted up; roll > 0: head tilted clockwise in the image."""

    yaw: float
    pitch: float
    roll: float

    def as_array(self) -> np.ndarray:
        return np.array([self.yaw, self.pitch, self.roll], np.float64)

    @classmethod
    def from_array(cls, a) -> Pose:
        return cls(float(a[0]), float(a[1]), float(a[2]))

    def to_dict(self) -> dict:
        return {
            "yaw": round(float(self.yaw), 2),
            "pitch": round(float(self.pitch), 2),
            "roll": round(float(self.roll), 2),
        }


@dataclass
class Emotion:
    """Class probabilities (summing to 1) and the class names they belong to."""

    probs: np.ndarray
    classes: tuple[str, ...] = EMOTIONS

    @property
    def label(self) -> str:
        return self.classes[int(np.argmax(self.probs))]

    @property
    def confidence(self) -> float:
        return float(np.max(self.probs))

    def to_dict(self, digits: int = 4) -> dict:
        return {"label": self.label, "probs": {c: round(float(p), digits) for c, p in zip(self.classes, self.probs)}}


@dataclass
class Smoothed:
    """Per-track, time-smoothed pose and emotion."""

    pose: Pose | None = None
    emotion: Emotion | None = None

    def to_dict(self) -> dict:
        return {
            "pose": self.pose.to_dict() if self.pose else None,
            "emotion": self.emotion.to_dict() if self.emotion else None,
        }


@dataclass
class FaceResult:
    """One face in one frame. ``box`` is ``[x1, y1, x2, y2]`` in pixels."""

    box: np.ndarray
    score: float
    keypoints: np.ndarray | None = None  # (6, 2) detector keypoints, pixels
    landmarks: np.ndarray | None = None  # (468, 3) face mesh, pixels (z in x's scale)
    pose: Pose | None = None
    emotion: Emotion | None = None
    track_id: int | None = None
    smoothed: Smoothed = field(default_factory=Smoothed)
    quality: float | None = None  # 0..1, how far this face's readings can be trusted (vision/quality.py)
    quality_parts: dict[str, float] | None = None
    abstained: bool = False  # quality below the analyzer's min_quality: moves no smoothing, visit or alert

    @property
    def xywh(self) -> list[float]:
        x1, y1, x2, y2 = (float(v) for v in self.box)
        return [x1, y1, x2 - x1, y2 - y1]

    def to_dict(self, with_landmarks: bool = False) -> dict:
        d = {
            "track_id": self.track_id,
            "box": [round(v, 1) for v in self.xywh],
            "score": round(float(self.score), 4),
            "has_mesh": self.landmarks is not None,
            "pose": self.pose.to_dict() if self.pose else None,
            "emotion": self.emotion.to_dict() if self.emotion else None,
            "smoothed": self.smoothed.to_dict(),
            "quality": self.quality,
            "quality_parts": self.quality_parts,
            "abstained": self.abstained,
        }
        if with_landmarks and self.landmarks is not None:
            d["landmarks"] = np.round(self.landmarks, 1).tolist()
        return d


@dataclass
class FrameResult:
    """Everything tiltwatch found in one frame."""

    index: int
    timestamp: float  # seconds from the start of the source
    width: int
    height: int
    faces: list[FaceResult] = field(default_factory=list)
    source: str = ""
    excluded: dict[str, int] = field(default_factory=dict)  # faces not analysed, per staff zone
    detected: bool = True  # the detector ran on this frame (False: faces followed by landmarks)
    speed: dict[str, float] = field(default_factory=dict, compare=False, repr=False)  # seconds a stage (not in JSON)

    def to_dict(self, with_landmarks: bool = False) -> dict:
        return {
            "schema": SCHEMA_VERSION,
            "frame": self.index,
            "timestamp": round(self.timestamp, 4),
            "source": self.source,
            "width": self.width,
            "height": self.height,
            "face_present": bool(self.faces),
            "faces": [f.to_dict(with_landmarks) for f in self.faces],
            "excluded": self.excluded,
        }
