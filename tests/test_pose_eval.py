"""Head-pose evaluation: the AFLW2000-3D loader, its protocol, the metrics and ``tiltwatch eval-pose``."""

import json

import cv2
import numpy as np
import pytest
from scipy.io import savemat

from tiltwatch.errors import InputError
from tiltwatch.training.pose_eval import (
    dataset_angles,
    dataset_angles_from_rotation,
    frame_pitch,
    load_pose_dataset,
    pose_report,
    rotation_from_dataset_angles,
)
from tiltwatch.types import Pose
from tiltwatch.vision.detector import FaceDetector

from .conftest import rotate, tiltwatch


def _write_sample(root, name, image, yaw_pitch_roll_deg, box):
    """One AFLW2000-3D pair: ``name.jpg`` and ``name.mat`` (Pose_Para in radians, pitch first;
    pt3d_68 spread over ``box``)."""
    cv2.imwrite(str(root / f"{name}.jpg"), image)
    yaw, pitch, roll = np.radians(yaw_pitch_roll_deg)
    x1, y1, x2, y2 = box
    xs, ys = np.linspace(x1, x2, 68), np.r_[np.full(34, y1), np.full(34, y2)]
    savemat(
        str(root / f"{name}.mat"),
        {"Pose_Para": np.array([[pitch, yaw, roll, 0, 0, 0, 1]]), "pt3d_68": np.stack([xs, ys, np.zeros(68)])},
    )


@pytest.fixture(scope="module")
def aflw(tmp_path_factory, astronaut):
    """A tiny AFLW layout: the astronaut looking into the lens and turned 20 degrees on screen
    (roll -20: OpenCV turns counter-clockwise, roll is clockwise), a faceless image, and one
    image outside the +-99 degree protocol. A face looking into the lens has pitch -frame_pitch()
    in the dataset's convention (its 3D model's zero sits that much higher)."""
    root = tmp_path_factory.mktemp("aflw")
    box = FaceDetector().detect(astronaut)[0].box
    centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    pitch = -frame_pitch()
    _write_sample(root, "image00001", astronaut, (0, pitch, 0), box)
    _write_sample(root, "image00002", rotate(astronaut, 20, centre), (0, pitch, -20), box)
    _write_sample(root, "image00003", np.full_like(astronaut, 128), (0, pitch, 0), box)
    _write_sample(root, "image00004", astronaut, (120, 0, 0), box)
    return root


def test_loader_reads_angles_in_degrees_and_keeps_the_protocol(aflw):
    every = load_pose_dataset(f"aflw2000:{aflw}", protocol=False)
    assert len(every) == 4
    kept = load_pose_dataset(f"aflw2000:{aflw}")
    assert [s.image.name for s in kept] == ["image00001.jpg", "image00002.jpg", "image00003.jpg"]
    assert kept[1].angles == pytest.approx([0, -frame_pitch(), -20])  # yaw, pitch, roll
    with pytest.raises(InputError, match="unknown pose dataset kind"):
        load_pose_dataset(f"biwi:{aflw}")


def test_dataset_angles_follow_the_dataset_signs():
    """The dataset's yaw has the opposite sign of tiltwatch's; pitch and roll agree; small angles
    are nearly the same numbers in either Euler order (the dataset's XYZ against tiltwatch's YXZ:
    at 10 degrees of yaw and 5 of pitch, roll -3 reads -3.9)."""
    got = dataset_angles(Pose(yaw=10, pitch=5, roll=-3))
    assert got == pytest.approx([-10, 5, -3], abs=1.0)
    assert dataset_angles(Pose(0, 0, 0)) == pytest.approx([0, 0, 0], abs=1e-9)
    # the frame pitch turns the model about its own x axis: a frontal face reads -frame in pitch alone
    assert dataset_angles(Pose(0, 0, 0), 8.0) == pytest.approx([0, -8.0, 0], abs=1e-9)
    a = np.array([[50.0, -20, 30], [-80, 40, -10]])
    assert dataset_angles_from_rotation(rotation_from_dataset_angles(a, 8.0), 8.0) == pytest.approx(a)


def test_report_counts_faces_and_bins_by_true_yaw():
    true = np.array([[0, 0, 0], [45, 10, 0], [70, 0, 5], [-80, 0, 0.0]])
    pred = np.array([[1, 2, 3], [40, 10, 0], [np.nan] * 3, [-70, 0, 0.0]])
    r = pose_report(true, pred)
    assert r["faces_found"] == 0.75 and r["by_yaw"]["60-90"]["faces_found"] == 0.5
    assert r["mae"]["yaw"] == pytest.approx((1 + 5 + 10) / 3) and r["mae"]["pitch"] == pytest.approx(2 / 3)
    assert r["by_yaw"]["0-30"]["mae"]["mean"] == pytest.approx(2.0)


def test_eval_pose_command_end_to_end(aflw, tmp_path):
    out, png = tmp_path / "pose.json", tmp_path / "scatter.png"
    res = tiltwatch("eval-pose", "--dataset", f"aflw2000:{aflw}", "--json", out, "--scatter", png)
    assert res.returncode == 0, res.stderr
    r = json.loads(out.read_text())
    assert r["images"] == 3 and r["found"] == 2 and r["faces_found"] == pytest.approx(2 / 3)
    assert set(r["mae"]) == {"yaw", "pitch", "roll", "mean"}
    assert set(r["by_yaw"]) == {"0-30", "30-60", "60-90"} and r["by_yaw"]["0-30"]["found"] == 2
    assert r["mae"]["mean"] < 3  # a frontal face and its in-plane turn read true, in the dataset's signs
    assert r["frame_pitch_deg"] == frame_pitch()
    assert cv2.imread(str(png)) is not None


def test_eval_pose_errors_are_one_line(tmp_path):
    res = tiltwatch("eval-pose", "--dataset", f"aflw2000:{tmp_path / 'nowhere'}")
    assert res.returncode != 0 and "no such folder" in res.stderr and "Traceback" not in res.stderr
    (tmp_path / "empty").mkdir()
    res = tiltwatch("eval-pose", "--dataset", f"aflw2000:{tmp_path / 'empty'}")
    assert res.returncode != 0 and "no .mat files" in res.stderr and "Traceback" not in res.stderr
    res = tiltwatch("eval-pose", "--dataset", str(tmp_path))
    assert res.returncode != 0 and "KIND:PATH" in res.stderr and "Traceback" not in res.stderr
