"""The mesh's photo work on a real face: a second pass, test-time views, a retry for rejected faces."""

import numpy as np
import pytest

from tiltwatch import Analyzer, AnalyzerConfig
from tiltwatch.pipeline.build import resolve_config
from tiltwatch.types import FaceResult
from tiltwatch.vision.detector import FaceDetector
from tiltwatch.vision.mediapipe_models import LandmarkGraph
from tiltwatch.vision.mesh import FaceMesher, Roi, mirror_index, roi_from_detection

RIGHT_EYE_OUTER = 33  # the person's right eye, outer corner


@pytest.fixture(scope="module")
def face(astronaut) -> FaceResult:
    faces = FaceDetector().detect(astronaut)
    assert len(faces) == 1
    return faces[0]


@pytest.fixture(scope="module")
def mesher():
    m = FaceMesher(threads=1)
    yield m
    m.close()


def detected(face: FaceResult, shift: float = 0.0) -> FaceResult:
    """A fresh copy of the detection (moved by ``shift`` pixels), without a mesh."""
    return FaceResult(box=face.box + np.float32(shift), score=face.score, keypoints=face.keypoints + np.float32(shift))


def meshed_from_its_box(image: np.ndarray, face: FaceResult, mesher: FaceMesher) -> FaceResult:
    out = detected(face)
    mesher.refine(image, [out])
    return out


def width(points: np.ndarray) -> float:
    return float(np.ptp(points[:, 0]))


def test_the_mirror_view_gives_back_the_same_face_point_for_point(astronaut, face, mesher):
    roi = roi_from_detection(face)
    plain = mesher.landmarks_for_roi(astronaut, roi)
    mirrored = mesher.landmarks_for_rois(astronaut, [roi], mirrored=True)[0]
    assert plain is not None and mirrored is not None
    apart = np.linalg.norm(plain[:, :2] - mirrored[:, :2], axis=1)
    assert np.median(apart) < 0.03 * width(plain)
    # each point keeps its meaning: the right eye's corner is not read off the left eye
    assert apart[RIGHT_EYE_OUTER] < 0.05 * width(plain)


def test_the_mirror_view_is_the_mesh_of_the_flipped_frame(astronaut, face, mesher):
    # the view averaged into photo meshes must be the flipped frame's own mesh, to the pixel:
    # an earlier path mirrored x to W - x (a flipped array's column x is W - 1 - x), 1 to 4 px off
    roi, w = roi_from_detection(face), astronaut.shape[1]
    mirrored = mesher.landmarks_for_rois(astronaut, [roi], mirrored=True)[0]
    flipped = mesher.landmarks_for_roi(
        np.ascontiguousarray(astronaut[:, ::-1]), Roi(w - 1 - roi.cx, roi.cy, roi.side, -roi.angle)
    )
    assert mirrored is not None and flipped is not None
    flipped = flipped[mirror_index()]
    flipped[:, 0] = w - 1 - flipped[:, 0]
    assert np.abs(mirrored[:, :2] - flipped[:, :2]).max() < 0.25


def test_the_mesh_is_mediapipes_own_graph_point_for_point(astronaut, face, mesher):
    # the landmark model runs on the TF Lite runtime, cut and projected as mediapipe's graph does:
    # the same points as that graph (scripts/mesh_runtime_check.py: within 0.2 px on 400 faces)
    graph = LandmarkGraph()
    h, w = astronaut.shape[:2]
    rgb = np.ascontiguousarray(astronaut[..., ::-1])
    box = roi_from_detection(face)
    for roi in (box, Roi(box.cx + 10, box.cy, box.side * 1.2, 0.4)):  # as detected; moved, larger, turned
        ours = mesher.landmarks_for_roi(astronaut, roi)
        theirs = graph(rgb, (roi.cx / w, roi.cy / h, roi.side / w, roi.side / h, roi.angle))
        assert ours is not None and theirs is not None
        assert np.abs(ours[:, :2] - theirs[:, :2] * np.array([w, h])).max() < 0.5
    graph.close()


def test_more_passes_and_views_keep_the_mesh_on_the_face(astronaut, face):
    one = FaceMesher(threads=1)
    best = FaceMesher(threads=2, passes=2, tta=True, retry=True)
    plain, photo = meshed_from_its_box(astronaut, face, one), meshed_from_its_box(astronaut, face, best)
    one.close()
    best.close()
    apart = np.linalg.norm(plain.landmarks[:, :2] - photo.landmarks[:, :2], axis=1)
    assert np.median(apart) < 0.03 * width(plain.landmarks)
    assert np.median(apart) > 1e-3 * width(plain.landmarks)  # the work was done: another mesh


