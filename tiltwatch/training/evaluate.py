"""``tiltwatch eval``: accuracy, balanced accuracy, per-class precision / recall / F1, confusion matrix.

Datasets as ``KIND:PATH``, any kind of :func:`tiltwatch.training.datasets.load_dataset`, on
its test split: ``ferplus:ROOT`` (majority labels), ``fer2013:FILE.csv`` (PrivateTest),
``fer2013-folders:ROOT`` (the PrivateTest files of Kaggle's ``test/``), ``rafdb:ROOT``,
``affectnet:ROOT`` (``val/``), ``folder:PATH`` (every image; ``--filter`` keeps file names
containing a string). ``KIND-valid:PATH`` reads the valid split instead (``ferplus-valid:``).
A dataset with fewer classes than the model (FER2013: no contempt) is scored over its own
classes only. ``head="auto"`` reads the model's head trained on the dataset's own labelling
where it has one (``fer2013_logits`` for the FER2013 kinds), its default head otherwise.

Usage::

    tiltwatch eval --dataset ferplus:data/ferplus --json m.json --tta
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..emotions import DEFAULT_MODEL, EMOTIONS
from ..errors import InputError
from ..vision.emotion import EmotionClassifier, ModelCard


@dataclass
class EvalSet:
    name: str
    images: object  # (N, H, W) uint8 crops, or a list of whole photos for --crop detect
    labels: np.ndarray  # indices into EMOTIONS
    classes: tuple[str, ...]


def load_eval_set(spec: str, name_filter: str | None = None, whole_photos: bool = False) -> EvalSet:
    """A dataset's test split (``KIND-valid:PATH``: its valid split) with the classes it holds.

    Every kind of :func:`tiltwatch.training.datasets.load_dataset` is accepted; ``folder:``
    reads every image. ``whole_photos`` keeps image files at their own size and colour (for
    ``--crop detect``); FER+ and the FER2013 CSV have only crops, which are used as they are.

    Usage::

        ds = load_eval_set("fer2013-folders:data/fer2013")   # FER2013 PrivateTest
    """
    from .datasets import DATASET_KINDS, dataset_files, load_dataset, parse_spec
    from .folders import present_classes, read_images

    full, split = _eval_split(spec)
    kind = parse_spec(full)[0]  # a clear error for a bad spec before any image is read
    if whole_photos and DATASET_KINDS[kind].files is not None:
        paths, labels = dataset_files(full, split)
        keep = np.array([not name_filter or name_filter in p.name for p in paths], bool)
        paths, labels = [p for p, k in zip(paths, keep) if k], labels[keep]
        _check_not_empty(labels, spec, name_filter)
        images = read_images(paths, size=None, grey=False)
    else:
        fs = load_dataset(full, split)
        if name_filter:
            fs = fs.subset(np.array([name_filter in Path(n).name for n in fs.names], bool))
        _check_not_empty(fs.labels, spec, name_filter)
        images, labels = fs.images, fs.labels
    # FER+ is scored over all 8 classes as before; other datasets over the classes they hold
    classes = EMOTIONS if kind == "ferplus" else present_classes(labels)
    return EvalSet(spec + (f" ({name_filter})" if name_filter else ""), images, labels, classes)


def _eval_split(spec: str) -> tuple[str, str]:
    """``ferplus-valid:ROOT`` -> (``ferplus:ROOT``, "valid"); any other spec -> (spec, "test")."""
    kind, sep, path = spec.partition(":")
    if sep and kind.endswith("-valid"):
        return f"{kind.removesuffix('-valid')}:{path}", "valid"
    return spec, "test"


def _check_not_empty(labels: np.ndarray, spec: str, name_filter: str | None) -> None:
    if not len(labels):
        raise InputError(f"{spec}: no images" + (f" whose name contains {name_filter!r}" if name_filter else ""))


def detect_and_align(images: list[np.ndarray], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Whole photos through the live pipeline's detection, mesh and alignment: (crops, found mask)."""
    import cv2

    from ..vision.align import align_faces
    from ..vision.detector import FaceDetector
    from ..vision.mesh import FaceMesher

    # full range for photos of people; short range as a fallback for close-ups it misses
    detectors, mesher = (FaceDetector(), FaceDetector(full_range=False)), FaceMesher()
    crops, found = [], []
    for img in images:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) if img.ndim == 2 else img
        if max(img.shape[:2]) < 160:  # tiny crops (FER's 48x48): give the detector room to see a face
            f = 192 / max(img.shape[:2])
            img = cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_CUBIC)
            pad = img.shape[0] // 4  # and a margin, as a face in a photo has
            img = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        faces = detectors[0].detect(img) or detectors[1].detect(img)
        if not faces:
            crops.append(np.zeros((size, size, 3), np.uint8))
            found.append(False)
            continue
        best = max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
        mesher.refine(img, [best])
        crops.append(align_faces(img, [best], size)[0])
        found.append(True)
    return np.stack(crops), np.array(found)


