"""Fit the head-pose correction (tiltwatch/models/head_pose_correction.json) on a labelled
pose dataset, and report its k-fold cross-validated figures (folds by image: every image is
scored by a correction fitted without it).

    python scripts/fit_pose_correction.py aflw2000:AFLW2000_DEV --network --also exact --train-both [--write]

What is fitted, on the analyzer's own faces (both detector ranges, the mesh where it takes; the
photo preset's meshes, and with --also exact --train-both a camera's one-pass meshes beside them):
  * the frame pitch between the dataset's head model and tiltwatch's (a face looking into the
    lens reads 0 in tiltwatch), chosen on a 0.5-degree grid;
  * a PoseCorrection for mesh poses (and with --keypoint-fix one for keypoint poses, the faces
    the mesh rejects).
The frame pitch is chosen inside each fold too, on that fold's training images.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from tiltwatch import Analyzer, AnalyzerConfig
from tiltwatch.config import EACH_IMAGE_ALONE
from tiltwatch.training.pose_eval import (
    dataset_angles_from_rotation,
    format_report,
    labelled_face,
    load_pose_dataset,
    pose_report,
    rotation_from_dataset_angles,
    save_scatter,
)
from tiltwatch.vision.pose import (
    CORRECTION_FILE,
    NETWORK_FILE,
    ROTATION_FILE,
    HeadPoseEstimator,
    PoseCorrection,
    PoseNetwork,
    _rz,
    network_rotation,
    rotation_from_pose,
    rotation_from_zyx,
    zyx_angles,
)

FRAMES = np.arange(-15.0, 15.01, 0.5)


def raw_poses(spec: str, cache: Path | None = None, preset: str = "photo"):
    """Per protocol image: the solver's rotation for the labelled face (NaN when none), mesh or not,
    and its mesh points, from the analyzer's ``preset``. ``cache``: an .npz to reuse (written on the
    first run; keep it outside the project, it holds data from the dataset)."""
    key = f"{spec} {preset}"
    if cache is not None and cache.is_file():
        d = np.load(cache)
        if str(d["spec"]) == key:
            return d["true"], d["rot"], d["meshed"], d["landmarks"]
    out = _raw_poses(spec, preset)
    if cache is not None:
        np.savez_compressed(cache, spec=key, **dict(zip(("true", "rot", "meshed", "landmarks"), out)))
    return out


def _raw_poses(spec: str, preset: str):
    samples = load_pose_dataset(spec)
    # each image on its own, whatever the preset: nothing followed from the last (unrelated) image
    analyzer = Analyzer(AnalyzerConfig.preset(preset, emotion=False, **EACH_IMAGE_ALONE))
    analyzer.pose = HeadPoseEstimator(calibrated=False)  # the solver alone
    rot = np.full((len(samples), 3, 3), np.nan)
    meshed = np.zeros(len(samples), bool)
    landmarks = np.full((len(samples), 468, 3), np.nan)
    for i, s in enumerate(samples):
        face = labelled_face(analyzer.analyze(cv2.imread(str(s.image))).faces, s.box)
        if face is not None:
            rot[i] = rotation_from_pose(face.pose)
            meshed[i] = face.landmarks is not None
            if meshed[i]:
                landmarks[i] = face.landmarks
    return np.stack([s.angles for s in samples]), rot, meshed, landmarks


KEYPOINTS = False


def fit(true, rot, meshed, rows, frame=None):
    """(frame pitch, mesh correction, keypoint correction) fitted on ``rows``."""
    raw = zyx_angles(rot[rows])
    best = None
    for f in FRAMES if frame is None else [frame]:
        target = zyx_angles(rotation_from_dataset_angles(true[rows], f))
        m = meshed[rows]
        fix = PoseCorrection.fit(raw[m], target[m])
        err = np.abs(predict(rot[rows][m], fix, f) - true[rows][m]).mean()
        if best is None or err < best[0]:
            best = (err, f, fix)
    _, f, mesh_fix = best
    k = ~meshed[rows]
    target = zyx_angles(rotation_from_dataset_angles(true[rows], f))
    kp_fix = PoseCorrection.fit(raw[k], target[k]) if KEYPOINTS and k.sum() >= 20 else None
    return f, mesh_fix, kp_fix


NETWORK = dict(hidden=32, weight_decay=0.01, epochs=300, lr=1e-2, seeds=5, rotation_weight=3.0)


def _torch_rotation_from_zyx(a):
    """(N, 3) tiltwatch ZYX yaw, pitch, roll in degrees -> (N, 3, 3), as ``rotation_from_zyx``."""
    import torch

    def axis(t, i, j):  # rotation by t in the (i, j) plane
        c, s = torch.cos(t), torch.sin(t)
        m = torch.zeros(len(t), 3, 3, dtype=t.dtype)
        k = 3 - i - j
        m[:, k, k] = 1
        m[:, i, i], m[:, i, j], m[:, j, i], m[:, j, j] = c, -s, s, c
        return m

    yaw, pitch, roll = torch.deg2rad(a).unbind(-1)
    return axis(roll, 0, 1) @ axis(-yaw, 2, 0) @ axis(-pitch, 1, 2)


def _torch_dataset_angles(r, frame: float):
    """(N, 3, 3) -> the dataset's (yaw, pitch, roll), as ``dataset_angles_from_rotation``."""
    import torch

    c, s = np.cos(np.radians(frame)), np.sin(np.radians(frame))
    r = r @ torch.tensor([[1, 0, 0], [0, c, -s], [0, s, c]], dtype=r.dtype)
    about_y = torch.asin(torch.clamp(r[:, 0, 2], -1 + 1e-6, 1 - 1e-6))
    about_x = torch.atan2(-r[:, 1, 2], r[:, 2, 2])
    about_z = torch.atan2(-r[:, 0, 1], r[:, 0, 0])
    return torch.rad2deg(torch.stack([about_y, -about_x, about_z], -1))


