"""Head pose (yaw, pitch, roll in degrees) by solvePnP of mesh points against a 3D head model.

The model (``models/head_model_468.npz``) is the face mesh's own 3D output on a real
frontal face, made mirror-symmetric (``scripts/build_head_model.py``), so a frontal face
reads about 0 on all three angles and a mirror flip negates yaw. Angles are relative to
the line of sight from the camera to the face, not to the camera's optical axis.

Every third mesh point (156, spread over the whole face) and SQPNP alone: measured on the
astronaut, Levenberg-Marquardt refinement changed no angle by more than 0.1 degree and
all 468 points agreed no better under a mirror flip, at 3-5x the cost.

``HeadPoseEstimator(calibrated=True)`` (what the analyzer uses) then corrects the solver's
rotation with :class:`PoseCorrection`: small polynomials of its yaw and pitch, fitted on
labelled photos (``models/head_pose_correction.json``, ``scripts/fit_pose_correction.py``; the
figures, cross-validated, are in docs/head_pose.md). They act in the Euler order ``R = Rz Ry Rx``
(roll outermost, about the camera's axis), in which turning the image only moves roll, and they
are odd in yaw (yaw, roll) or even (pitch) with no constant, so an in-plane turn still moves roll
by its angle, a mirror image still negates yaw and roll, and a frontal face still reads 0.
A second, learned step (:func:`network_rotation`) reads the mesh points themselves, turned back
by the roll, each network averaged with its mirror image's answer: one :class:`PoseNetwork`
(``models/head_pose_network.npz``) adds a residual to the angles, trained on the error of the
benchmark's own angles (AFLW2000-3D's order, see ``tiltwatch/training/pose_eval.py``); a second
(``models/head_pose_rotation_network.npz``) outputs the rotation itself, and the two rotations
are averaged. The same three properties hold (to within the mesh's own noise on a turned image).
Poses from the detector's keypoints (faces the mesh rejects) are not corrected.

Usage::

    pose = HeadPoseEstimator().estimate(face.landmarks, frame.shape)    # the solver alone
    pose = HeadPoseEstimator(calibrated=True).estimate(face.landmarks, frame.shape)
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

import cv2
import numpy as np

from ..types import Pose
from .mesh import keypoint_rows


def _load_model() -> tuple[np.ndarray, np.ndarray]:
    with resources.files("tiltwatch.models").joinpath("head_model_468.npz").open("rb") as fh:
        data = np.load(fh)
        return data["points"].astype(np.float64), data["offsets"].astype(np.float64)


CORRECTION_FILE = "head_pose_correction.json"
#: angles are divided by this before they enter the correction's polynomials
_SCALE = 90.0


def _odd(yaw: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    """Terms odd in yaw (for yaw and roll): each changes sign with a mirror image."""
    y, p = yaw / _SCALE, pitch / _SCALE
    return np.stack([y, y * np.abs(y), y * p, y * p * p, y**3, y * np.abs(p)], -1)


def _even(yaw: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    """Terms even in yaw (for pitch), none constant: a frontal face keeps pitch 0."""
    y, p = yaw / _SCALE, pitch / _SCALE
    return np.stack([p, np.abs(y), y * y, p * p, p * np.abs(y), p * y * y, np.abs(y) ** 3], -1)


def _rx(a: np.ndarray) -> np.ndarray:
    c, s, o, i = np.cos(a), np.sin(a), np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([i, o, o], -1), np.stack([o, c, -s], -1), np.stack([o, s, c], -1)], -2)


def _ry(a: np.ndarray) -> np.ndarray:
    c, s, o, i = np.cos(a), np.sin(a), np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([c, o, s], -1), np.stack([o, i, o], -1), np.stack([-s, o, c], -1)], -2)


def _rz(a: np.ndarray) -> np.ndarray:
    c, s, o, i = np.cos(a), np.sin(a), np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([c, -s, o], -1), np.stack([s, c, o], -1), np.stack([o, o, i], -1)], -2)


# Euler angles in plain numpy (scipy's Rotation costs ~50 us a call, per face): the same
# intrinsic orders as scipy's "ZYX" and "YXZ", checked against it in tests/test_pose.py.
def zyx_angles(r: np.ndarray) -> np.ndarray:
    """(..., 3, 3) model->camera rotations -> (..., 3) yaw, pitch, roll (tiltwatch's signs) in the
    order ``R = Rz(roll) Ry(-yaw) Rx(-pitch)``, where an in-plane turn of the image moves roll alone."""
    r = np.asarray(r, np.float64)
    about_y = np.arcsin(np.clip(-r[..., 2, 0], -1.0, 1.0))
    about_z = np.arctan2(r[..., 1, 0], r[..., 0, 0])
    about_x = np.arctan2(r[..., 2, 1], r[..., 2, 2])
    return np.degrees(np.stack([-about_y, -about_x, about_z], -1))


def rotation_from_zyx(angles: np.ndarray) -> np.ndarray:
    """The inverse of :func:`zyx_angles`."""
    a = np.radians(np.asarray(angles, np.float64))
    if a.ndim == 1:
        return _rz1(a[2]) @ _ry1(-a[0]) @ _rx1(-a[1])
    return _rz(a[..., 2]) @ _ry(-a[..., 0]) @ _rx(-a[..., 1])


def _rx1(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _ry1(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _rz1(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


@dataclass
class PoseCorrection:
    """yaw += odd(yaw, pitch) . yaw_w, pitch += even(yaw, pitch) . pitch_w, roll += odd(yaw, pitch) . roll_w,
    on the ZYX angles of the solver's rotation (see :func:`zyx_angles`). The polynomials see yaw and
    pitch clipped to ``limit`` (the largest the fit saw), so they never extrapolate."""

    yaw: np.ndarray
    pitch: np.ndarray
    roll: np.ndarray
    limit: np.ndarray  # (2,) |yaw|, |pitch| in degrees

    def apply(self, angles: np.ndarray) -> np.ndarray:
        """(..., 3) ZYX yaw, pitch, roll -> corrected, same shape."""
        a = np.asarray(angles, np.float64)
        if a.ndim == 1:  # one face: plain floats (numpy's per-call overhead dominates at this size)
            y = min(max(float(a[0]), -self.limit[0]), self.limit[0]) / _SCALE
            p = min(max(float(a[1]), -self.limit[1]), self.limit[1]) / _SCALE
            ay, ap = abs(y), abs(p)
            odd1 = np.array([y, y * ay, y * p, y * p * p, y**3, y * ap])
            even1 = np.array([p, ay, y * y, p * p, p * ay, p * y * y, ay**3])
            return np.array([a[0] + odd1 @ self.yaw, a[1] + even1 @ self.pitch, a[2] + odd1 @ self.roll])
        y, p = np.clip(a[..., 0], -self.limit[0], self.limit[0]), np.clip(a[..., 1], -self.limit[1], self.limit[1])
        odd, even = _odd(y, p), _even(y, p)
        return np.stack([a[..., 0] + odd @ self.yaw, a[..., 1] + even @ self.pitch, a[..., 2] + odd @ self.roll], -1)

    @classmethod
    def fit(cls, raw: np.ndarray, true: np.ndarray, f_scale: float = 3.0) -> PoseCorrection:
        """Least squares with a soft L1 loss (``f_scale`` degrees) of true - raw, each angle on its terms."""
        from scipy.optimize import least_squares

        weights = []
        for j, terms in enumerate((_odd, _even, _odd)):
            x, d = terms(raw[:, 0], raw[:, 1]), true[:, j] - raw[:, j]
            w0 = np.linalg.lstsq(x, d, rcond=None)[0]
            weights.append(least_squares(lambda w, x=x, d=d: x @ w - d, w0, loss="soft_l1", f_scale=f_scale).x)
        return cls(*weights, np.abs(raw[:, :2]).max(0))

    def to_dict(self) -> dict:
        return {k: getattr(self, k).tolist() for k in ("yaw", "pitch", "roll", "limit")}

    @classmethod
    def from_dict(cls, d: dict) -> PoseCorrection:
        return cls(*(np.asarray(d[k], np.float64) for k in ("yaw", "pitch", "roll", "limit")))


def load_correction() -> dict:
    """The shipped correction file: the ``mesh`` correction (``keypoints``: null, none shipped), the
    dataset's frame pitch and the cross-validated figures of the fit."""
    return json.loads(resources.files("tiltwatch.models").joinpath(CORRECTION_FILE).read_text())


NETWORK_FILE = "head_pose_network.npz"
#: a second network of the same form with six outputs: the rotation itself (see PoseNetwork.rotation)
ROTATION_FILE = "head_pose_rotation_network.npz"
_MIRROR = np.diag([-1.0, 1.0, 1.0])


def _six_d_rotation(six: np.ndarray) -> np.ndarray:
    """(..., 6) -> (..., 3, 3): Gram-Schmidt of the two 3-vectors, the rotation's first two columns."""
    a, b = six[..., :3], six[..., 3:]
    x = a / np.sqrt((a * a).sum(-1, keepdims=True))
    y = b - (x * b).sum(-1, keepdims=True) * x
    y = y / np.sqrt((y * y).sum(-1, keepdims=True))
    z = x[..., [1, 2, 0]] * y[..., [2, 0, 1]] - x[..., [2, 0, 1]] * y[..., [1, 2, 0]]  # x cross y
    return np.stack([x, y, z], -1)


def nearest_rotation(m: np.ndarray) -> np.ndarray:
    """The rotation nearest (Frobenius) to a 3x3 matrix (or each of a stack), e.g. the mean of two rotations."""
    u, _, vt = np.linalg.svd(m)
    u[..., :, -1] *= np.where(np.linalg.det(u @ vt) < 0, -1.0, 1.0)[..., None]  # a reflection: turn its last axis
    return u @ vt


def mirror_permutation(model: np.ndarray) -> np.ndarray:
    """Index of each head-model point's mirror partner (the model is mirror-symmetric in x)."""
    flipped = model * np.array([-1.0, 1.0, 1.0])
    return np.argmin(((flipped[:, None] - model[None]) ** 2).sum(-1), 1)


def canonical_points(landmarks: np.ndarray, roll: float) -> np.ndarray:
    """(468, 3) mesh points centred, turned back by ``roll`` degrees in the image plane and scaled
    to unit RMS in x, y: what is left of them does not change with an in-plane turn or the face's size."""
    xy = landmarks[:, :2] - landmarks[:, :2].mean(0)
    z = landmarks[:, 2] - landmarks[:, 2].mean()
    c, s = math.cos(math.radians(roll)), math.sin(math.radians(roll))
    x, y = c * xy[:, 0] + s * xy[:, 1], -s * xy[:, 0] + c * xy[:, 1]
    return np.column_stack([x, y, z]) / math.sqrt(float((x * x + y * y).mean()))


def _gelu(x: np.ndarray) -> np.ndarray:  # torch's GELU(approximate="tanh")
    return 0.5 * x * (1.0 + np.tanh(0.7978845608028654 * (x + 0.044715 * x**3)))


@dataclass
class PoseNetwork:
    """A second, learned step after :class:`PoseCorrection` for mesh poses: one hidden layer from
    the canonical mesh points (every third, :func:`canonical_points`) and the corrected ZYX yaw
    and pitch to a residual of ZYX yaw, pitch, roll. It is averaged with its own answer on the
    mirror image (negated in yaw and roll), so a mirror image reads exactly mirrored, and it sees
    the points turned back by the roll, so an in-plane turn moves roll alone. The same form with
    six outputs is the rotation network (:meth:`rotation`, ``ROTATION_FILE``)."""

    mean: np.ndarray
    std: np.ndarray
    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray
    index: np.ndarray
    perm: np.ndarray
    scale: float = 30.0

    def __post_init__(self) -> None:
        self._rows = np.concatenate([self.index, self.perm[self.index]])  # the points, then their partners

    def features(self, landmarks: np.ndarray, zyx: np.ndarray) -> np.ndarray:
        """(..., 2, F): each face's features and its mirror image's (:func:`canonical_points` of the
        ``index`` points and of their mirror partners, computed for those points alone), from
        (..., 468, 3) landmarks and (..., 3) ZYX angles."""
        pts = np.asarray(landmarks, np.float64)
        zyx = np.asarray(zyx, np.float64)
        centre = pts.mean(-2, keepdims=True)
        xy = pts[..., :2] - centre[..., :2]
        scale = np.sqrt(np.einsum("...ij,...ij->...", xy, xy) / xy.shape[-2])[..., None]  # RMS: the same after the turn
        roll = np.radians(zyx[..., 2:3])
        c, s = np.cos(roll) / scale, np.sin(roll) / scale
        sel = xy[..., self._rows, :]
        n = len(self.index)
        out = np.empty((*pts.shape[:-2], 2, 3 * n + 2))
        x = c * sel[..., 0] + s * sel[..., 1]
        out[..., 0, 0 : 3 * n : 3], out[..., 1, 0 : 3 * n : 3] = x[..., :n], -x[..., n:]
        y = c * sel[..., 1] - s * sel[..., 0]
        out[..., 0, 1 : 3 * n : 3], out[..., 1, 1 : 3 * n : 3] = y[..., :n], y[..., n:]
        z = (pts[..., self._rows, 2] - centre[..., 2]) / scale
        out[..., 0, 2 : 3 * n : 3], out[..., 1, 2 : 3 * n : 3] = z[..., :n], z[..., n:]
        yaw, pitch = zyx[..., 0:1] / _SCALE, zyx[..., 1:2] / _SCALE
        out[..., 0, 3 * n :] = np.concatenate([yaw, pitch], -1)
        out[..., 1, 3 * n :] = np.concatenate([-yaw, pitch], -1)
        return out

    def _forward(self, features: np.ndarray) -> np.ndarray:
        """(..., F) -> (..., outputs); the faces as one matrix (a stack of small ones is several times slower)."""
        x = ((features - self.mean) / self.std).reshape(-1, features.shape[-1])
        out = _gelu(x @ self.w1 + self.b1) @ self.w2 + self.b2
        return out.reshape(*features.shape[:-1], -1)

    def residual(self, features: np.ndarray) -> np.ndarray:
        """(..., 2, F) features of a face and its mirror -> (..., 3) residual yaw, pitch, roll, mirror-averaged."""
        out = self._forward(features) * self.scale
        return (out[..., 0, :] + out[..., 1, :] * np.array([-1.0, 1.0, -1.0])) / 2

    def rotation(self, features: np.ndarray) -> np.ndarray:
        """For a network with six outputs (``ROTATION_FILE``): (..., 2, F) features of a face and its
        mirror -> (..., 3, 3) rotation in the frame turned back by the roll (the face's rotation is
        ``Rz(roll) @ this``), the mirror image's answer mirrored back and the two averaged."""
        r = _six_d_rotation(self._forward(features))
        return nearest_rotation((r[..., 0, :, :] + _MIRROR @ r[..., 1, :, :] @ _MIRROR) / 2)

    def save(self, path) -> None:
        weights = {k: np.asarray(getattr(self, k), np.float32) for k in ("mean", "std", "w1", "b1", "w2", "b2")}
        np.savez_compressed(
            path,
            **weights,
            index=self.index.astype(np.int16),
            perm=self.perm.astype(np.int16),
            scale=np.float32(self.scale),
        )

    @classmethod
    def load(cls, name: str = NETWORK_FILE) -> PoseNetwork | None:
        path = resources.files("tiltwatch.models").joinpath(name)
        if not path.is_file():
            return None
        with path.open("rb") as fh:
            d = np.load(fh)
            return cls(
                *(d[k].astype(np.float64) for k in ("mean", "std", "w1", "b1", "w2", "b2")),
                d["index"].astype(np.int64),
                d["perm"].astype(np.int64),
                float(d["scale"]),
            )


class HeadPoseEstimator:
    """``calibrated=False``: the PnP solver alone (exact on the head model's own projection);
    ``True``: a mesh pose's rotation corrected by the shipped :class:`PoseCorrection` (keypoint
    poses too, should the file ever hold a ``keypoints`` correction)."""

    def __init__(self, calibrated: bool = False) -> None:
        self.model, self.offsets = _load_model()  # offsets: the mesh's constant yaw/pitch/roll bias
        self.index = np.arange(0, len(self.model), 3)
        self._object_points = np.ascontiguousarray(self.model[self.index])  # sliced once, not per face
        self._keypoint_points = np.ascontiguousarray(keypoint_rows(self.model))
        self.calibrated = calibrated
        self._mesh_fix = self._keypoint_fix = self._network = self._rotation_network = None
        if calibrated:
            data = load_correction()
            self._mesh_fix = PoseCorrection.from_dict(data["mesh"])
            self._keypoint_fix = PoseCorrection.from_dict(data["keypoints"]) if data.get("keypoints") else None
            self._network = PoseNetwork.load()
            self._rotation_network = PoseNetwork.load(ROTATION_FILE) if self._network is not None else None
            rnet = self._rotation_network
            if rnet is not None and not np.array_equal(rnet.index, self._network.index):
                raise ValueError(f"{ROTATION_FILE} and {NETWORK_FILE} must read the same mesh points")

    def estimate(self, landmarks: np.ndarray, image_shape: tuple[int, ...]) -> Pose | None:
        return self.estimate_many([landmarks], image_shape)[0]

    def estimate_many(self, landmarks: Sequence[np.ndarray], image_shape: tuple[int, ...]) -> list[Pose | None]:
        """The pose of each face of a frame from its (468, 3) mesh points: the solver face by face,
        the correction and the networks for all of them at once (0.55 ms a face at five faces
        against 0.86 one by one on 2 AVX2 cores: numpy's per-call overhead dominates at one face)."""
        poses = [self._solve(self._object_points, lm[self.index, :2], image_shape, self.offsets) for lm in landmarks]
        solved = [i for i, pose in enumerate(poses) if pose is not None]
        if not solved or self._mesh_fix is None:
            return poses
        zyx = self._mesh_fix.apply(zyx_angles(np.stack([rotation_from_pose(poses[i]) for i in solved])))
        if self._network is None:
            rotations = rotation_from_zyx(zyx)
        else:
            points = np.stack([landmarks[i] for i in solved])
            rotations = network_rotation(self._network, self._rotation_network, points, zyx)
        for i, r in zip(solved, rotations):
            poses[i] = pose_from_rotation(r)
        return poses

    def estimate_from_keypoints(self, keypoints: np.ndarray, image_shape: tuple[int, ...]) -> Pose | None:
        """Coarser pose from the detector's six keypoints, for faces without a mesh."""
        pose = self._solve(self._keypoint_points, keypoints, image_shape, self.offsets)
        return _corrected(pose, self._keypoint_fix)

    @staticmethod
    def _solve(obj: np.ndarray, points: np.ndarray, image_shape: tuple[int, ...], offsets: np.ndarray) -> Pose | None:
        f = float(max(image_shape[:2]))
        img = np.ascontiguousarray(points, np.float64)
        # Principal point on the face itself: the angles are relative to the line of sight,
        # so a face looking into the lens reads 0 wherever it is in the frame.
        cx, cy = img.mean(0)
        cam = np.array([[f, 0, cx], [0, f, cy], [0, 0, 1]], np.float64)
        ok, rvec, _ = cv2.solvePnP(obj, img, cam, None, flags=cv2.SOLVEPNP_SQPNP)
        if not ok:
            return None
        return Pose.from_array(pose_from_rotation(cv2.Rodrigues(rvec)[0]).as_array() - offsets)


def network_rotation(
    network: PoseNetwork, rotation_network: PoseNetwork | None, landmarks: np.ndarray, zyx: np.ndarray
) -> np.ndarray:
    """The learned step: the polynomial-corrected ZYX angles plus ``network``'s residual, as a
    rotation; with ``rotation_network`` (same features), the mean of that and its own rotation,
    turned by the roll (both answers are mirror-exact and turn with an in-plane turn, so is their mean).
    (..., 468, 3) landmarks and (..., 3) angles -> (..., 3, 3)."""
    features = network.features(landmarks, zyx)
    r = rotation_from_zyx(zyx + network.residual(features))
    if rotation_network is None:
        return r
    roll = np.radians(np.asarray(zyx, np.float64)[..., 2])
    turn = _rz(roll) if roll.ndim else _rz1(float(roll))
    return nearest_rotation(r + turn @ rotation_network.rotation(features))


def _corrected(pose: Pose | None, fix: PoseCorrection | None) -> Pose | None:
    if pose is None or fix is None:
        return pose
    r = rotation_from_pose(pose)
    return pose_from_rotation(rotation_from_zyx(fix.apply(zyx_angles(r))))


def pose_from_rotation(r: np.ndarray) -> Pose:
    """Model->camera rotation (x right, y down, z away from the camera) -> tiltwatch's angles."""
    about_x = np.arcsin(np.clip(-r[1, 2], -1.0, 1.0))  # R = Ry Rx Rz
    about_y = np.arctan2(r[0, 2], r[2, 2])
    about_z = np.arctan2(r[1, 0], r[1, 1])
    return Pose(yaw=-float(np.degrees(about_y)), pitch=-float(np.degrees(about_x)), roll=float(np.degrees(about_z)))


def rotation_from_pose(pose: Pose) -> np.ndarray:
    """The inverse of :func:`pose_from_rotation`: tiltwatch's angles -> model->camera rotation."""
    return _ry1(math.radians(-pose.yaw)) @ _rx1(math.radians(-pose.pitch)) @ _rz1(math.radians(pose.roll))