def metrics(labels: np.ndarray, pred: np.ndarray, classes: tuple[str, ...]) -> dict:
    idx = [EMOTIONS.index(c) for c in classes]
    per_class = {}
    for c, i in zip(classes, idx):
        tp = int(((pred == i) & (labels == i)).sum())
        support, predicted = int((labels == i).sum()), int((pred == i).sum())
        p = tp / predicted if predicted else 0.0
        r = tp / support if support else 0.0
        per_class[c] = {
            "precision": round(p, 4),
            "recall": round(r, 4),
            "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0,
            "support": support,
        }
    cm = np.zeros((len(idx), len(idx)), int)
    pos = {i: k for k, i in enumerate(idx)}
    for t, p in zip(labels, pred):
        cm[pos[int(t)], pos[int(p)]] += 1
    acc_ci, bal_ci = bootstrap_ci(labels, pred)
    return {
        "n": int(len(labels)),
        "accuracy": round(float((labels == pred).mean()), 4),
        "balanced_accuracy": round(float(np.mean([v["recall"] for v in per_class.values()])), 4),
        "accuracy_ci95": acc_ci,
        "balanced_accuracy_ci95": bal_ci,
        "per_class": per_class,
        "confusion": cm.tolist(),
        "classes": list(classes),
    }


def bootstrap_ci(labels: np.ndarray, pred: np.ndarray, resamples: int = 1000) -> tuple[list, list]:
    """95% percentile-bootstrap intervals of accuracy and balanced accuracy (images resampled
    with replacement, fixed seed): how far the same model could score on another draw of
    faces like these. FER+ test's 3,545 faces give about +-1.2 points."""
    labels, pred = np.asarray(labels), np.asarray(pred)
    present = np.unique(labels)
    rng = np.random.default_rng(0)
    accs, bals = [], []
    for _ in range(resamples):
        i = rng.integers(0, len(labels), len(labels))
        y, right = labels[i], labels[i] == pred[i]
        accs.append(right.mean())
        support = np.bincount(y, minlength=present.max() + 1)[present]
        hits = np.bincount(y[right], minlength=present.max() + 1)[present]
        bals.append(np.mean(hits[support > 0] / support[support > 0]))  # a rare class may draw no face
    return (
        [round(float(q), 4) for q in np.percentile(accs, [2.5, 97.5])],
        [round(float(q), 4) for q in np.percentile(bals, [2.5, 97.5])],
    )


#: dataset kinds whose labels follow another convention than FER+'s votes -> the head trained on it
LABEL_HEADS = {"fer2013": "fer2013_logits", "fer2013-folders": "fer2013_logits"}


def choose_head(spec: str, model: str, head: str = "auto") -> str | None:
    """The model output to score ``spec`` with: ``head`` itself, or for "auto" the head trained on the
    dataset's labelling if the model has one, else None (the model's default head)."""
    from ..vision.emotion import resolve_model

    if head != "auto":
        return head
    kind = _eval_split(spec)[0].partition(":")[0]
    wanted = LABEL_HEADS.get(kind)
    return wanted if wanted in resolve_model(model)[1].heads else None


def predict_probs(clf: EmotionClassifier, crops: np.ndarray, classes: tuple[str, ...], tta: bool) -> np.ndarray:
    """(N, 8) probabilities over EMOTIONS, zero outside the dataset's ``classes`` and renormalised
    over them (a dataset without contempt is scored as if the model had none)."""
    probs = np.concatenate([clf.predict(crops[i : i + 1024], tta=tta) for i in range(0, len(crops), 1024)])
    keep = [EMOTIONS.index(c) for c in classes]
    masked = np.zeros_like(probs)
    masked[:, keep] = probs[:, keep]
    return masked / np.maximum(masked.sum(1, keepdims=True), 1e-12)


def predict(clf: EmotionClassifier, crops: np.ndarray, classes: tuple[str, ...], tta: bool) -> np.ndarray:
    return predict_probs(clf, crops, classes, tta).argmax(1)


