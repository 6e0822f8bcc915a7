"""Track ids stay with the same face; smoothing follows its time constant."""

import math

import cv2
import numpy as np
import pytest

from tiltwatch import Analyzer
from tiltwatch.sources import SampleSource
from tiltwatch.sources.sample import astronaut_face
from tiltwatch.tracking.smoothing import TrackSmoother
from tiltwatch.tracking.tracker import FaceTracker
from tiltwatch.types import Emotion, FaceResult, Pose


@pytest.mark.parametrize("fast", [False, True])
def test_sample_faces_keep_their_ids(fast):
    an = Analyzer(fps=15, detect_every=3 if fast else 1, emotion_every=2 if fast else 1)
    src = SampleSource(seconds=8)  # the tilting face is missed now and then: its id must survive
    by_position: dict[str, set[int]] = {"left": set(), "right": set(), "middle": set()}
    for frame in src:
        for f in an.analyze(frame.image, frame.timestamp, frame.index).faces:
            cx = (f.box[0] + f.box[2]) / 2 / frame.image.shape[1]
            side = "left" if cx < 0.38 else "right" if cx > 0.6 else "middle"
            if f.track_id is not None:
                by_position[side].add(f.track_id)
    # each of the three faces carries exactly one id, and no two share one
    assert all(len(ids) == 1 for ids in by_position.values()), by_position
    assert len(set.union(*by_position.values())) == 3


def box_face(x, y, w=60.0):
    return FaceResult(box=np.array([x, y, x + w, y + w], np.float32), score=0.9)


def test_a_face_missed_for_a_second_keeps_its_id():
    """Moving, then missed for 1 s (ByteTrack's prediction runs on), then back where it stopped."""
    tr = FaceTracker(fps=25, lost_seconds=2.0)
    ids = []
    for i in range(20):
        f = box_face(100 + 4 * i, 100)
        tr.update([f])
        ids.append(f.track_id)
    for _ in range(25):
        tr.update([])
    back = box_face(100 + 4 * 19 + 5, 102)
    tr.update([back])
    assert back.track_id == ids[-1] and len(set(ids)) == 1


def test_a_new_face_elsewhere_gets_a_new_id():
    tr = FaceTracker(fps=25, lost_seconds=2.0)
    a = box_face(100, 100)
    tr.update([a])
    for _ in range(10):
        tr.update([])
    b = box_face(500, 300)  # far from where the lost face was
    tr.update([b])
    c = box_face(100, 100, w=150)  # right place, very different size: someone else
    tr.update([b, c])
    assert len({a.track_id, b.track_id, c.track_id}) == 3


def seat(person: np.ndarray | None) -> np.ndarray:
    """A 640x480 table view with ``person`` (a 240x240 head-and-shoulders patch) in one seat."""
    frame = np.full((480, 640, 3), (40, 90, 40), np.uint8)
    if person is not None:
        frame[120:360, 200:440] = person
    return frame


def someone_else() -> np.ndarray:
    """The astronaut recoloured (hue turned 30 degrees): other skin, hair and clothes, still a
    face the detector finds."""
    hsv = cv2.cvtColor(astronaut_face(), cv2.COLOR_BGR2HSV)
    hsv[..., 0] = (hsv[..., 0].astype(int) + 15) % 180
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)


@pytest.mark.parametrize("returner", ["the patron", "someone else"])
def test_a_lost_id_is_given_back_only_to_a_face_that_looks_the_same(returner):
    """The patron leaves the seat for a second; whoever then sits there, same place, same size."""
    tr = FaceTracker(fps=25, lost_seconds=2.0)
    face_box = (290, 150, 370, 240)  # where the astronaut's face is in the seat
    for _ in range(10):
        patron = box_face(*face_box[:2], w=80)
        tr.update([patron], seat(astronaut_face()))
    for _ in range(25):
        tr.update([], seat(None))
    look = astronaut_face() if returner == "the patron" else someone_else()
    for _ in range(3):
        back = box_face(*face_box[:2], w=80)
        tr.update([back], seat(look))
    assert back.track_id is not None
    assert (back.track_id == patron.track_id) == (returner == "the patron")


