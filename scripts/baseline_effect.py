"""The per-person baseline's effect on tilt alerts: each clip through the real pipeline, alerts without and with it.

For each clip, every frame through the analyzer (default settings) once, and its results into
analytics sinks and stores (one camera, no zones) under each tilt rule given, with the baseline
off and on; prints per clip and rule the tilt alerts raised without and with the baseline
(track: start-end seconds, emotion, peak), and per track the learned baseline (from how many
confident frames, its resting level of each tilt emotion), the visit's peak tilt score and its
peak deviation from the baseline.

``--set KEY=VALUE`` changes an analyzer setting (e.g. ``min_quality=0.6``: more faces abstain).
``--hold S`` shows the clip's first frame for S seconds before it plays (a patron sitting at
rest before the clip's expression changes), so that a track learns its baseline before the
change.

Usage::

    python scripts/baseline_effect.py VIDEOS/*.mp4 VIDEOS/*.mov [--rule 0.5:3 --rule 0.3:1] [--hold 5] [--set KEY=VALUE]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's tiltwatch


def frames(source, hold: float):
    """The source's frames, after ``hold`` seconds of its first frame (timestamps shifted)."""
    from dataclasses import replace

    first = None
    for frame in source:
        if first is None:
            first = frame
            for i in range(int(round(hold * source.fps))):
                yield replace(frame, index=i, timestamp=i / source.fps)
            shift = int(round(hold * source.fps))
        yield replace(frame, index=frame.index + shift, timestamp=frame.timestamp + hold)


def site_for(threshold: float, seconds: float, enabled: bool):
    from tiltwatch.analytics.site import SiteConfig

    release = round(max(0.0, threshold - 0.15), 3)
    tilt = {"threshold": threshold, "release": release, "seconds": seconds}
    data = {"cameras": [{"id": "clip"}], "alerts": {"tilt": tilt}, "baseline": {"enabled": enabled}}
    return SiteConfig.model_validate(data)


def analyse(clip: str, rules: list, hold: float, max_frames: int | None, folder: Path, settings: dict) -> dict:
    """Run the clip once; every (rule, baseline off/on) gets its own sink and store. Returns their records
    and how many faces abstained."""
    from tiltwatch.analytics.sink import AnalyticsSink
    from tiltwatch.config import AnalyzerConfig
    from tiltwatch.pipeline.build import build_analyzer
    from tiltwatch.sources import open_source
    from tiltwatch.store import Store

    source = open_source(clip)
    analyzer = build_analyzer(AnalyzerConfig(**settings), fps=source.fps)
    sinks = {}
    for rule in rules:
        for enabled in (False, True):
            store = Store(f"sqlite:///{folder / f'{len(sinks)}.db'}")
            sinks[rule, enabled] = AnalyticsSink(store, site_for(*rule, enabled), "clip", clip, start_time=0.0)
    abstained = 0
    for i, frame in enumerate(frames(source, hold)):
        if max_frames is not None and i >= max_frames:
            break
        result = analyzer.analyze(frame.image, frame.timestamp, frame.index)
        abstained += sum(f.abstained for f in result.faces)
        for sink in sinks.values():
            sink.write(frame, result)
    source.close()
    analyzer.close()
    out = {"abstained": abstained}
    for key, sink in sinks.items():
        sink.close()
        out[key] = (sink.store.alerts(kind="tilt"), sink.store.visits())
        sink.store.close()
    return out


def alert_line(alerts) -> str:
    if not alerts:
        return "none"
    return ", ".join(
        f"#{a.track_id} {a.start:.1f}-{a.end:.1f}s {a.evidence.get('emotion')} {a.value:.2f}"
        for a in sorted(alerts, key=lambda a: (a.start, a.track_id))
    )


def track_lines(visits, emotions: list[str]) -> list[str]:
    from tiltwatch.emotions import EMOTIONS

    lines = []
    for v in sorted(visits, key=lambda v: v.track_id):
        if v.baseline is None:
            base = "no baseline (too few confident frames, or not steady)"
        else:
            levels = " ".join(f"{e} {v.baseline[EMOTIONS.index(e)]:.2f}" for e in emotions)
            base = f"baseline from {v.baseline_frames} frames: {levels}"
        dev = "-" if v.peak_deviation is None else f"{v.peak_deviation:+.2f}"
        peaks = f"peak tilt {v.peak_tilt:.2f}, deviation {dev}"
        lines.append(f"    track {v.track_id:>2} {v.end - v.start:5.1f}s  {base}; {peaks}")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clips", nargs="+")
    ap.add_argument(
        "--rule",
        action="append",
        default=[],
        help="a tilt rule THRESHOLD:SECONDS (release 0.15 below); default 0.5:3 (the site default) and 0.3:1",
    )
    ap.add_argument("--hold", type=float, default=0.0, help="seconds of the clip's first frame before it plays")
    ap.add_argument("--frames", type=int, default=None, help="at most this many frames a clip")
    ap.add_argument("--set", action="append", default=[], help="an analyzer setting, KEY=VALUE (YAML value)")
    args = ap.parse_args()
    import yaml

    settings = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    rules = [tuple(float(x) for x in r.split(":")) for r in args.rule] or [(0.5, 3.0), (0.3, 1.0)]
    from tiltwatch.analytics.site import TiltRule

    emotions = TiltRule().emotions
    totals = {rule: [0, 0] for rule in rules}
    for clip in args.clips:
        with tempfile.TemporaryDirectory() as folder:
            out = analyse(clip, rules, args.hold, args.frames, Path(folder), settings)
        held = f", first frame held {args.hold:g} s" if args.hold else ""
        print(f"{Path(clip).name} ({out['abstained']} faces abstained{held})")
        for rule in rules:
            without, with_baseline = out[rule, False][0], out[rule, True][0]
            totals[rule][0] += len(without)
            totals[rule][1] += len(with_baseline)
            print(f"  tilt >= {rule[0]:g} for {rule[1]:g} s: without baseline {len(without)}: {alert_line(without)}")
            print(f"  {'':19} with baseline    {len(with_baseline)}: {alert_line(with_baseline)}")
        print("\n".join(track_lines(out[rules[0], True][1], emotions)))
    for rule, (a, b) in totals.items():
        print(f"all clips, tilt >= {rule[0]:g} for {rule[1]:g} s: {a} alerts without the baseline, {b} with it")


if __name__ == "__main__":
    main()