def evaluate(
    spec: str,
    model: str = DEFAULT_MODEL,
    tta: bool = False,
    crop: str = "none",
    name_filter: str | None = None,
    head: str = "auto",
    degradations: list[str] | None = None,
) -> dict:
    """The metrics of ``model`` on ``spec``: accuracy, per class, calibration (``calibration``;
    its ``bins`` draw the reliability diagram) and, for ``degradations``, the same on degraded
    copies (``degraded``) and accuracy by quality score over them all (``by_quality``)."""
    clf = EmotionClassifier.load(model, head=choose_head(spec, model, head))
    ds = load_eval_set(spec, name_filter, whole_photos=crop == "detect")
    if degradations and crop == "detect":
        raise InputError("--degrade works on face crops (--crop none), not on whole photos")
    crops, found = ds.images, np.ones(len(ds.labels), bool)
    if crop == "detect":
        crops, found = detect_and_align(ds.images, clf.card.input_size)
    out = {"dataset": ds.name, "model": clf.card.name, "head": clf.head, "crop": crop, "tta": tta}
    probs = predict_probs(clf, crops, ds.classes, tta)
    out.update(metrics(ds.labels, probs.argmax(1), ds.classes))
    out["calibration"] = calibration_metrics(clf, crops, ds, tta, probs)
    if crop == "detect":
        out["faces_found"] = round(float(found.mean()), 4)
    if degradations:
        out.update(degraded_metrics(clf, np.asarray(crops), ds, tta, probs, degradations))
    return out


def calibration_metrics(clf: EmotionClassifier, crops: np.ndarray, ds: EvalSet, tta: bool, probs: np.ndarray) -> dict:
    """ECE and reliability bins of ``probs`` (the model as shipped: with its card's temperature),
    and the ECE the same model has without it."""
    from .calibration import expected_calibration_error, reliability_bins

    out = {"temperature": clf.temperature, "ece": expected_calibration_error(probs, ds.labels)}
    if clf.temperature != 1.0:
        shipped, clf.temperature = clf.temperature, 1.0
        try:
            raw = predict_probs(clf, crops, ds.classes, tta)
        finally:
            clf.temperature = shipped
        out["ece_uncalibrated"] = expected_calibration_error(raw, ds.labels)
    out["mean_confidence"] = round(float(probs.max(1).mean()), 4)
    out["bins"] = reliability_bins(probs, ds.labels)
    return out


#: quality-score bins of ``by_quality`` (the analyzer's default ``min_quality`` is 0.3)
QUALITY_EDGES = (0.0, 0.1, 0.3, 0.5, 0.7, 1.0)


def degraded_metrics(
    clf: EmotionClassifier, crops: np.ndarray, ds: EvalSet, tta: bool, probs: np.ndarray, names: list[str]
) -> dict:
    """Accuracy, balanced accuracy and ECE on each degraded copy of the set; then every face of
    the clean and degraded copies together, binned by its quality score (size, blur, exposure,
    confidence: :func:`tiltwatch.vision.quality.crop_quality`)."""
    from .calibration import expected_calibration_error
    from .degrade import degrade, face_px

    size = crops.shape[1]
    degraded, quality, right = {}, [_qualities(crops, face_px(None, size), probs)], [probs.argmax(1) == ds.labels]
    for name in names:
        worse = degrade(crops, name)
        p = predict_probs(clf, worse, ds.classes, tta)
        m = metrics(ds.labels, p.argmax(1), ds.classes)
        degraded[name] = {
            "accuracy": m["accuracy"],
            "balanced_accuracy": m["balanced_accuracy"],
            "ece": expected_calibration_error(p, ds.labels),
            "per_class_recall": {c: v["recall"] for c, v in m["per_class"].items()},
        }
        quality.append(_qualities(worse, face_px(name, size), p))
        right.append(p.argmax(1) == ds.labels)
    q, r = np.concatenate(quality), np.concatenate(right)
    bins = []
    for lo, hi in zip(QUALITY_EDGES[:-1], QUALITY_EDGES[1:]):
        m = (q >= lo) & ((q < hi) | (hi == QUALITY_EDGES[-1]))
        bins.append(
            {"lo": lo, "hi": hi, "count": int(m.sum()), "accuracy": round(float(r[m].mean()), 4) if m.any() else None}
        )
    return {"degraded": degraded, "by_quality": {"faces": int(len(q)), "sets": ["clean", *names], "bins": bins}}


def _qualities(crops: np.ndarray, px: int, probs: np.ndarray) -> np.ndarray:
    import cv2

    from ..vision.quality import crop_quality

    top = probs.max(1)
    grey = [cv2.cvtColor(c, cv2.COLOR_BGR2GRAY) if c.ndim == 3 else c for c in crops]
    return np.array([crop_quality(g, px, float(t)) for g, t in zip(grey, top)])


