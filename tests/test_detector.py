"""Face detection: tiles find the small faces of a wide camera view, both ranges the near ones."""

import json

import cv2
import numpy as np
import pytest

from tiltwatch.vision.detector import NEAR_MIN_SCORE, FaceDetector, _tile_grid
from tiltwatch.vision.mediapipe_models import BlazeFace, FaceDetectionGraph

from .conftest import tiltwatch


@pytest.fixture(scope="module")
def crowd(astronaut):
    """A 1280x720 'floor camera' frame holding 24 real faces of about 43 pixels (4 rows of 6
    shrunken copies of the astronaut portrait) and the box each face should be found in."""
    cell = cv2.resize(astronaut, (213, 213), interpolation=cv2.INTER_AREA)
    frame = np.tile(cell, (4, 6, 1))[:720, :1280]
    face = FaceDetector().detect(astronaut)[0].box * 213 / 512
    boxes = [face + [x, y, x, y] for y in range(0, 720, 213) for x in range(0, 1280 - 212, 213)]
    return frame, [b for b in boxes if b[3] <= 720]


def _matches(found, expected):
    """For each expected face, how many found boxes have their centre inside it."""
    centres = [((f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2) for f in found]
    return [sum(b[0] <= x <= b[2] and b[1] <= y <= b[3] for x, y in centres) for b in expected]


def test_tiles_find_every_small_face_once(crowd):
    frame, expected = crowd
    assert len(expected) == 24
    assert FaceDetector(max_side=640).detect(frame) == []  # at 192x192 a 43-pixel face is 6 pixels: lost
    found = FaceDetector(max_side=640, tiles=3).detect(frame)
    assert _matches(found, expected) == [1] * 24 and len(found) == 24  # each found once, nothing else
    for f in found:  # keypoints are mapped back from the tile with the box
        assert (f.keypoints >= f.box[:2] - 5).all() and (f.keypoints <= f.box[2:] + 5).all()


def test_tiles_keep_a_large_face_once_and_as_it_was(astronaut):
    found = FaceDetector(tiles=2).detect(astronaut)
    assert len(found) == 1  # seen whole and in tiles: counted once
    assert np.array_equal(found[0].box, FaceDetector().detect(astronaut)[0].box)  # tiles only add faces


def test_tile_grid_covers_the_frame_with_overlap():
    tiles = _tile_grid(1280, 720, 3)
    assert len(tiles) == 9 and tiles[0][:2] == (0, 0) and tiles[-1][2:] == (1280, 720)
    xs = sorted({(x0, x1) for x0, _, x1, _ in tiles})
    assert all(a[1] - b[0] > 0.2 * (a[1] - a[0]) for a, b in zip(xs, xs[1:]))  # neighbours overlap
    with pytest.raises(ValueError, match="tiles"):
        FaceDetector(tiles=0)


def test_analyze_tiles_option_reaches_the_detector(tmp_path, crowd):
    cv2.imwrite(str(tmp_path / "floor.png"), crowd[0])
    res = tiltwatch(
        "analyze", tmp_path / "floor.png", "--out", tmp_path / "o", "--output", "jsonl", "--detect-tiles", "3", "-q"
    )
    assert res.returncode == 0, res.stderr
    faces = json.loads((tmp_path / "o" / "results.jsonl").read_text().splitlines()[0])["faces"]
    assert len(faces) == 24
    res = tiltwatch("analyze", tmp_path / "floor.png", "--out", tmp_path / "p", "--detect-tiles", "9", "-q")
    assert res.returncode != 0 and "Traceback" not in res.stderr
    # a wide camera of a site config sets its own tiles
    (tmp_path / "site.yaml").write_text("cameras:\n  - id: floor\n    detect_tiles: 3\n")
    res = tiltwatch(
        "analyze",
        tmp_path / "floor.png",
        "--out",
        tmp_path / "s",
        "--output",
        "jsonl",
        "-q",
        "--site",
        tmp_path / "site.yaml",
        "--db",
        f"sqlite:///{tmp_path / 'floor.db'}",
    )
    assert res.returncode == 0, res.stderr
    assert len(json.loads((tmp_path / "s" / "results.jsonl").read_text().splitlines()[0])["faces"]) == 24


def test_both_ranges_add_a_near_face_the_full_range_model_misses(astronaut):
    """A face filling the frame (a tight crop of the astronaut's face): the full-range model sees
    nothing, the short-range one finds it; both_ranges adds it, and keeps a face both find once."""
    x1, y1, x2, y2 = FaceDetector().detect(astronaut)[0].box.astype(int)
    near = np.ascontiguousarray(astronaut[y1:y2, x1:x2])
    assert FaceDetector().detect(near) == []
    found = FaceDetector(both_ranges=True).detect(near)
    assert len(found) == 1
    cx, cy = (found[0].box[:2] + found[0].box[2:]) / 2
    assert abs(cx - near.shape[1] / 2) < 0.2 * near.shape[1] and abs(cy - near.shape[0] / 2) < 0.3 * near.shape[0]
    whole = FaceDetector(both_ranges=True).detect(astronaut)
    assert len(whole) == 1 and np.array_equal(whole[0].box, FaceDetector().detect(astronaut)[0].box)


def test_both_ranges_add_no_weak_short_range_detection():
    """skimage's colour wheel fools the short-range model at its 0.5 threshold; a face only that
    model finds must score NEAR_MIN_SCORE to be added, so both_ranges finds nothing there."""
    from skimage import data

    wheel = cv2.cvtColor(data.colorwheel()[..., :3], cv2.COLOR_RGB2BGR)
    weak = FaceDetector(full_range=False).detect(wheel)
    assert len(weak) == 1 and weak[0].score < NEAR_MIN_SCORE
    assert FaceDetector(both_ranges=True).detect(wheel) == []


def test_the_analyzer_runs_both_ranges_by_default_and_can_turn_it_off():
    from tiltwatch import Analyzer

    assert Analyzer(track=False, emotion=False).detector._near is not None
    assert Analyzer(track=False, emotion=False, detect_both_ranges=False).detector._near is None


@pytest.mark.parametrize("full_range", [True, False])
def test_blazeface_on_the_runtime_finds_what_mediapipes_graph_finds(astronaut, crowd, full_range):
    # the detector runs on the TF Lite runtime, letterboxed, decoded and merged as mediapipe's
    # graph does it: the same faces, the same boxes (scripts/mesh_runtime_check.py: full range
    # within 0.001 px on 305 faces, short range within 6 px, a median 0.1, on square photos)
    ours, theirs = BlazeFace(full_range), FaceDetectionGraph(full_range)
    found = 0
    for bgr in (astronaut, crowd[0], np.ascontiguousarray(crowd[0][:, :700])):  # square, wide, near square
        rgb = np.ascontiguousarray(bgr[..., ::-1])
        a, b = sorted(ours(rgb), key=lambda d: -d[1]), sorted(theirs(rgb), key=lambda d: -d[1])
        assert len(a) == len(b)
        found, (h, w) = found + len(a), rgb.shape[:2]
        for (box_a, score_a, kps_a), (box_b, score_b, kps_b) in zip(a, b):
            assert np.abs((np.array(box_a) - box_b) * [w, h, w, h]).max() < 1.0
            assert np.abs((kps_a - kps_b) * [w, h]).max() < 1.5
            assert abs(score_a - score_b) < 0.01
    assert found > 0
    theirs.close()


def test_the_score_threshold_is_honoured(astronaut):
    # mediapipe 0.10.21's solution API ignored the confidence it was given (0.6 full range, 0.5
    # short range whatever was asked); min_score now reaches the model
    score = FaceDetector().detect(astronaut)[0].score
    assert FaceDetector(min_score=min(score + 0.01, 1.0)).detect(astronaut) == []
    assert len(FaceDetector(min_score=0.1).detect(astronaut)) >= 1
