"""Head-pose benchmarks: datasets behind a ``KIND:PATH`` spec, the pose protocol and its metrics.

Every loader returns :class:`PoseSample` rows: an image, its labelled angles in the dataset's
own convention (pitch, yaw, roll in degrees) and the box of its labelled landmarks, used to
pick which detected face is the labelled one.

=====================  ============================================================
spec                   layout
=====================  ============================================================
``aflw2000:ROOT``      AFLW2000-3D: ``ROOT/imageNNNNN.jpg`` + ``.mat`` (``Pose_Para``,
                       ``pt3d_68``), read with :func:`scipy.io.loadmat`
=====================  ============================================================

AFLW2000-3D's convention (3DDFA's): ``Pose_Para[0:3]`` = pitch, yaw, roll in radians, for the
model->camera rotation ``R = Rx(-pitch) Ry(yaw) Rz(roll)`` in tiltwatch's camera frame (x right, y
down, z away; scipy's intrinsic ``"XYZ"``): pitch > 0 looks up, yaw > 0 turns the face to the
image's left (the opposite sign of tiltwatch's yaw), roll > 0 tilts the head clockwise on screen.
This order is the one that the dataset's own labelled 3D landmarks (``pt3d_68``) obey: turned back
by it, they leave one face shape at every yaw (docs/head_pose.md). :func:`dataset_angles` turns a
tiltwatch :class:`~tiltwatch.types.Pose` into those three angles through its rotation matrix, so
large angles compare in the dataset's own Euler order.

Protocol (as the published figures): images whose three angles lie within +-99 degrees;
the scored face is the detected face whose box best overlaps the labelled landmarks' box.

Usage::

    samples = load_pose_dataset("aflw2000:data/AFLW2000")
    report = evaluate_pose(samples, Analyzer(track=False, emotion=False, smooth_tau=0))
    print(report["faces_found"], report["mae"])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from ..errors import InputError
from ..types import FaceResult, Pose

#: the protocol keeps images whose three labelled angles lie within this many degrees
PROTOCOL_LIMIT = 99.0
#: |yaw| bins of the report, degrees (the last one takes everything beyond 60)
YAW_BINS = ((0.0, 30.0), (30.0, 60.0), (60.0, 90.0))
#: a detected face counts as the labelled one when its box overlaps the landmarks' box this much (IoU)
MIN_IOU = 0.1
ANGLES = ("yaw", "pitch", "roll")


@dataclass
class PoseSample:
    image: Path
    angles: np.ndarray  # (3,) yaw, pitch, roll in degrees, in the dataset's own convention
    box: np.ndarray  # (4,) x1, y1, x2, y2 of the labelled landmarks

    def in_protocol(self) -> bool:
        return bool(np.all(np.abs(self.angles) <= PROTOCOL_LIMIT))


def aflw2000_samples(root: Path) -> list[PoseSample]:
    """Every ``.mat`` in ``root`` with its ``.jpg`` (all of them, protocol or not)."""
    from scipy.io import loadmat

    mats = sorted(root.glob("*.mat"))
    if not mats:
        raise InputError(f"{root}: no .mat files (expected AFLW2000-3D's imageNNNNN.jpg + imageNNNNN.mat)")
    out = []
    for mat in mats:
        image = mat.with_suffix(".jpg")
        if not image.is_file():
            raise InputError(f"{mat}: no image {image.name} beside it")
        try:
            m = loadmat(str(mat))
            pitch, yaw, roll = np.degrees(np.asarray(m["Pose_Para"], np.float64).ravel()[:3])
            pts = np.asarray(m["pt3d_68"], np.float64)[:2]
        except (KeyError, ValueError, OSError) as exc:
            raise InputError(f"{mat}: not an AFLW2000-3D label file ({exc})") from None
        box = np.array([pts[0].min(), pts[1].min(), pts[0].max(), pts[1].max()])
        out.append(PoseSample(image, np.array([yaw, pitch, roll]), box))
    return out


@dataclass(frozen=True)
class PoseKind:
    title: str
    samples: Callable[[Path], list[PoseSample]]


POSE_DATASETS: Mapping[str, PoseKind] = {
    "aflw2000": PoseKind("AFLW2000-3D", aflw2000_samples),
}


def load_pose_dataset(spec: str, protocol: bool = True) -> list[PoseSample]:
    """``KIND:PATH`` -> samples (only those inside the +-99 degree protocol unless ``protocol=False``)."""
    kind, sep, path = spec.partition(":")
    kinds = ", ".join(POSE_DATASETS)
    if not sep or not path:
        raise InputError(f"dataset must be KIND:PATH with KIND one of {kinds}, got {spec!r}")
    if kind not in POSE_DATASETS:
        raise InputError(f"unknown pose dataset kind {kind!r} in {spec!r}; use one of {kinds}")
    root = Path(path)
    if not root.is_dir():
        raise InputError(f"{root}: no such folder")
    samples = POSE_DATASETS[kind].samples(root)
    return [s for s in samples if s.in_protocol()] if protocol else samples


def frame_pitch() -> float:
    """Degrees between the two head models' zero pitch: tiltwatch's frontal face (a face looking
    into the lens) is AFLW2000-3D's 3D model turned this much about its own x axis; fitted with
    the pose correction (``models/head_pose_correction.json``)."""
    from ..vision.pose import load_correction

    return float(load_correction()["aflw2000_frame_pitch_deg"])


def dataset_angles_from_rotation(r: np.ndarray, frame: float = 0.0) -> np.ndarray:
    """(..., 3, 3) model->camera rotations in tiltwatch's camera frame (x right, y down, z away)
    -> (..., 3) yaw, pitch, roll in AFLW2000-3D's convention (``R = Rx(-pitch) Ry(yaw) Rz(roll)``), after
    turning the model by ``frame`` degrees about its x axis (see :func:`frame_pitch`)."""
    r = np.asarray(r, np.float64) @ Rotation.from_euler("x", frame, degrees=True).as_matrix()
    about_x, about_y, about_z = Rotation.from_matrix(r).as_euler("XYZ", degrees=True).T
    return np.stack([about_y, -about_x, about_z], -1)


def rotation_from_dataset_angles(angles: np.ndarray, frame: float = 0.0) -> np.ndarray:
    """The inverse of :func:`dataset_angles_from_rotation`."""
    a = np.asarray(angles, np.float64)
    r = Rotation.from_euler("XYZ", np.stack([-a[..., 1], a[..., 0], a[..., 2]], -1), degrees=True).as_matrix()
    return r @ Rotation.from_euler("x", -frame, degrees=True).as_matrix()


def dataset_angles(pose: Pose, frame: float = 0.0) -> np.ndarray:
    """tiltwatch's pose -> (yaw, pitch, roll) in AFLW2000-3D's convention, through its rotation
    matrix (not angle by angle), so that large angles compare in the dataset's own Euler order."""
    from ..vision.pose import rotation_from_pose

    return dataset_angles_from_rotation(rotation_from_pose(pose), frame)


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def labelled_face(faces: list[FaceResult], box: np.ndarray) -> FaceResult | None:
    """The face (with a pose) whose box best overlaps ``box``; None when none overlaps it by MIN_IOU."""
    scored = [(box_iou(np.asarray(f.box, np.float64), box), f) for f in faces if f.pose is not None]
    if not scored:
        return None
    iou, face = max(scored, key=lambda t: t[0])
    return face if iou >= MIN_IOU else None


