"""The speed-ups must not change results beyond noise."""

import json

import cv2
import pytest

from tiltwatch import Analyzer
from tiltwatch.pipeline import run
from tiltwatch.pipeline.bench import agreement
from tiltwatch.sinks import JsonlSink
from tiltwatch.sources import SampleSource


@pytest.mark.parametrize("every", [{}, {"detect_every": 3, "emotion_every": 2}])
def test_threaded_run_equals_plain_run(tmp_path, every):
    """Threaded, a frame's emotion model runs beside the next frame's detection and mesh, and a
    face not due for its emotion takes an earlier frame's, perhaps still being computed."""
    outs = []
    for threaded in (False, True):
        path = tmp_path / f"{threaded}.jsonl"
        an = Analyzer(fps=15, **every)
        stats = run(SampleSource(seconds=3), an, [JsonlSink(path)], progress=False, threaded=threaded)
        assert stats.frames == 45
        outs.append([json.loads(line) for line in path.read_text().splitlines()])
    assert outs[0] == outs[1]


def test_landmark_following_agrees_with_detecting_every_frame():
    r = agreement("sample", 60, {"detect_every": 3})
    assert r["recall_vs_slow"] >= 0.9
    assert r["label_agreement"] >= 0.95
    assert max(r["pose_mean_abs_diff_deg"].values()) < 3.0


@pytest.mark.parametrize("detect_every", [1, 3])
def test_a_face_the_mesh_cannot_see_stays_in_every_frame_with_one_id(astronaut, detect_every):
    """Out of focus, the detector still finds the face but the landmark model does not: landmark
    following must hold it between detections (it used to blink: one frame in three, no id)."""
    blurred = cv2.GaussianBlur(astronaut, (0, 0), 5)
    an = Analyzer(fps=15, detect_every=detect_every)
    frames = [an.analyze(blurred).faces for _ in range(7)]
    assert all(len(faces) == 1 for faces in frames)
    assert all(faces[0].landmarks is None and faces[0].emotion is not None for faces in frames)
    assert len({faces[0].track_id for faces in frames}) == 1 and frames[0][0].track_id is not None
    an.close()


def test_a_followed_face_that_loses_its_mesh_is_held_and_still_classified(astronaut):
    """Sharp on a detection frame, then out of focus: held at its box, aligned by keypoints
    taken from its last mesh, under the same id until the next detection."""
    an = Analyzer(fps=15, detect_every=3)
    blurred = cv2.GaussianBlur(astronaut, (0, 0), 5)
    first = an.analyze(astronaut).faces
    held = [an.analyze(blurred).faces for _ in range(2)]
    assert len(first) == 1 and first[0].landmarks is not None
    for faces in held:
        assert len(faces) == 1 and faces[0].landmarks is None and faces[0].keypoints is not None
        assert faces[0].emotion is not None and faces[0].track_id == first[0].track_id
    an.close()
