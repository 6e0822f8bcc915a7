"""Per-track exponential smoothing of emotion probabilities and head pose, aware of time.

The weight of a new observation is ``1 - exp(-dt / tau)``: the same ``tau`` (seconds)
gives the same smoothing at any frame rate or stride. ``tau = 0`` turns smoothing off.

Usage::

    smoother = TrackSmoother(tau=0.5)
    smoother.update(faces, timestamp)   # fills face.smoothed for tracked faces
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..types import Emotion, FaceResult, Pose, Smoothed


@dataclass
class _State:
    t: float
    probs: np.ndarray | None
    pose: np.ndarray | None


class TrackSmoother:
    def __init__(self, tau: float = 0.5, forget_after: float = 10.0):
        if tau < 0:
            raise ValueError("smoothing tau must be >= 0 seconds")
        self.tau = tau
        self.forget_after = forget_after
        self._states: dict[int, _State] = {}

    def _blend(self, old: np.ndarray | None, new: np.ndarray | None, w: float) -> np.ndarray | None:
        if new is None:
            return old
        if old is None:
            return new.copy()
        return old + w * (new - old)

    @staticmethod
    def _smoothed(st: _State, face: FaceResult) -> Smoothed:
        classes = face.emotion.classes if face.emotion else None
        return Smoothed(pose=Pose.from_array(st.pose) if st.pose is not None else None,
                        emotion=Emotion(st.probs, classes) if st.probs is not None and classes else None)

    def update(self, faces: list[FaceResult], timestamp: float) -> None:
        """Abstained faces (``face.abstained``) change no state; they get the track's smoothed values so far."""
        for face in faces:
            probs = face.emotion.probs if face.emotion else None
            pose = face.pose.as_array() if face.pose else None
            if face.track_id is None:
                face.smoothed = Smoothed() if face.abstained else Smoothed(face.pose, face.emotion)
                continue
            st = self._states.get(face.track_id)
            if face.abstained:  # too poor a view to trust: the track keeps what it had
                face.smoothed = self._smoothed(st, face) if st is not None else Smoothed()
                continue
            if st is None or self.tau == 0:
                st = _State(timestamp, probs, pose)
            else:
                w = 1.0 - math.exp(-max(timestamp - st.t, 0.0) / self.tau)
                st = _State(timestamp, self._blend(st.probs, probs, w), self._blend(st.pose, pose, w))
            self._states[face.track_id] = st
            face.smoothed = self._smoothed(st, face)
        stale = [k for k, s in self._states.items() if timestamp - s.t > self.forget_after]
        for k in stale:
            del self._states[k]
