"""Head-pose jitter on video: the median |change| of yaw and pitch from one frame to the next, per track.

For each clip, every frame through the analyzer (default settings, the fast preset), and for
each track the frame-to-frame change of its raw pose and of its smoothed pose; prints the
median |dyaw| and |dpitch| (degrees per frame) over all tracks, raw and smoothed, and the lag
of the smoothed yaw behind the raw one (the shift, in frames, that best lines them up).

Usage::

    python scripts/pose_jitter.py DATA/videos/pyfeat__single_face.mp4 DATA/videos/fer__woman2.mp4 [--frames 300]
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's tiltwatch


def lag_frames(raw: np.ndarray, smooth: np.ndarray, most: int = 30) -> int:
    """The delay d (frames) that minimises |smooth[t] - raw[t - d]|."""
    errors = [np.mean(np.abs(smooth[d:] - raw[: len(raw) - d])) for d in range(min(most, len(raw) - 2) + 1)]
    return int(np.argmin(errors))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clips", nargs="+")
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--set", action="append", default=[], help="an analyzer setting, KEY=VALUE (YAML value)")
    args = ap.parse_args()
    import yaml

    from tiltwatch.config import AnalyzerConfig
    from tiltwatch.pipeline.build import build_analyzer
    from tiltwatch.sources import open_source

    settings = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}

    print(
        f"{'clip':<40} {'raw |dyaw|':>10} {'raw |dpitch|':>12} {'smooth |dyaw|':>13} {'smooth |dpitch|':>15} {'lag':>4}"
    )
    for clip in args.clips:
        src = open_source(clip)
        an = build_analyzer(AnalyzerConfig.preset("fast", emotion=False, **settings), fps=src.fps)
        series: dict[int, list] = defaultdict(list)
        for i, frame in enumerate(src):
            if i >= args.frames:
                break
            for f in an.analyze(frame.image, frame.timestamp, frame.index).faces:
                if f.track_id is not None and f.pose is not None and f.smoothed.pose is not None:
                    series[f.track_id].append((f.pose.yaw, f.pose.pitch, f.smoothed.pose.yaw, f.smoothed.pose.pitch))
        src.close()
        an.close()
        steps, lags = [], []
        for rows in series.values():
            a = np.asarray(rows)
            if len(a) >= 10:
                steps.append(np.abs(np.diff(a, axis=0)))
                lags.append(lag_frames(a[:, 0], a[:, 2]))
        if not steps:
            print(f"{Path(clip).name[:40]:<40} no track long enough")
            continue
        med = np.median(np.concatenate(steps), axis=0)
        print(
            f"{Path(clip).name[:40]:<40} {med[0]:>10.2f} {med[1]:>12.2f} {med[2]:>13.2f} {med[3]:>15.2f} "
            f"{int(np.median(lags)):>4}"
        )


if __name__ == "__main__":
    main()
