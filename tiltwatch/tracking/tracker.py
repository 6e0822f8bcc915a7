"""Track ids with supervision's ByteTrack, stitched across detection gaps.

ByteTrack matches boxes to Kalman-predicted tracks by overlap. When a face is missed for
a while (a turned head, a hand in front), its prediction drifts and the face comes back
under a new id. So a new id whose box appears where a recently lost track was last seen
(within ``lost_seconds``, similar size, that track not visible now) takes the old id.

Given the frame, an id is only given back (by that rule or by ByteTrack itself) to a face
that also looks like the lost one (``appearance.py``): someone else who sits down in a
lost patron's place gets a new id and a new visit.

Usage::

    tracker = FaceTracker(fps=25)
    tracker.update(faces, frame)   # sets face.track_id; faces it cannot place keep None
"""

from __future__ import annotations

import warnings

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    import supervision as sv

from ..types import FaceResult
from .appearance import distance, signature


def _close(a: np.ndarray, b: np.ndarray, reach: float = 0.75) -> float | None:
    """Centre distance over box size if the boxes are near and alike in size, else None."""
    wa, wb = max(a[2] - a[0], 1e-3), max(b[2] - b[0], 1e-3)
    if not 0.67 <= wa / wb <= 1.5:
        return None
    d = float(np.hypot((a[0] + a[2] - b[0] - b[2]) / 2, (a[1] + a[3] - b[1] - b[3]) / 2)) / max(wa, wb)
    return d if d <= reach else None


class FaceTracker:
    """ByteTrack over face boxes. ``lost_seconds``: how long an unseen face keeps its id;
    ``look_gate``: the largest colour distance at which a lost id is given back (None: any)."""

    def __init__(
        self,
        fps: float = 25.0,
        lost_seconds: float = 2.0,
        match_threshold: float = 0.8,
        activation_threshold: float = 0.5,
        min_frames: int = 1,
        look_gate: float | None = 0.4,
    ):
        warnings.filterwarnings("ignore", message=".*ByteTrack.*deprecated", category=FutureWarning)
        self.lost_frames = max(1, int(round(lost_seconds * fps)))
        # supervision 0.30.x keeps ByteTrack in-tree (0.31 moved it to a numpy-2-only package).
        self._bt = sv.ByteTrack(
            track_activation_threshold=activation_threshold,
            lost_track_buffer=self.lost_frames,
            minimum_matching_threshold=match_threshold,
            frame_rate=max(1, int(round(fps))),
            minimum_consecutive_frames=min_frames,
        )
        self.look_gate = look_gate
        self._alias: dict[int, int] = {}  # ByteTrack id -> the id we report
        self._last: dict[int, tuple[int, np.ndarray]] = {}  # reported id -> (frame, box) last seen
        self._look: dict[int, np.ndarray] = {}  # reported id -> running colour signature
        self._next_id = 1
        self._frame = 0

    def update(self, faces: list[FaceResult], image: np.ndarray | None = None) -> None:
        """Set ``track_id`` on ``faces`` (this frame's, in order); ``image`` enables the look check."""
        self._frame += 1
        if not faces:
            self._bt.update_with_detections(sv.Detections.empty())
            self._forget()
            return
        dets = sv.Detections(
            xyxy=np.stack([f.box for f in faces]).astype(np.float32),
            confidence=np.array([f.score for f in faces], np.float32),
            class_id=np.zeros(len(faces), int),
            data={"index": np.arange(len(faces))},
        )
        tracked = self._bt.update_with_detections(dets)
        # ByteTrack returns a bare empty result (no "index") when it confirms nothing
        raw = {} if len(tracked) == 0 else {int(i): int(t) for i, t in zip(tracked.data["index"], tracked.tracker_id)}
        looks = [signature(image, f.box) if image is not None and self.look_gate is not None else None for f in faces]
        visible = {self._alias[t] for t in raw.values() if t in self._alias}
        for i, tid in sorted(raw.items(), key=lambda kv: kv[1] in self._alias, reverse=True):
            rid = self._alias.get(tid)
            if rid is not None and self._last[rid][0] < self._frame - 1 and not self._looks_like(rid, looks[i]):
                visible.discard(rid)  # ByteTrack re-found a lost track, but this is someone else
                rid = None
            if rid is None:
                rid = self._stitch(faces[i].box, looks[i], visible) or self._new_id()
                self._alias[tid] = rid
                visible.add(rid)
            faces[i].track_id = rid
        for i, f in enumerate(faces):
            if i not in raw:  # not confirmed by ByteTrack (a new track's first frame): a lost id right here?
                f.track_id = self._stitch(f.box, looks[i], visible)
                if f.track_id is not None:
                    visible.add(f.track_id)
        for f, look in zip(faces, looks):
            if f.track_id is not None:
                self._last[f.track_id] = (self._frame, f.box.copy())
                if look is not None:  # a running mean, so one odd frame (a hand, a glare) weighs little
                    old = self._look.get(f.track_id)
                    self._look[f.track_id] = look if old is None else 0.9 * old + 0.1 * look
        self._forget()

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    def _looks_like(self, rid: int, look: np.ndarray | None) -> bool:
        known = self._look.get(rid)
        return look is None or known is None or distance(known, look) <= self.look_gate

    def _stitch(self, box: np.ndarray, look: np.ndarray | None, visible: set[int]) -> int | None:
        """The lost id last seen nearest to ``box``, if any is near enough and looks alike."""
        best, best_d = None, None
        for sid, (frame, last_box) in self._last.items():
            if sid in visible or self._frame - frame > self.lost_frames:
                continue
            d = _close(box, last_box)
            if d is not None and (best_d is None or d < best_d) and self._looks_like(sid, look):
                best, best_d = sid, d
        return best

    def _forget(self) -> None:
        gone = [s for s, (f, _) in self._last.items() if self._frame - f > self.lost_frames]
        for s in gone:
            del self._last[s]
            self._look.pop(s, None)
        if gone:
            live = set(self._last)
            self._alias = {k: v for k, v in self._alias.items() if v in live}

    def new_scene(self) -> None:
        """After a cut nobody can be re-found: forget every track. Ids go on from the last one,
        so an id never names two people in one run."""
        self._bt.reset()
        self._alias.clear()
        self._last.clear()
        self._look.clear()