@pytest.mark.parametrize("cut_threshold", [0.3, None])
def test_a_cut_to_another_shot_ends_every_track(cut_threshold):
    """A switched feed jumps to another room where someone sits just where the last face was:
    ByteTrack alone would carry the id over (the boxes overlap); the cut ends it."""
    an = Analyzer(fps=15, emotion=False, cut_threshold=cut_threshold)
    other_room = seat(someone_else())
    other_room[:100] = (150, 60, 170)
    ids = [{f.track_id for f in an.analyze(frame).faces} for frame in [seat(astronaut_face())] * 5 + [other_room] * 5]
    assert all(len(i) == 1 and None not in i for i in ids)
    assert len(set.union(*ids[:5])) == len(set.union(*ids[5:])) == 1
    assert set.union(*ids[:5]).isdisjoint(set.union(*ids[5:])) == (cut_threshold is not None)
    an.close()


def test_two_faces_never_share_an_id():
    tr = FaceTracker(fps=25)
    for i in range(30):
        fs = [box_face(100, 100), box_face(140 + i, 100)]  # close together
        tr.update(fs)
        assert fs[0].track_id != fs[1].track_id


def face(track_id, p_happy, yaw):
    probs = np.full(8, (1 - p_happy) / 7, np.float32)
    probs[1] = p_happy
    return FaceResult(
        box=np.array([0, 0, 10, 10], np.float32),
        score=1.0,
        emotion=Emotion(probs),
        pose=Pose(yaw, 0, 0),
        track_id=track_id,
    )


def test_smoothing_moves_by_one_minus_exp_of_dt_over_tau():
    sm = TrackSmoother(tau=0.5)
    sm.update([face(1, 0.0, 0.0)], 0.0)
    f = face(1, 1.0, 40.0)
    sm.update([f], 0.25)
    w = 1 - math.exp(-0.25 / 0.5)
    assert f.smoothed.emotion.probs[1] == pytest.approx(w, abs=1e-5)
    assert f.smoothed.pose.yaw == pytest.approx(40 * w, abs=1e-4)
    assert f.emotion.probs[1] == 1.0  # raw values are kept beside the smoothed ones


def test_smoothing_off_and_per_track():
    sm = TrackSmoother(tau=0)
    sm.update([face(1, 0.0, 0.0)], 0.0)
    f = face(1, 1.0, 10.0)
    sm.update([f], 0.1)
    assert f.smoothed.emotion.probs[1] == pytest.approx(1.0)
    sm = TrackSmoother(tau=1.0)
    a, b = face(1, 0.2, 0.0), face(2, 0.9, 0.0)
    sm.update([a, b], 0.0)
    assert a.smoothed.emotion.probs[1] == pytest.approx(0.2) and b.smoothed.emotion.probs[1] == pytest.approx(0.9)


def test_one_euro_pose_holds_a_still_head_and_follows_a_turn_with_little_lag():
    rng = np.random.default_rng(0)
    steady, follow = TrackSmoother(tau=0.5), TrackSmoother(tau=0.5, pose_min_cutoff=0.3, pose_beta=0.03)
    still = 10 + rng.normal(0, 1.0, 50)  # 2 s at 25 fps of a still head, 1 degree of noise
    turn = np.linspace(10, 70, 26)[1:]  # then a turn of 60 degrees in 1 s
    out = {id(steady): [], id(follow): []}
    for i, yaw in enumerate(np.concatenate([still, turn])):
        for sm in (steady, follow):
            f = face(1, 0.5, float(yaw))
            sm.update([f], i / 25)
            out[id(sm)].append(f.smoothed.pose.yaw)
    exp, euro = np.asarray(out[id(steady)]), np.asarray(out[id(follow)])
    assert np.std(np.diff(euro[10:50])) < 0.5 * np.std(np.diff(still[10:50]))  # at rest: steadier than raw
    assert 70 - euro[-1] < 0.5 * (70 - exp[-1])  # at the end of the turn: half the exponential's lag or less