def predict_samples(
    samples: list[PoseSample],
    faces_of: Callable[[np.ndarray], list[FaceResult]],
    progress: Callable[[int, int], None] | None = None,
    frame: float = 0.0,
) -> np.ndarray:
    """(N, 3) predicted (yaw, pitch, roll) in the dataset's convention (``frame``: see
    :func:`dataset_angles_from_rotation`); NaN rows where no face was found."""
    pred = np.full((len(samples), 3), np.nan)
    for i, s in enumerate(samples):
        image = cv2.imread(str(s.image), cv2.IMREAD_COLOR)
        if image is None:
            raise InputError(f"{s.image}: cannot read this image")
        face = labelled_face(faces_of(image), s.box)
        if face is not None:
            pred[i] = dataset_angles(face.pose, frame)
        if progress is not None:
            progress(i + 1, len(samples))
    return pred


def yaw_bin_masks(true: np.ndarray) -> dict[str, np.ndarray]:
    """``"0-30"``, ``"30-60"``, ``"60-90"`` -> mask of rows by true |yaw| (the last bin is open above)."""
    a = np.abs(true[:, 0])
    out = {}
    for i, (lo, hi) in enumerate(YAW_BINS):
        last = i == len(YAW_BINS) - 1
        out[f"{lo:.0f}-{hi:.0f}"] = (a >= lo) & ((a < hi) | last)
    return out


