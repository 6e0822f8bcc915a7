"""Per-track exponential smoothing of emotion probabilities and head pose, aware of time.

The weight of a new observation is ``1 - exp(-dt / tau)``: the same ``tau`` (seconds)
gives the same smoothing at any frame rate or stride. ``tau = 0`` turns smoothing off.

Head pose can instead go through a One Euro filter (Casiez et al. 2012; ``pose_min_cutoff``):
a low-pass whose cut-off rises with the pose's own speed, so a still head is held steady and a
turning one followed without the exponential's lag (``scripts/pose_jitter.py`` measures both).

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
    pose_speed: np.ndarray | None = None  # One Euro: the filtered speed of the pose, degrees a second


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    """The weight of a new sample in a first-order low-pass of ``cutoff`` Hz, ``dt`` s after the last."""
    tau = 1.0 / (2 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class TrackSmoother:
    def __init__(
        self,
        tau: float = 0.5,
        forget_after: float = 10.0,
        pose_min_cutoff: float | None = None,
        pose_beta: float = 0.05,
        speed_cutoff: float = 1.0,
    ):
        """``pose_min_cutoff`` (Hz): One Euro for the pose, whose cut-off is ``pose_min_cutoff + pose_beta *
        |speed|`` (speed in degrees a second, itself low-passed at ``speed_cutoff`` Hz); None: as emotion."""
        if tau < 0:
            raise ValueError("smoothing tau must be >= 0 seconds")
        self.tau = tau
        self.pose_min_cutoff, self.pose_beta, self.speed_cutoff = pose_min_cutoff, pose_beta, speed_cutoff
        self.forget_after = forget_after
        self._states: dict[int, _State] = {}

    def _blend(self, old: np.ndarray | None, new: np.ndarray | None, w: float) -> np.ndarray | None:
        if new is None:
            return old
        if old is None:
            return new.copy()
        return old + w * (new - old)

    def _one_euro(self, st: _State, pose: np.ndarray | None, dt: float) -> tuple:
        if pose is None:
            return st.pose, st.pose_speed
        if st.pose is None:
            return pose.copy(), st.pose_speed
        if dt <= 0:  # the same moment again: nothing to filter with (as the exponential's weight 0)
            return st.pose, st.pose_speed
        raw_speed = (pose - st.pose) / dt
        speed = (
            raw_speed
            if st.pose_speed is None
            else st.pose_speed + _alpha(self.speed_cutoff, dt) * (raw_speed - st.pose_speed)
        )
        a = _alpha(self.pose_min_cutoff + self.pose_beta * np.abs(speed), dt)
        return st.pose + a * (pose - st.pose), speed

    @staticmethod
    def _smoothed(st: _State, face: FaceResult) -> Smoothed:
        classes = face.emotion.classes if face.emotion else None
        return Smoothed(
            pose=Pose.from_array(st.pose) if st.pose is not None else None,
            emotion=Emotion(st.probs, classes) if st.probs is not None and classes else None,
        )

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
                new_pose, speed = self._blend(st.pose, pose, w), None
                if self.pose_min_cutoff is not None:
                    new_pose, speed = self._one_euro(st, pose, timestamp - st.t)
                st = _State(timestamp, self._blend(st.probs, probs, w), new_pose, speed)
            self._states[face.track_id] = st
            face.smoothed = self._smoothed(st, face)
        stale = [k for k, s in self._states.items() if timestamp - s.t > self.forget_after]
        for k in stale:
            del self._states[k]
