"""``tiltwatch bench CLIP --cluster local:N``: the streams as camera actors on a local N-node Ray cluster.

Each stream is a camera actor (:mod:`.camera`) reading the clip whole and in order (``every_frame``),
spread over the nodes; all load their models and open the clip, then start together. A stream's
fps is its frames over the time from its first analysed frame to its last (model loading and
Ray's start-up excluded); the total is all frames over the longest of those spans.

When the machine has a core for each node, each node's camera processes are pinned to a core of
their own (node i on the i-th core: every thread, and what they start, by ``sched_setaffinity``),
so ``local:1`` against ``local:2`` is one one-core machine against two; the single-process
baseline is ``taskset -c 0 tiltwatch bench CLIP --streams 1``. With fewer cores than nodes the
nodes share them, and the figures say what Ray's actors cost and how they are placed, not what
more machines would bring.

Usage::

    tiltwatch bench clip.mp4 --cluster local:2 --streams 4 --frames 200 --no-encode --json bench.json
"""

from __future__ import annotations

import math
import os
import re
import time
import uuid

from ..errors import TiltwatchError


def parse_cluster(text: str) -> int:
    """The node count of ``local:N`` (the only cluster a benchmark starts by itself)."""
    m = re.fullmatch(r"local:(\d+)", text.strip())
    if not m or not 1 <= int(m.group(1)) <= 16:
        raise TiltwatchError(
            f"--cluster {text!r}: expected local:N, N from 1 to 16 nodes on this machine "
            "(a real cluster: see docs/how-to/cluster.md)"
        )
    return int(m.group(1))


def cluster_bench(
    clip: str,
    cluster: str,
    streams: list[int],
    frames: int,
    config: dict,
    encode: bool = True,
    preset: str = "superfast",
    timeout_s: float = 600.0,
    pin: bool | None = None,
) -> dict:
    """Start the local cluster, run each count of ``streams`` in turn on it, shut it down.

    ``pin``: each node's camera processes on a core of their own (node i on the i-th core this process
    may use), so that N nodes stand for N one-core machines; default: when there are cores enough."""
    from pathlib import Path

    from ..server.readers import check_source
    from .local import LocalCluster

    nodes = parse_cluster(cluster)
    if pin is None:
        pin = len(os.sched_getaffinity(0)) >= nodes
    if check_source(clip) == "file":
        clip = str(Path(clip).resolve())  # (the actors' working folder is not ours)
    per_node = max(1, math.ceil(max(streams, default=1) / nodes))  # one logical CPU a stream
    local = LocalCluster(nodes=nodes, cpus_per_node=per_node)
    try:
        runs = [_run(local, clip, n, frames, config, encode, preset, timeout_s, pin) for n in streams]
    finally:
        local.shutdown()
    return {
        "cluster": cluster,
        "nodes": nodes,
        "pinned": pin,
        "cluster_start_s": round(local.started_s, 1),
        "runs": runs,
        "streams": [dict(s, concurrent=r["streams_count"]) for r in runs for s in r["streams"]],
    }


def _run(local, clip: str, n: int, frames: int, config: dict, encode: bool, preset: str, timeout_s: float, pin: bool):
    import ray

    from .camera import CameraSpec, remove_camera, start_camera

    tag = uuid.uuid4().hex[:6]
    specs = [
        CameraSpec(
            id=f"bench-{tag}-{i}",
            source=clip,
            config=config,
            every_frame=True,
            max_frames=frames,
            encode=encode,
            video_preset=preset,
            hold=True,
        )
        for i in range(n)
    ]
    t0 = time.perf_counter()
    actors = [start_camera(s, spread=True) for s in specs]
    try:
        ready = _wait(actors, lambda s: s["state"] != "starting", timeout_s)
        failed = [s for s in ready if s["state"] == "failed"]
        if failed:
            raise TiltwatchError(f"a benchmark camera failed: {failed[0]['last_error']}")
        load_s = time.perf_counter() - t0
        pinned = _pin(ready, local.node_ids) if pin else None
        ray.get([a.go.remote() for a in actors])
        done = _wait(actors, lambda s: s["state"] not in ("ready", "running"), timeout_s)
    finally:
        for s in specs:
            remove_camera(s.id)
    bad = [s for s in done if s["state"] != "finished"]
    if bad:
        raise TiltwatchError(f"a benchmark camera ended {bad[0]['state']}: {bad[0]['last_error']}")
    index = {node: i for i, node in enumerate(local.node_ids)}
    per = [
        {
            "stream": i,
            "node": s["node"],
            "node_index": index.get(s["node"]),
            "fps": s["fps_run"],
            "frames": s["frames"],
            "faces": s["faces"],
            "seconds": round(s["seconds"], 2),
        }
        for i, s in enumerate(done)
    ]
    wall = max(s["seconds"] for s in done)
    total = sum(s["frames"] for s in done)
    return {
        "clip": clip,
        "streams_count": n,
        "config": config,
        "encode": preset if encode else False,
        "frames_per_stream": frames,
        "start_s": round(load_s, 1),
        "fps_per_stream": round(sum(p["fps"] for p in per) / n, 1),
        "fps_total": round(total / wall, 1) if wall > 0 else 0.0,
        "faces_per_frame": round(sum(s["faces"] for s in done) / max(total, 1), 2),
        "cores": pinned,
        "streams": per,
    }


def _pin(states: list[dict], node_ids: list) -> dict[int, int]:
    """Each camera process (every thread of it: later ones and children inherit) on its node's core:
    node i on the i-th core this process may use. {node index: core}."""
    cores = sorted(os.sched_getaffinity(0))
    index = {node: i for i, node in enumerate(node_ids)}
    used: dict[int, int] = {}
    for s in states:
        i = index[s["node"]]
        used[i] = core = cores[i % len(cores)]
        for tid in os.listdir(f"/proc/{s['pid']}/task"):
            try:
                os.sched_setaffinity(int(tid), {core})
            except (ProcessLookupError, PermissionError):  # a thread that just ended
                pass
    return dict(sorted(used.items()))


def _wait(actors, ok, timeout_s: float) -> list[dict]:
    import ray

    deadline = time.monotonic() + timeout_s
    while True:
        states = ray.get([a.status.remote() for a in actors])
        if all(ok(s) for s in states):
            return states
        if time.monotonic() > deadline:
            raise TiltwatchError(
                f"benchmark cameras not done within {timeout_s:.0f} s: "
                + ", ".join(f"{s['id']} {s['state']}" for s in states)
            )
        time.sleep(0.25)


def format_cluster(r: dict) -> str:
    pinned = ", each node's cameras on a core of their own" if r.get("pinned") else ""
    lines = [f"{r['cluster']}: {r['nodes']} node(s) up in {r['cluster_start_s']} s{pinned}"]
    for run in r["runs"]:
        lines.append(
            f"{run['clip']}: {run['streams_count']} stream(s) x {run['frames_per_stream']} frames, "
            f"encode {run['encode']}, actors ready in {run['start_s']} s"
        )
        lines.append(
            f"  fps per stream {run['fps_per_stream']}, total {run['fps_total']}, {run['faces_per_frame']} faces/frame"
        )
        for s in run["streams"]:
            lines.append(
                f"  stream {s['stream']}: node {s['node_index']} ({s['node'][:12]}), {s['fps']} fps, "
                f"{s['frames']} frames"
            )
    return "\n".join(lines)