def _figures(true: np.ndarray, pred: np.ndarray) -> dict:
    found = ~np.isnan(pred).any(1)
    out: dict = {
        "images": int(len(true)),
        "found": int(found.sum()),
        "faces_found": float(found.mean()) if len(true) else float("nan"),
    }
    if found.any():
        err = np.abs(pred[found] - true[found])
        mae = {a: float(err[:, i].mean()) for i, a in enumerate(ANGLES)}
        mae["mean"] = float(np.mean(list(mae.values())))
        out["mae"] = mae
    else:
        out["mae"] = {a: None for a in (*ANGLES, "mean")}
    return out


def pose_report(true: np.ndarray, pred: np.ndarray) -> dict:
    """faces_found, MAE (yaw, pitch, roll, mean) overall and by |yaw| bin, and each angle's
    bias (mean signed error) and slope (least squares of predicted on true), over the found faces."""
    report = _figures(true, pred)
    report["by_yaw"] = {name: _figures(true[m], pred[m]) for name, m in yaw_bin_masks(true).items()}
    found = ~np.isnan(pred).any(1)
    fit = {}
    for i, a in enumerate(ANGLES):
        t, p = true[found, i], pred[found, i]
        fit[a] = {
            "bias": float((p - t).mean()) if len(t) else None,
            "slope": float(np.polyfit(t, p, 1)[0]) if len(t) > 2 and np.ptp(t) > 0 else None,
        }
    report["fit"] = fit
    return report


def evaluate_pose(
    samples: list[PoseSample], analyzer, progress: Callable[[int, int], None] | None = None
) -> tuple[dict, np.ndarray, np.ndarray]:
    """Run ``analyzer`` (a tiltwatch Analyzer) on every sample -> (report, true, predicted).
    A calibrated pose estimator's angles are compared across the fitted frame pitch; the
    solver alone's as they are."""
    true = np.stack([s.angles for s in samples]) if samples else np.zeros((0, 3))
    frame = frame_pitch() if getattr(analyzer.pose, "calibrated", False) else 0.0
    pred = predict_samples(samples, lambda img: analyzer.analyze(img).faces, progress, frame)
    report = pose_report(true, pred)
    report["frame_pitch_deg"] = frame
    return report, true, pred


def format_report(report: dict) -> str:
    """A few lines for the terminal."""

    def line(name: str, r: dict) -> str:
        m = r["mae"]
        maes = " ".join(f"{k} {m[k]:.2f}" if m[k] is not None else f"{k} -" for k in (*ANGLES, "mean"))
        return f"{name:>8}: {r['found']:4d}/{r['images']:<4d} found ({100 * r['faces_found']:.1f}%)  MAE {maes}"

    rows = [line("all", report)] + [line(f"|yaw| {k}", r) for k, r in report["by_yaw"].items()]
    fit = report["fit"]
    rows.append(
        "  bias/slope: "
        + "  ".join(f"{a} {fit[a]['bias']:+.2f}/{fit[a]['slope']:.2f}" for a in ANGLES if fit[a]["slope"] is not None)
    )
    return "\n".join(rows)


def save_scatter(true: np.ndarray, pred: np.ndarray, path: Path, title: str = "") -> None:
    """Predicted vs true, one panel per angle, the diagonal drawn in."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    found = ~np.isnan(pred).any(1)
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.4))
    for i, (a, ax) in enumerate(zip(ANGLES, axes)):
        ax.scatter(true[found, i], pred[found, i], s=5, alpha=0.5)
        lim = [-100, 100]
        ax.plot(lim, lim, "k--", lw=0.8)
        ax.set(xlim=lim, ylim=lim, xlabel=f"true {a} (deg)", ylabel=f"predicted {a} (deg)", aspect="equal")
        mae = np.abs(pred[found, i] - true[found, i]).mean() if found.any() else float("nan")
        ax.set_title(f"{a}: MAE {mae:.2f}")
    fig.suptitle(title or f"{found.sum()}/{len(true)} faces found")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
