"""How far the head pose from the detector's six keypoints lands from the mesh's pose.

Faces without a mesh (the mesh failed, or ``mesh: false``) get a coarser pose by solving the
detector's keypoints (eyes, nose tip, mouth, ears) against the same six points of the 3D head
model. This runs the pipeline with a detection every frame and prints, per clip, the median
and 90th percentile of |keypoint pose - mesh pose| for yaw, pitch and roll over every face
that has both.

Usage: python scripts/keypoint_pose_agreement.py CLIP [CLIP ...] [--frames N]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from tiltwatch import Analyzer
from tiltwatch.sources import open_source


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("clips", nargs="+")
    ap.add_argument("--frames", type=int, default=150, help="frames read from each clip")
    args = ap.parse_args()
    analyzer = Analyzer(detect_every=1, emotion=False, track=False)  # detector keypoints on every frame
    for clip in args.clips:
        diffs = []
        for i, frame in enumerate(open_source(clip)):
            if i == args.frames:
                break
            for f in analyzer.analyze(frame.image).faces:
                if f.pose is not None and f.keypoints is not None and f.landmarks is not None:
                    coarse = analyzer.pose.estimate_from_keypoints(f.keypoints, frame.image.shape)
                    diffs.append(np.abs(coarse.as_array() - f.pose.as_array()))
        d = np.array(diffs)
        med, p90 = np.median(d, 0), np.percentile(d, 90, axis=0)
        print(
            f"{Path(clip).name}: {len(d)} faces; |keypoint pose - mesh pose| yaw / pitch / roll: median "
            f"{med[0]:.1f} / {med[1]:.1f} / {med[2]:.1f} deg, "
            f"90th percentile {p90[0]:.1f} / {p90[1]:.1f} / {p90[2]:.1f}"
        )


if __name__ == "__main__":
    main()