def train_network(true, rot, landmarks, rows, model):
    """A PoseNetwork for the residual left by ``model``'s mesh correction on mesh faces ``rows``
    (each face also as its mirror image), trained on the error of the dataset's own three angles
    (the benchmark's measure) plus ``rotation_weight`` times that of the rotation matrix (its
    entries' absolute error: it keeps the fit sound where the angles near gimbal lock are not).
    With ``seeds`` > 1, that many networks side by side in one wider layer (their average).
    Torch, one thread, seeded: fixed numbers once shipped."""
    import torch

    frame, fix, _ = model
    net0, zyx, x, mean, std = _features(rot, landmarks, rows, fix)
    flip = np.tile([[1, 1, 1], [-1, 1, -1]], (len(rows), 1))  # a mirror negates yaw and roll, in both orders
    base = torch.tensor(np.repeat(zyx, 2, 0) * flip, dtype=torch.float32)
    target = np.repeat(true[rows], 2, 0) * flip
    target = (
        torch.tensor(target / net0.scale, dtype=torch.float32),
        torch.tensor(rotation_from_dataset_angles(target, frame), dtype=torch.float32),
    )
    layers = [_fit_one(x, base, target, frame, net0.scale, seed) for seed in range(NETWORK["seeds"])]
    w1, b1 = np.concatenate([w[0].T for w in layers], 1), np.concatenate([w[1] for w in layers])
    w2, b2 = np.concatenate([w[2].T for w in layers]) / len(layers), np.mean([w[3] for w in layers], 0)
    return PoseNetwork(mean, std, w1, b1, w2, b2, net0.index, net0.perm, net0.scale)


def _features(rot, landmarks, rows, fix):
    """The networks' inputs for mesh faces ``rows``: each face's features, then its mirror image's."""
    import torch

    from tiltwatch.vision.mesh import mirror_index

    torch.set_num_threads(1)
    net0 = PoseNetwork(*(np.zeros(1),) * 6, np.arange(0, 468, 3), mirror_index())
    zyx = fix.apply(zyx_angles(rot[rows]))
    feats = np.concatenate([net0.features(landmarks[i], z) for i, z in zip(rows, zyx)])  # face, mirror, ...
    mean, std = feats.mean(0), feats.std(0) + 1e-6
    return net0, zyx, torch.tensor((feats - mean) / std, dtype=torch.float32), mean, std


ROTATION_NETWORK = dict(hidden=32, weight_decay=0.01, epochs=300, lr=1e-2, seeds=3)


