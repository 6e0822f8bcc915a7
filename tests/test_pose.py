"""Head pose: calibrated to read ~0 on a frontal face, exact under known rotations."""

import cv2
import numpy as np
import pytest

from tiltwatch import Analyzer
from tiltwatch.types import Pose
from tiltwatch.vision.pose import HeadPoseEstimator, rotation_from_pose

from .conftest import rotate


def one_face(analyzer, image):
    faces = analyzer.analyze(image).faces
    assert len(faces) == 1 and faces[0].pose is not None
    return faces[0]


def test_frontal_face_reads_near_zero(analyzer, astronaut):
    pose = one_face(analyzer, astronaut).pose
    assert abs(pose.yaw) < 5 and abs(pose.pitch) < 5 and abs(pose.roll) < 5, pose


@pytest.mark.parametrize("degrees", [-30, -20, -10, 10, 20, 30])
def test_in_plane_rotation_moves_roll_by_that_angle(analyzer, astronaut, degrees):
    base = one_face(analyzer, astronaut)
    x1, y1, x2, y2 = base.box
    turned = one_face(analyzer, rotate(astronaut, degrees, ((x1 + x2) / 2, (y1 + y2) / 2)))
    # OpenCV rotates counter-clockwise for positive angles; roll is positive clockwise
    assert turned.pose.roll - base.pose.roll == pytest.approx(-degrees, abs=2.0)


def test_mirror_flip_negates_yaw(analyzer, astronaut):
    yaw = one_face(analyzer, astronaut).pose.yaw
    yaw_flipped = one_face(analyzer, np.ascontiguousarray(astronaut[:, ::-1])).pose.yaw
    assert yaw_flipped == pytest.approx(-yaw, abs=2.0)


@pytest.mark.parametrize("yaw,pitch,roll", [(30, 0, 0), (-25, 10, 5), (0, -20, -10), (45, 15, 0)])
def test_known_rotation_of_the_head_model_is_recovered(yaw, pitch, roll):
    """Project the 3D model at a known pose; the estimator must return that pose (signs included)."""
    est = HeadPoseEstimator()
    r = rotation_from_pose(Pose(yaw, pitch, roll))
    f, size = 800.0, (480, 640)
    pts = est.model @ r.T + np.array([0, 0, 8.0])  # 8 eye-distances in front of the camera
    cam = np.array([[f, 0, 320], [0, f, 240], [0, 0, 1]])
    uv = (pts @ cam.T)[:, :2] / pts[:, 2:]
    got = est.estimate(np.column_stack([uv, np.zeros(len(uv))]), size)
    # the principal point sits on the face, and the face is at the image centre here: exact
    assert got.as_array() == pytest.approx(np.array([yaw, pitch, roll]) + est.offsets, abs=0.5)


def test_yaw_sign_means_face_turned_towards_image_right():
    est = HeadPoseEstimator()
    r = rotation_from_pose(Pose(30, 0, 0))
    nose_dir = r @ np.array([0, 0, -1.0])  # where the face points, camera coordinates
    assert nose_dir[0] > 0  # yaw +30 points the face to the image's right (+x)
    assert isinstance(Pose(1, 2, 3).to_dict()["yaw"], float)
    assert est.model.shape == (468, 3)
    assert cv2.norm(est.model[33, :2] - est.model[263, :2]) == pytest.approx(1.0, abs=1e-5)


def test_a_face_without_a_mesh_gets_its_pose_from_the_detector_keypoints(analyzer, astronaut):
    """mesh: false (or a mesh that fails): a coarser pose from the six detector keypoints,
    near the mesh's on a real face, and turning with the face."""
    no_mesh = Analyzer(track=False, smooth_tau=0, mesh=False, emotion=False)
    coarse = no_mesh.analyze(astronaut).faces[0]
    assert coarse.landmarks is None and coarse.pose is not None
    fine = one_face(analyzer, astronaut).pose
    assert np.abs(coarse.pose.as_array() - fine.as_array()).max() < 8, (coarse.pose, fine)
    x1, y1, x2, y2 = coarse.box
    turned = no_mesh.analyze(rotate(astronaut, 20, ((x1 + x2) / 2, (y1 + y2) / 2))).faces[0]
    assert turned.pose.roll - coarse.pose.roll == pytest.approx(-20, abs=4.0)
    flipped = no_mesh.analyze(np.ascontiguousarray(astronaut[:, ::-1])).faces[0]
    assert flipped.pose.yaw == pytest.approx(-coarse.pose.yaw, abs=3.0)


