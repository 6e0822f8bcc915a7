"""Soak benchmark: one live stream for N minutes, as the server runs it; memory must stay flat.

A looping source (the built-in sample, or a clip) runs through the server's own live path
(:class:`tiltwatch.server.streams.StreamManager`: reader thread, newest frame only, Analyzer,
with a site's visits and alerts into an SQLite store when ``--site`` is given). Every
``--every`` seconds it records the process's resident memory and the memory that Python
code of tiltwatch holds (tracemalloc); after ``--warmup`` minutes it fits a line to both and
prints the growth per hour, with frames analysed and dropped. Prints one JSON object.

Usage::

    python scripts/soak.py --minutes 10                        # the sample, looping
    python scripts/soak.py --minutes 10 --source clip.mp4 --site site.yaml
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's tiltwatch


def rss_mb() -> float:
    """Resident memory now (Linux), else the peak so far."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def tiltwatch_mb() -> float:
    """Memory allocated by tiltwatch's own Python code and still held."""
    snap = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(True, "*tiltwatch*")])
    return sum(s.size for s in snap.statistics("filename")) / 1e6


def slope_per_hour(t: list[float], y: list[float]) -> float:
    return float(np.polyfit(np.asarray(t) / 3600, np.asarray(y), 1)[0]) if len(t) >= 3 else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=1.0, help="minutes left out of the fit")
    ap.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    ap.add_argument("--source", default="sample")
    ap.add_argument("--site", type=Path, default=None)
    args = ap.parse_args()

    from tiltwatch.analytics.site import load_site
    from tiltwatch.machine import describe_machine, machine_line
    from tiltwatch.server.settings import StreamSpec
    from tiltwatch.server.streams import StreamManager
    from tiltwatch.store import Store

    tracemalloc.start()
    with tempfile.TemporaryDirectory() as tmp:
        site = load_site(args.site) if args.site else None
        store = Store(f"sqlite:///{tmp}/soak.db") if site else None
        manager = StreamManager(store, site, publish=lambda message: None)
        manager.add(StreamSpec(id="soak", source=args.source, loop=True))
        stream = manager.start("soak")
        t0, samples = time.monotonic(), []
        try:
            while time.monotonic() - t0 < args.minutes * 60:
                time.sleep(args.every)
                samples.append((time.monotonic() - t0, rss_mb(), tiltwatch_mb(), stream.frames, stream.dropped))
                if stream.current_state() == "failed":
                    raise SystemExit(f"the stream failed: {stream.last_error}")
        finally:
            manager.stop_all()
            if store is not None:
                store.close()
    kept = [s for s in samples if s[0] >= args.warmup * 60]
    t, rss, own = [s[0] for s in kept], [s[1] for s in kept], [s[2] for s in kept]
    last = samples[-1]
    print(
        json.dumps(
            {
                "machine": machine_line(describe_machine()),
                "source": args.source,
                "site": bool(site),
                "minutes": args.minutes,
                "frames": last[3],
                "dropped_frames": last[4],
                "fps": round(last[3] / last[0], 1) if last[0] else None,
                "rss_mb_after_warmup": [round(rss[0], 1), round(rss[-1], 1)] if rss else None,
                "rss_growth_mb_per_hour": round(slope_per_hour(t, rss), 2),
                "tiltwatch_python_mb_after_warmup": [round(own[0], 3), round(own[-1], 3)] if own else None,
                "tiltwatch_python_growth_mb_per_hour": round(slope_per_hour(t, own), 3),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