def train_rotation_network(true, rot, landmarks, rows, model):
    """A PoseNetwork with six outputs: the rotation itself (two columns, Gram-Schmidt), in the frame
    turned back by the corrected roll, trained on the absolute error of the matrix's entries; the
    estimator averages its rotation with the first network's (``network_rotation``)."""
    import torch

    frame, fix, _ = model
    net0, zyx, x, mean, std = _features(rot, landmarks, rows, fix)
    turned = _rz(np.radians(-zyx[:, 2])) @ rotation_from_dataset_angles(true[rows], frame)
    mirror = np.diag([-1.0, 1, 1])
    target = torch.tensor(np.stack([turned, mirror @ turned @ mirror], 1).reshape(-1, 3, 3), dtype=torch.float32)
    layers = [_fit_rotation(x, target, seed) for seed in range(ROTATION_NETWORK["seeds"])]
    w1, b1 = np.concatenate([w[0].T for w in layers], 1), np.concatenate([w[1] for w in layers])
    w2, b2 = np.concatenate([w[2].T for w in layers]) / len(layers), np.mean([w[3] for w in layers], 0)
    return PoseNetwork(mean, std, w1, b1, w2, b2, net0.index, net0.perm, net0.scale)


def _fit_rotation(x, target, seed):
    import torch

    torch.manual_seed(seed)
    hidden = ROTATION_NETWORK["hidden"]
    net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], hidden), torch.nn.GELU(approximate="tanh"))
    last = torch.nn.Linear(hidden, 6)
    with torch.no_grad():  # start at the identity: the solver's own rotation, turned back by its roll
        last.bias.copy_(torch.tensor([1.0, 0, 0, 0, 1, 0]))
        last.weight.mul_(0.1)
    net.append(last)
    opt = torch.optim.AdamW(net.parameters(), ROTATION_NETWORK["lr"], weight_decay=ROTATION_NETWORK["weight_decay"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, ROTATION_NETWORK["epochs"])
    for _ in range(ROTATION_NETWORK["epochs"]):
        opt.zero_grad()
        six = net(x)
        a = torch.nn.functional.normalize(six[:, :3], dim=-1)
        b = six[:, 3:]
        b = torch.nn.functional.normalize(b - (a * b).sum(-1, keepdim=True) * a, dim=-1)
        r = torch.stack([a, b, torch.cross(a, b, dim=-1)], -1)
        (r - target).abs().sum((-1, -2)).mean().backward()
        opt.step()
        sched.step()
    return [t.detach().double().numpy() for t in (net[0].weight, net[0].bias, net[2].weight, net[2].bias)]


def _fit_one(x, base, target, frame, scale, seed):
    import torch

    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], NETWORK["hidden"]),
        torch.nn.GELU(approximate="tanh"),
        torch.nn.Linear(NETWORK["hidden"], 3),
    )
    opt = torch.optim.AdamW(net.parameters(), NETWORK["lr"], weight_decay=NETWORK["weight_decay"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, NETWORK["epochs"])
    for _ in range(NETWORK["epochs"]):
        opt.zero_grad()
        r = _torch_rotation_from_zyx(base + net(x) * scale)
        loss = torch.nn.functional.smooth_l1_loss(_torch_dataset_angles(r, frame) / scale, target[0], beta=0.1)
        loss = loss + NETWORK["rotation_weight"] * (r - target[1]).abs().sum((-1, -2)).mean()
        loss.backward()
        opt.step()
        sched.step()
    return [t.detach().double().numpy() for t in (net[0].weight, net[0].bias, net[2].weight, net[2].bias)]


def predict_network(rot, landmarks, rows, model, networks):
    """``networks``: (PoseNetwork, rotation PoseNetwork or None) -> the dataset's angles."""
    frame, fix, _ = model
    zyx = fix.apply(zyx_angles(rot[rows]))
    r = np.stack([network_rotation(*networks, landmarks[i], z) for i, z in zip(rows, zyx)])
    return dataset_angles_from_rotation(r, frame)


def train_networks(true, rot, landmarks, rows, model):
    rotation = train_rotation_network(true, rot, landmarks, rows, model) if ROTATION_NETWORK["seeds"] else None
    return train_network(true, rot, landmarks, rows, model), rotation


def predict(rot, fix, frame):
    """Corrected rotations -> the dataset's angles."""
    ang = zyx_angles(rot) if fix is None else fix.apply(zyx_angles(rot))
    return dataset_angles_from_rotation(rotation_from_zyx(ang), frame)


def predict_all(true, rot, meshed, rows, model):
    frame, mesh_fix, kp_fix = model
    out = np.full((len(rows), 3), np.nan)
    for sel, fix in ((meshed[rows], mesh_fix), (~meshed[rows], kp_fix)):
        if sel.any():
            out[sel] = predict(rot[rows][sel], fix, frame)
    return out


def slopes(true, pred) -> str:
    """Least-squares slope of predicted on true, and bias, of each angle: over faces whose true
    angle is within 45 degrees, and over faces within 30 degrees of frontal yaw."""
    found = ~np.isnan(pred).any(1)
    near = found & (np.abs(true[:, 0]) < 30)
    rows = []
    for j, name in enumerate(("yaw", "pitch", "roll")):
        m = found & (np.abs(true[:, j]) < 45)
        rows.append(
            f"  {name:5s} |{name}|<45: slope {np.polyfit(true[m, j], pred[m, j], 1)[0]:.2f} bias "
            f"{(pred[m, j] - true[m, j]).mean():+.2f};  |yaw|<30: slope "
            f"{np.polyfit(true[near, j], pred[near, j], 1)[0]:.2f} bias "
            f"{(pred[near, j] - true[near, j]).mean():+.2f}"
        )
    return "\n".join(rows)


def cross_validate(args, own, other, learn):
    """Every image scored by the steps fitted on the other folds (on ``learn``): this preset's
    angles, the other preset's (or None), and each fold's frame pitch."""
    true, rot, meshed, landmarks = own
    n, found = len(true), ~np.isnan(rot[:, 0, 0])
    folds = np.array_split(np.random.default_rng(0).permutation(n), args.folds)
    cv = np.full((n, 3), np.nan)
    cv_other = np.full((n, 3), np.nan) if other is not None else None
    frames = []
    for test in folds:
        train = np.setdiff1d(np.flatnonzero(found), test)
        if len(learn[0]) > n:  # the other preset's meshes of the same training images
            train = np.concatenate([train, n + np.setdiff1d(np.flatnonzero(~np.isnan(other[0][:, 0, 0])), test)])
        model = fit(learn[0], learn[1], learn[2], train)
        frames.append(model[0])
        net = train_networks(learn[0], learn[1], learn[3], train[learn[2][train]], model) if args.network else None
        scored = [(cv, (rot, meshed, landmarks))] + ([(cv_other, other)] if other is not None else [])
        for angles, (r, m, lm) in scored:
            rows = test[~np.isnan(r[test, 0, 0])]
            angles[rows] = predict_all(true, r, m, rows, model)
            if net is not None:
                angles[rows[m[rows]]] = predict_network(r, lm, rows[m[rows]], model, net)
    return cv, cv_other, frames


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset")
    ap.add_argument("--folds", type=int, default=10)
    ap.add_argument("--write", action="store_true", help=f"write tiltwatch/models/{CORRECTION_FILE}")
    ap.add_argument("--scatter", type=Path, help="cross-validated predicted vs true, PNG")
    ap.add_argument(
        "--network",
        action="store_true",
        help="also fit (and with --write, ship) the PoseNetwork "
        "step after the polynomials, cross-validated the same way (needs torch)",
    )
    ap.add_argument(
        "--keypoint-fix",
        action="store_true",
        help="also fit one for keypoint poses (faces without a "
        "mesh); measured: cross-validated mean MAE 6.07 -> 5.99, but fitted on 33 profile faces it "
        "bends the coarse pose of an in-plane turn, so it is not shipped",
    )
    ap.add_argument("--seeds", type=int, default=NETWORK["seeds"], help="networks averaged (side by side in one layer)")
    ap.add_argument(
        "--rotation-seeds",
        type=int,
        default=ROTATION_NETWORK["seeds"],
        help="the same for the second network, which outputs the rotation itself; 0: none",
    )
    ap.add_argument(
        "--also",
        metavar="PRESET",
        help="also score another preset's meshes (e.g. exact) by the same folds' fits: how the "
        "fitted steps read one mesh pass from the detector's box (a camera's first sight of a face)",
    )
    ap.add_argument(
        "--train-both",
        action="store_true",
        help="with --also: fit on both presets' meshes (each image twice), so that one fit reads both well",
    )
    ap.add_argument("--cv-out", type=Path, help="write the true and cross-validated angles, .npz (for analysis)")
    ap.add_argument("--cache", type=Path, help="reuse (or write) the solver's poses and mesh points, .npz")
    ap.add_argument(
        "--preset",
        default="photo",
        help="the analyzer's preset whose meshes are fitted: photo (two passes, mirror, retry: what "
        "photos and eval-pose run) or exact (one pass from the detector's box)",
    )
    args = ap.parse_args()
    if args.train_both and not args.also:
        ap.error("--train-both needs --also PRESET: the other meshes to fit on")
    return args


def main() -> None:
    args = parse_args()
    if ":" not in args.dataset:
        args.dataset = f"aflw2000:{args.dataset}"
    NETWORK["seeds"] = args.seeds
    ROTATION_NETWORK["seeds"] = args.rotation_seeds
    global KEYPOINTS
    KEYPOINTS = args.keypoint_fix
    true, rot, meshed, landmarks = raw_poses(args.dataset, args.cache, args.preset)
    found = ~np.isnan(rot[:, 0, 0])
    n = len(true)
    before = np.full((n, 3), np.nan)
    before[found] = dataset_angles_from_rotation(rot[found])
    print("the solver alone:\n" + format_report(pose_report(true, before)) + "\n" + slopes(true, before))

    other = None
    if args.also:
        other_cache = args.cache.with_suffix(f".{args.also}.npz") if args.cache else None
        other = raw_poses(args.dataset, other_cache, args.also)[1:]
    # what the fits learn from: this preset's meshes, and with --train-both the other's beside them
    learn = (true, rot, meshed, landmarks)
    if other is not None and args.train_both:
        learn = (np.concatenate([true, true]),) + tuple(np.concatenate([a, b]) for a, b in zip(learn[1:], other))
    cv, cv_other, frames = cross_validate(args, (true, rot, meshed, landmarks), other, learn)
    cv_report = pose_report(true, cv)
    what = "polynomials and network" if args.network else "polynomials"
    print(
        f"cross-validated, {what} ({args.folds} folds by image; frame pitch per fold {min(frames)}..{max(frames)}):\n"
        + format_report(cv_report)
        + "\n"
        + slopes(true, cv)
    )
    if other is not None:
        print(
            f"the same folds' fits on the {args.also} preset's meshes:\n" + format_report(pose_report(true, cv_other))
        )
    if args.cv_out:
        np.savez_compressed(args.cv_out, true=true, cv=cv, meshed=meshed)
    if args.scatter:
        save_scatter(true, cv, args.scatter, f"{args.folds}-fold cross-validated, {int(found.sum())}/{n} faces")

    rows = np.flatnonzero(~np.isnan(learn[1][:, 0, 0]))
    frame, mesh_fix, kp_fix = fit(learn[0], learn[1], learn[2], rows)
    print(f"fitted on all: frame pitch {frame}")
    network = None
    if args.network:
        network = train_networks(learn[0], learn[1], learn[3], rows[learn[2][rows]], (frame, mesh_fix, kp_fix))
    if args.write:
        write_models(args, n, found, meshed, (frame, mesh_fix, kp_fix), cv_report, network)


def write_models(args, n, found, meshed, model, cv_report, networks) -> None:
    """The correction file, and the networks' files (removed when none was fitted)."""
    frame, mesh_fix, kp_fix = model
    out = {
        "about": "tiltwatch head-pose correction (see tiltwatch/vision/pose.py, docs/head_pose.md): terms odd "
        "or even in yaw of the ZYX yaw and pitch, degrees / 90",
        "fitted_on": f"{args.dataset.partition(':')[0]}: {n} protocol images, {int(found.sum())} faces found "
        f"({int(meshed.sum())} with a mesh)",
        "aflw2000_frame_pitch_deg": frame,
        "mesh": mesh_fix.to_dict(),
        "keypoints": kp_fix.to_dict() if kp_fix is not None else None,
        "cross_validated": {
            "folds": args.folds,
            "faces_found": cv_report["faces_found"],
            "mae": cv_report["mae"],
            "by_yaw": {k: v["mae"] for k, v in cv_report["by_yaw"].items()},
        },
        "network": NETWORK if networks is not None else None,
        "rotation_network": ROTATION_NETWORK if networks is not None and networks[1] is not None else None,
    }
    path = Path(__file__).resolve().parents[1] / "tiltwatch" / "models" / CORRECTION_FILE
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}")
    for name, net in zip((NETWORK_FILE, ROTATION_FILE), networks or (None, None)):
        net_path = path.with_name(name)
        if net is not None:
            net.save(net_path)
            print(f"wrote {net_path} ({net_path.stat().st_size // 1024} KB)")
        elif net_path.exists():
            net_path.unlink()
            print(f"removed {net_path}")


if __name__ == "__main__":
    main()
