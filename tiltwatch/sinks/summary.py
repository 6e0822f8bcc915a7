"""``summary.csv``: one row per track: when it was seen, how often, its mean emotion and pose."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..sources.base import Frame
from ..types import FrameResult
from .base import Sink


@dataclass
class _Track:
    first: float
    last: float
    frames: int = 0
    prob_sum: np.ndarray | None = None
    emotion_frames: int = 0
    pose_sum: np.ndarray = field(default_factory=lambda: np.zeros(3))
    pose_frames: int = 0


class SummaryCsvSink(Sink):
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.tracks: dict[int, _Track] = {}
        self.classes: tuple[str, ...] | None = None

    def write(self, frame: Frame, result: FrameResult) -> None:
        for face in result.faces:
            if face.track_id is None:
                continue
            tr = self.tracks.setdefault(face.track_id, _Track(result.timestamp, result.timestamp))
            tr.last = result.timestamp
            tr.frames += 1
            if face.emotion is not None:
                self.classes = face.emotion.classes
                tr.prob_sum = face.emotion.probs.astype(np.float64) + (0 if tr.prob_sum is None else tr.prob_sum)
                tr.emotion_frames += 1
            if face.pose is not None:
                tr.pose_sum += face.pose.as_array()
                tr.pose_frames += 1

    def rows(self) -> list[dict]:
        out = []
        for tid, tr in sorted(self.tracks.items()):
            row = {
                "track_id": tid,
                "first_seen_s": round(tr.first, 3),
                "last_seen_s": round(tr.last, 3),
                "duration_s": round(tr.last - tr.first, 3),
                "frames": tr.frames,
            }
            mean = tr.prob_sum / tr.emotion_frames if tr.emotion_frames else None
            row["dominant_emotion"] = self.classes[int(np.argmax(mean))] if mean is not None else ""
            for i, c in enumerate(self.classes or ()):
                row[f"mean_{c}"] = round(float(mean[i]), 4) if mean is not None else ""
            pose = tr.pose_sum / tr.pose_frames if tr.pose_frames else None
            for i, a in enumerate(("yaw", "pitch", "roll")):
                row[f"mean_{a}"] = round(float(pose[i]), 2) if pose is not None else ""
            out.append(row)
        return out

    def close(self) -> None:
        rows = self.rows()
        fields = (
            list(rows[0])
            if rows
            else ["track_id", "first_seen_s", "last_seen_s", "duration_s", "frames", "dominant_emotion"]
        )
        with open(self.path, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=fields)
            w.writeheader()
            w.writerows(rows)