def test_the_shipped_correction_keeps_mirror_and_in_plane_turns_exact():
    """The analyzer's estimator is calibrated; its correction is odd/even in yaw and blind to roll,
    so mirrored angles correct to mirrored angles, an in-plane turn moves roll alone, 0 stays 0."""
    from tiltwatch.vision.pose import PoseCorrection, load_correction

    fix = PoseCorrection.from_dict(load_correction()["mesh"])
    grid = np.array(
        [[y, p, r] for y in (-70, -35, -10, 0, 20, 50, 85) for p in (-40, -5, 0, 15, 60) for r in (-30, 0, 25)], float
    )
    out = fix.apply(grid)
    mirror = np.array([-1, 1, -1])
    assert fix.apply(grid * mirror) == pytest.approx(out * mirror, abs=1e-9)
    turned = fix.apply(grid + [0, 0, 17])
    assert turned - out == pytest.approx(np.tile([0, 0, 17.0], (len(grid), 1)), abs=1e-9)
    assert fix.apply(np.array([0, 0, 12.0])) == pytest.approx([0, 0, 12.0], abs=1e-9)
    assert np.abs(out - grid).max() > 3  # and it does correct something
    assert Analyzer(track=False, emotion=False).pose.calibrated and not HeadPoseEstimator().calibrated


def test_euler_conversions_match_scipy():
    from scipy.spatial.transform import Rotation

    from tiltwatch.vision.pose import pose_from_rotation, rotation_from_zyx, zyx_angles

    rotvecs = np.array([[0.3, -1.1, 0.4], [1.2, 0.2, -0.7], [-0.1, 0.05, 2.5], [0, 0, 0]])
    rots = Rotation.from_rotvec(rotvecs).as_matrix()
    for r in rots:
        y, x, z = Rotation.from_matrix(r).as_euler("YXZ", degrees=True)
        assert pose_from_rotation(r).as_array() == pytest.approx([-y, -x, z], abs=1e-9)
        assert rotation_from_pose(pose_from_rotation(r)) == pytest.approx(r, abs=1e-12)
        z2, y2, x2 = Rotation.from_matrix(r).as_euler("ZYX", degrees=True)
        assert zyx_angles(r) == pytest.approx([-y2, -x2, z2], abs=1e-9)
    assert rotation_from_zyx(zyx_angles(rots)) == pytest.approx(rots, abs=1e-12)


def test_the_shipped_network_step_is_mirror_exact_and_blind_to_in_plane_turns():
    """The learned step after the polynomials: the mirror image's residual is the face's, negated
    in yaw and roll; points turned in the image plane (and roll with them) give the same features."""
    from tiltwatch.vision.pose import PoseNetwork

    net = PoseNetwork.load()
    assert net is not None and HeadPoseEstimator(calibrated=True)._network is not None
    est = HeadPoseEstimator()
    r = rotation_from_pose(Pose(35, -10, 5))
    pts = est.model @ r.T + np.array([0, 0, 8.0])
    uv = pts[:, :2] / pts[:, 2:] * 800 + 300
    landmarks = np.column_stack([uv, pts[:, 2] * 100])
    zyx = np.array([35.0, -10.0, 5.0])
    f = net.features(landmarks, zyx)
    res, res_mirror = net.residual(f), net.residual(f[::-1])
    assert res_mirror == pytest.approx(res * [-1, 1, -1], abs=1e-9)
    t = np.radians(20)
    turn = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    turned = landmarks.copy()
    turned[:, :2] = (landmarks[:, :2] - 300) @ turn.T + 300
    assert net.features(turned, zyx + [0, 0, 20]) == pytest.approx(f, abs=1e-9)
    assert np.abs(res).max() < 30  # a residual, not a new answer


