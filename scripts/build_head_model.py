"""Build tiltwatch's 3D head model (tiltwatch/models/head_model_468.npy) from the face mesh itself.

The mesh's 3D output on a real frontal face (skimage's astronaut) and on its mirror image
gives each point's left/right partner; averaging the face with its own reflection makes a
mirror-symmetric model. Its axes: x across the face (symmetry-plane normal), z the camera's
viewing direction within the symmetry plane, y = z cross x (down). So the reference face
reads yaw = roll = 0 by symmetry and pitch = 0 by construction.

The mesh itself has a small constant bias (a face and its mirror image read the same
sign of yaw); with a FER+ folder given, that bias is measured as the mean of
(angle(face) + angle(mirror)) / 2 over FER+ training faces and stored as offsets.

Usage: python scripts/build_head_model.py [FERPLUS_ROOT]
"""

import sys
from pathlib import Path

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment
from skimage import data

from tiltwatch.vision.detector import FaceDetector
from tiltwatch.vision.mesh import FaceMesher
from tiltwatch.vision.pose import HeadPoseEstimator


def mesh3d(img, det, mesher):
    faces = det.detect(img)
    mesher.refine(img, faces[:1])
    return faces[0].landmarks.astype(np.float64)


def kabsch(src, dst):
    cs, cd = src.mean(0), dst.mean(0)
    u, _, vt = np.linalg.svd((src - cs).T @ (dst - cd))
    d = np.sign(np.linalg.det(vt.T @ u.T))
    r = vt.T @ np.diag([1, 1, d]) @ u.T
    return r, cd - r @ cs


def main():
    img = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    det, mesher = FaceDetector(), FaceMesher()
    p = mesh3d(img, det, mesher)
    q = mesh3d(np.ascontiguousarray(img[:, ::-1]), det, mesher)
    q[:, 0] = img.shape[1] - 1 - q[:, 0]  # mirror back: q[i] now sits on i's partner
    rows, perm = linear_sum_assignment(((q[:, None, :2] - p[None, :, :2]) ** 2).sum(-1))
    perm = perm[np.argsort(rows)]
    refl = p * [-1, 1, 1]
    r, t = kabsch(refl[perm], p)
    sym = (p + (refl[perm] @ r.T + t)) / 2
    diff = sym - sym[perm]
    x = np.linalg.svd(diff[np.linalg.norm(diff, axis=1) > 1e-6], full_matrices=False)[2][0]
    x *= np.sign(x[0])
    z = np.array([0, 0, 1.0]) - x[2] * x
    z /= np.linalg.norm(z)
    y = np.cross(z, x)
    model = (sym - sym.mean(0)) @ np.stack([x, y, z], 1)
    model /= np.linalg.norm(model[33, :2] - model[263, :2])  # unit = outer-eye-corner distance
    pair_err = np.abs(model - model[perm] * [-1, 1, 1]).max()
    out = Path(__file__).resolve().parents[1] / "tiltwatch/models/head_model_468.npz"
    np.savez(out, points=model.astype(np.float32), offsets=np.zeros(3, np.float32))
    offsets = mesh_bias(sys.argv[1], mesher) if len(sys.argv) > 1 else np.zeros(3)
    np.savez(out, points=model.astype(np.float32), offsets=offsets.astype(np.float32))
    print(
        f"wrote {out.name}: {len(model)} points, mirror asymmetry {pair_err:.2e}, "
        f"{int((perm == np.arange(len(perm))).sum())} points on the midline, "
        f"offsets yaw/pitch/roll {np.round(offsets, 2).tolist()}"
    )


def mesh_bias(root: str, mesher: FaceMesher, n: int = 600) -> np.ndarray:
    """Mean (yaw, pitch, roll) the mesh reads for a face and its mirror, halved: its constant bias."""
    from tiltwatch.training.datasets import load_ferplus

    fs = load_ferplus(root, "train")
    est = HeadPoseEstimator()
    sums = []
    for i in np.random.default_rng(0).choice(len(fs), n, replace=False):
        big = cv2.cvtColor(cv2.resize(fs.images[i], (192, 192), interpolation=cv2.INTER_CUBIC), cv2.COLOR_GRAY2BGR)
        poses = []
        for im in (big, np.ascontiguousarray(big[:, ::-1])):
            lm = mesher.landmarks_in_crop(im)
            poses.append(None if lm is None else est.estimate(lm, im.shape))
        if all(poses):
            a, b = (p.as_array() for p in poses)
            sums.append([(a[0] + b[0]) / 2, 0.0, (a[2] + b[2]) / 2])
    print(f"mesh bias from {len(sums)} FER+ faces and their mirrors")
    return np.median(np.array(sums), 0)


if __name__ == "__main__":
    main()
