"""Track ids with supervision's ByteTrack.

Usage::

    tracker = FaceTracker(fps=25)
    tracker.update(faces)          # sets face.track_id; faces it cannot place keep None
"""

from __future__ import annotations

import warnings

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    import supervision as sv

from ..types import FaceResult


class FaceTracker:
    """ByteTrack over face boxes. ``lost_seconds``: how long an unseen face keeps its id."""

    def __init__(self, fps: float = 25.0, lost_seconds: float = 2.0, match_threshold: float = 0.8,
                 activation_threshold: float = 0.5, min_frames: int = 1):
        warnings.filterwarnings("ignore", message=".*ByteTrack.*deprecated", category=FutureWarning)
        # supervision 0.30.x keeps ByteTrack in-tree (0.31 moved it to a numpy-2-only package).
        self._bt = sv.ByteTrack(
            track_activation_threshold=activation_threshold,
            lost_track_buffer=max(1, int(round(lost_seconds * fps))),
            minimum_matching_threshold=match_threshold,
            frame_rate=max(1, int(round(fps))),
            minimum_consecutive_frames=min_frames,
        )

    def update(self, faces: list[FaceResult]) -> None:
        if not faces:
            self._bt.update_with_detections(sv.Detections.empty())
            return
        dets = sv.Detections(
            xyxy=np.stack([f.box for f in faces]).astype(np.float32),
            confidence=np.array([f.score for f in faces], np.float32),
            class_id=np.zeros(len(faces), int),
            data={"index": np.arange(len(faces))},
        )
        tracked = self._bt.update_with_detections(dets)
        for i, tid in zip(tracked.data["index"], tracked.tracker_id):
            faces[int(i)].track_id = int(tid)

    def reset(self) -> None:
        self._bt.reset()