def test_the_benchmark_order_has_roll_about_the_face_and_pitch_about_the_camera():
    """AFLW2000-3D's angles (the order its own labelled 3D landmarks obey, scripts/pose_convention_check.py):
    R = Rx(-pitch) Ry(yaw) Rz(roll), so roll turns the face about its own nose axis and pitch about
    the camera's x axis; a face turned 60 degrees and then rolled about its own axis reads that roll alone."""
    from scipy.spatial.transform import Rotation

    from tiltwatch.training.pose_eval import dataset_angles_from_rotation, rotation_from_dataset_angles

    turned = rotation_from_pose(Pose(yaw=-60, pitch=0, roll=0))  # the dataset's yaw +60
    own_roll = turned @ Rotation.from_euler("z", 20, degrees=True).as_matrix()
    assert dataset_angles_from_rotation(own_roll) == pytest.approx([60, 0, 20], abs=1e-9)
    camera_pitch = Rotation.from_euler("x", -15, degrees=True).as_matrix() @ turned
    assert dataset_angles_from_rotation(camera_pitch) == pytest.approx([60, 15, 0], abs=1e-9)
    a = np.array([[75.0, -30, 40], [-85, 20, -35]])
    assert dataset_angles_from_rotation(rotation_from_dataset_angles(a)) == pytest.approx(a)


def test_the_shipped_rotation_network_is_mirror_exact_and_turns_with_the_image():
    """The second learned network outputs a rotation (in the frame turned back by the roll); its
    mirror image's answer is the face's, mirrored; the mean of both networks' rotations turns with
    an in-plane turn of the points; and it stays near the polynomials' rotation."""
    from tiltwatch.vision.pose import ROTATION_FILE, PoseNetwork, network_rotation, rotation_from_zyx

    net, rnet = PoseNetwork.load(), PoseNetwork.load(ROTATION_FILE)
    assert rnet is not None and HeadPoseEstimator(calibrated=True)._rotation_network is not None
    est = HeadPoseEstimator()
    pts = est.model @ rotation_from_pose(Pose(-40, 10, -8)).T + np.array([0, 0, 8.0])
    landmarks = np.column_stack([pts[:, :2] / pts[:, 2:] * 800 + 300, pts[:, 2] * 100])
    zyx = np.array([-40.0, 10.0, -8.0])
    f = net.features(landmarks, zyx)
    mirror = np.diag([-1.0, 1.0, 1.0])
    r = rnet.rotation(f)
    assert r @ r.T == pytest.approx(np.eye(3), abs=1e-9) and np.linalg.det(r) == pytest.approx(1.0)
    assert rnet.rotation(f[::-1]) == pytest.approx(mirror @ r @ mirror, abs=1e-9)
    both = network_rotation(net, rnet, landmarks, zyx)
    t = np.radians(25)
    turn = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    turned = landmarks.copy()
    turned[:, :2] = (landmarks[:, :2] - 300) @ turn.T + 300
    rz = np.eye(3)
    rz[:2, :2] = turn
    assert network_rotation(net, rnet, turned, zyx + [0, 0, 25]) == pytest.approx(rz @ both, abs=1e-9)
    cos = (np.trace(both.T @ rotation_from_zyx(zyx)) - 1) / 2
    assert np.degrees(np.arccos(min(1.0, cos))) < 30  # a correction, not a new answer


def test_the_faces_of_a_frame_at_once_read_as_each_alone():
    """The analyzer poses a frame's faces as one batch: each must read as it would alone, in order."""
    est, shape = HeadPoseEstimator(calibrated=True), (720, 1280, 3)
    faces = []
    for i, (yaw, pitch, roll) in enumerate([(30, 0, 0), (-25, 10, 5), (0, -20, -10), (60, 15, 0), (5, 5, 40)]):
        pts = est.model @ rotation_from_pose(Pose(yaw, pitch, roll)).T + np.array([0, 0, 8.0])
        uv = pts[:, :2] / pts[:, 2:] * 700 + [200 + 200 * i, 300]
        faces.append(np.column_stack([uv, pts[:, 2] * 100]))
    together = est.estimate_many(faces, shape)
    alone = [est.estimate(face, shape) for face in faces]
    assert len(together) == 5 and est.estimate_many([], shape) == []
    for a, b in zip(together, alone):
        assert a.as_array() == pytest.approx(b.as_array(), abs=1e-9)
    assert len({round(p.yaw) for p in together}) == 5  # (five different faces, not one five times)