def test_a_face_the_mesh_rejects_in_its_first_region_is_found_by_the_retry(astronaut, face, mesher):
    # keypoints that put the eyes one above the other: the first region is turned a quarter, and
    # the model sees no face in it (as with a profile's misleading eyes)
    cx, cy = (face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2
    keypoints = face.keypoints.copy()
    keypoints[0], keypoints[1] = (cx, cy + 40), (cx, cy - 40)
    bad = FaceResult(box=face.box, score=face.score, keypoints=keypoints)
    mesher.refine(astronaut, [bad])
    assert bad.landmarks is None  # what the retry is for
    retrying = FaceMesher(threads=1, retry=True)
    retrying.refine(astronaut, [bad])
    retrying.close()
    assert bad.landmarks is not None
    centre = bad.landmarks[:, :2].mean(0)
    assert np.linalg.norm(centre - (cx, cy)) < 0.2 * (face.box[2] - face.box[0])


def test_photos_get_the_mesh_work_unless_a_flag_says_otherwise():
    live = resolve_config(AnalyzerConfig())
    assert (live.mesh_passes, live.mesh_tta, live.mesh_retry) == (1, False, False)
    photo = resolve_config(AnalyzerConfig(), still=True)
    assert (photo.mesh_passes, photo.mesh_tta, photo.mesh_retry) == (2, True, True)
    assert not photo.track and photo.detect_every == 1
    assert resolve_config(AnalyzerConfig(), overrides={"mesh_tta": False}, still=True).mesh_tta is False
    # a settings file's or the server's own choice holds for photos too
    chosen = resolve_config(AnalyzerConfig.preset("fast", mesh_tta=False, mesh_passes=1), still=True)
    assert (chosen.mesh_passes, chosen.mesh_tta, chosen.mesh_retry) == (1, False, True)


def test_the_photo_path_keeps_a_frontal_face_at_zero_and_a_mirror_exact(astronaut):
    analyzer = Analyzer(AnalyzerConfig.preset("photo", emotion=False))
    pose = analyzer.analyze(astronaut).faces[0].pose
    mirrored = analyzer.analyze(np.ascontiguousarray(astronaut[:, ::-1])).faces[0].pose
    analyzer.close()
    assert abs(pose.yaw) < 5 and abs(pose.pitch) < 5 and abs(pose.roll) < 5, pose
    assert mirrored.yaw == pytest.approx(-pose.yaw, abs=2.0)
    assert mirrored.roll == pytest.approx(-pose.roll, abs=2.0)


def test_a_detection_frame_starts_a_followed_face_from_its_last_mesh(astronaut, face, mesher):
    first = meshed_from_its_box(astronaut, face, mesher)
    followed = mesher.follow(astronaut, [first])[0]
    now = detected(face)
    mesher.refine(astronaut, [now], previous=[first])
    # the same region as following it: the same points, not the box's
    np.testing.assert_allclose(now.landmarks, followed.landmarks, atol=1e-3)
    assert np.abs(first.landmarks - followed.landmarks).max() > 0.1
    # a last-frame face elsewhere is not used
    elsewhere = FaceResult(box=face.box + 300, score=face.score, landmarks=first.landmarks + 300)
    apart = detected(face)
    mesher.refine(astronaut, [apart], previous=[elsewhere])
    np.testing.assert_allclose(apart.landmarks, first.landmarks, atol=1e-3)


def test_a_last_mesh_whose_region_no_longer_holds_the_face_falls_back_to_the_box(astronaut, face, mesher):
    first = meshed_from_its_box(astronaut, face, mesher)
    # the same box, but its mesh a face's width off: the region it gives holds no face
    off = FaceResult(box=face.box, score=face.score, landmarks=first.landmarks + np.float32([300, 0, 0]))
    assert mesher.follow(astronaut, [off])[0].landmarks is None  # what the fall-back is for
    again = detected(face)
    mesher.refine(astronaut, [again], previous=[off])
    np.testing.assert_allclose(again.landmarks, first.landmarks, atol=1e-3)


def test_two_detections_never_start_from_one_last_mesh(astronaut, face, mesher):
    first = meshed_from_its_box(astronaut, face, mesher)
    a, b = detected(face), detected(face, shift=4)
    alone = meshed_from_its_box(astronaut, b, mesher)
    mesher.refine(astronaut, [a, b], previous=[first])
    followed = mesher.follow(astronaut, [first])[0].landmarks
    np.testing.assert_allclose(a.landmarks, followed, atol=1e-3)  # the closer one takes it
    np.testing.assert_allclose(b.landmarks, alone.landmarks, atol=1e-3)  # the other starts from its box


def test_a_tracked_video_starts_from_last_meshes_and_a_cut_clears_them(astronaut):
    calls = []

    class Recording(FaceMesher):
        def refine(self, image, faces, previous=()):
            calls.append(len(previous))
            super().refine(image, faces, previous)

    analyzer = Analyzer(AnalyzerConfig.preset("exact", emotion=False), landmarker=Recording(threads=1))
    analyzer.analyze(astronaut)
    analyzer.analyze(astronaut)
    analyzer.analyze(np.zeros_like(astronaut))  # another shot
    analyzer.analyze(astronaut)
    analyzer.close()
    assert calls == [0, 1, 0, 0]


def test_photos_are_each_read_on_their_own(astronaut):
    config = AnalyzerConfig.preset("photo", emotion=False)
    fresh = Analyzer(config)
    alone = fresh.analyze(astronaut).faces[0].pose
    fresh.close()
    after = Analyzer(config)
    shifted = np.roll(astronaut, 6, axis=1)  # another photo with a face in nearly the same place
    after.analyze(shifted)
    again = after.analyze(astronaut).faces[0].pose
    after.close()
    assert np.allclose((again.yaw, again.pitch, again.roll), (alone.yaw, alone.pitch, alone.roll), atol=1e-4)