def path_agreement(spec: str, model: str = DEFAULT_MODEL, n: int = 500) -> dict:
    """The same face crops through both paths: straight into the model (as in training) and
    through the live pipeline's detection, mesh and alignment. How often do the labels agree?"""
    clf = EmotionClassifier.load(model)
    ds = load_eval_set(spec)
    idx = np.random.default_rng(0).choice(len(ds.labels), min(n, len(ds.labels)), replace=False)
    crops = np.asarray(ds.images)[idx]
    labels = ds.labels[idx]
    direct = predict(clf, crops, ds.classes, tta=False)
    aligned, found = detect_and_align(list(crops), clf.card.input_size)
    live = predict(clf, aligned, ds.classes, tta=False)
    f = found
    if not f.any():
        raise InputError(f"{spec}: the live path found no face in {len(idx)} images; nothing to compare")
    return {
        "dataset": spec,
        "model": clf.card.name,
        "images": int(len(idx)),
        "faces_found": round(float(f.mean()), 4),
        "label_agreement": round(float((direct[f] == live[f]).mean()), 4),
        "accuracy_direct": round(float((direct[f] == labels[f]).mean()), 4),
        "accuracy_live_path": round(float((live[f] == labels[f]).mean()), 4),
    }


def print_table(m: dict) -> str:
    lines = [
        f"{m['dataset']}  model={m['model']}  head={m.get('head', 'logits')}  crop={m['crop']}  "
        f"tta={m['tta']}  n={m['n']}",
        f"accuracy {m['accuracy']:.4f} (95% CI {_ci(m, 'accuracy_ci95')})   balanced accuracy "
        f"{m['balanced_accuracy']:.4f} (95% CI {_ci(m, 'balanced_accuracy_ci95')})",
    ]
    if cal := m.get("calibration"):
        raw = f", {cal['ece_uncalibrated']:.4f} without it" if "ece_uncalibrated" in cal else ""
        lines.append(f"expected calibration error {cal['ece']:.4f} (temperature {cal['temperature']:g}{raw})")
    lines += ["", f"{'class':<10} {'precision':>9} {'recall':>7} {'f1':>7} {'support':>8}"]
    for c, v in m["per_class"].items():
        lines.append(f"{c:<10} {v['precision']:>9.4f} {v['recall']:>7.4f} {v['f1']:>7.4f} {v['support']:>8}")
    if m.get("degraded"):
        lines += ["", f"{'copy':<10} {'accuracy':>9} {'balanced':>9} {'ece':>7}"]
        lines.append(
            f"{'clean':<10} {m['accuracy']:>9.4f} {m['balanced_accuracy']:>9.4f} {m['calibration']['ece']:>7.4f}"
        )
        for name, d in m["degraded"].items():
            lines.append(f"{name:<10} {d['accuracy']:>9.4f} {d['balanced_accuracy']:>9.4f} {d['ece']:>7.4f}")
        lines += ["", f"{'quality':<10} {'faces':>7} {'accuracy':>9}   (clean and degraded copies together)"]
        for b in m["by_quality"]["bins"]:
            acc = f"{b['accuracy']:>9.4f}" if b["accuracy"] is not None else f"{'-':>9}"
            lines.append(f"{b['lo']:.1f} to {b['hi']:.1f} {b['count']:>7} {acc}")
    return "\n".join(lines)


def _ci(m: dict, key: str) -> str:
    lo, hi = m[key]
    return f"{lo:.4f} to {hi:.4f}"


def plot_confusion(m: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.array(m["confusion"], float)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(m["classes"])), m["classes"], rotation=45, ha="right")
    ax.set_yticks(range(len(m["classes"])), m["classes"])
    for i in range(len(cm)):
        for j in range(len(cm)):
            ax.text(
                j,
                i,
                f"{norm[i, j]:.2f}\n{int(cm[i, j])}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if norm[i, j] > 0.5 else "black",
            )
    ax.set(xlabel="predicted", ylabel="true", title=f"{m['model']} on {m['dataset']} (acc {m['accuracy']:.3f})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def record_in_card(m: dict, key: str, command: str, model: str = DEFAULT_MODEL) -> Path:
    """Store metrics (``evaluate``'s, or ``path_agreement``'s) in the model's card under ``key``, with
    the command that measured them."""
    from ..vision.emotion import resolve_model

    path = resolve_model(model)[0].with_suffix(".json")
    card = ModelCard.from_json(path)
    keep = (
        "dataset",
        "head",
        "crop",
        "tta",
        "n",
        "accuracy",
        "balanced_accuracy",
        "accuracy_ci95",
        "balanced_accuracy_ci95",
        "per_class",
        "calibration",
        "degraded",
        "by_quality",
    )
    entry = {k: m[k] for k in keep if k in m} if "per_class" in m else dict(m)
    if "calibration" in entry:  # the reliability bins are for the diagram, not the card
        entry["calibration"] = {k: v for k, v in entry["calibration"].items() if k != "bins"}
    card.metrics = card.metrics | {key: entry | {"command": command}}  # (assigned: a card without metrics gains them)
    return card.write(path)
