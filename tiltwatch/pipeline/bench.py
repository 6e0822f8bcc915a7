"""``tiltwatch bench``: per-stage latency, end-to-end speed and memory, for 1..N concurrent streams.

Each stream is its own process (its own models), all released together by a barrier, each
running the full product path: decode (read-ahead thread) -> analyze -> annotate and
encode H.264 (write-behind thread). Stage latencies are per frame (median and 95th
percentile); "fps" is frames over the wall time of the loop, model loading excluded.

``agreement`` runs the slow path (detect every frame, no threads) and a fast path on the
same clip and reports how close their emotion labels and poses are.

Usage::

    tiltwatch bench clip.mp4 --streams 1 --streams 4 --frames 300
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from ..emotions import DEFAULT_MODEL
from ..errors import TiltwatchError

STAGES = ("decode", "cut", "detect", "mesh", "pose", "align", "emotion", "track", "smooth", "encode")


class _TimedIter:
    """Times each ``next`` of the source (runs on the read-ahead thread)."""

    def __init__(self, it, sink: list):
        self.it, self.sink = iter(it), sink

    def __iter__(self):
        return self

    def __next__(self):
        t0 = time.perf_counter()
        item = next(self.it)
        self.sink.append(time.perf_counter() - t0)
        return item


def _stream_worker(clip: str, frames: int, config: dict, encode: bool, preset: str, barrier, results) -> None:
    from ..config import AnalyzerConfig
    from ..sinks.video import AnnotatedVideoSink
    from ..sources import open_source
    from .build import build_analyzer
    from .threads import WriteBehind, prefetch

    src = open_source(clip)
    an = build_analyzer(AnalyzerConfig(**config), fps=src.fps)
    decode_t: list[float] = []
    encode_t: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        sink = AnnotatedVideoSink(Path(tmp) / "bench.mp4", fps=src.fps or 25.0, preset=preset)
        write = sink.write

        def timed_write(frame, result):
            t0 = time.perf_counter()
            write(frame, result)
            encode_t.append(time.perf_counter() - t0)

        sink.write = timed_write
        writer = WriteBehind([sink] if encode else [])
        barrier.wait()
        n = faces = 0
        t0 = time.perf_counter()
        it = prefetch(_TimedIter(src, decode_t))
        for frame, result in an.stream(it, src.name):
            if isinstance(result, Exception):
                raise result
            writer.write(frame, result)
            n += 1
            faces += len(result.faces)
            if n >= frames:
                break
        it.close()
        writer.close()
        wall = time.perf_counter() - t0
    src.close()
    timings = dict(an.timings)
    timings["decode"], timings["encode"] = decode_t, encode_t
    results.put(
        {
            "frames": n,
            "faces": faces,
            "seconds": wall,
            "timings": timings,
            "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    )


def bench(clip: str, streams: int, frames: int, config: dict, encode: bool = True, preset: str = "superfast") -> dict:
    """``encode``: write the annotated H.264 video too (files); live streams need not."""
    from ..sources import open_source

    open_source(clip).close()  # a bad clip: its one-line error here, not a traceback in each worker
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(streams), ctx.Queue()
    procs = [
        ctx.Process(target=_stream_worker, args=(clip, frames, config, encode, preset, barrier, results))
        for _ in range(streams)
    ]
    for p in procs:
        p.start()
    outs = []
    while len(outs) < streams:  # a worker that dies must not leave us waiting forever
        try:
            outs.append(results.get(timeout=1.0))
        except queue.Empty:
            dead = [p for p in procs if p.exitcode not in (None, 0)]
            if dead:
                for p in procs:
                    p.terminate()
                raise TiltwatchError(
                    f"a benchmark stream process failed (exit code {dead[0].exitcode}); "
                    "run from the tiltwatch command or a script file, not standard input"
                ) from None
    for p in procs:
        p.join()
    stages = {}
    for st in STAGES:
        xs = np.concatenate([np.asarray(o["timings"].get(st, []), float) for o in outs]) * 1000
        if len(xs):
            stages[st] = {"median_ms": round(float(np.median(xs)), 2), "p95_ms": round(float(np.percentile(xs, 95)), 2)}
    wall = max(o["seconds"] for o in outs)
    total_frames = sum(o["frames"] for o in outs)
    total_faces = sum(o["faces"] for o in outs)
    from ..vision.emotion import model_name

    return {
        "clip": clip,
        "streams": streams,
        "config": config,
        "emotion_model": model_name(config["model"]) if config.get("emotion", True) else None,
        "encode": preset if encode else False,
        "frames_per_stream": min(o["frames"] for o in outs),  # fewer than asked where the clip is shorter
        "frames_asked": frames,
        "fps_per_stream": round(float(np.mean([o["frames"] / o["seconds"] for o in outs])), 1),
        "fps_total": round(total_frames / wall, 1),
        "faces_per_s": round(total_faces / wall, 1),
        "faces_per_frame": round(total_faces / max(total_frames, 1), 2),
        "peak_memory_mb": round(sum(o["max_rss_mb"] for o in outs), 0),
        "stages": stages,
    }


def agreement(clip: str, frames: int, config: dict) -> dict:
    """Fast path vs slow path on the same frames: faces matched by box IoU >= 0.5."""
    from supervision import box_iou_batch

    from ..config import AnalyzerConfig
    from ..sources import open_source
    from .build import build_analyzer

    def results(cfg: dict) -> list:
        src = open_source(clip)
        an = build_analyzer(AnalyzerConfig(**cfg), fps=src.fps)
        out = []
        for frame in src:
            out.append(an.analyze(frame.image, frame.timestamp, frame.index).faces)
            if len(out) >= frames:
                break
        src.close()
        return out

    slow = results({**config, "detect_every": 1})
    fast = results(config)
    same_label = matched = ref_faces = fast_faces = 0
    pose_err = []
    for a_faces, b_faces in zip(slow, fast):
        ref_faces += len(a_faces)
        fast_faces += len(b_faces)
        if not a_faces or not b_faces:
            continue
        ious = box_iou_batch(np.stack([a.box for a in a_faces]), np.stack([b.box for b in b_faces]))
        for a, row in zip(a_faces, ious):
            if row.max() < 0.5:
                continue
            b = b_faces[int(np.argmax(row))]
            matched += 1
            same_label += a.emotion.label == b.emotion.label
            if a.pose and b.pose:
                pose_err.append(np.abs(a.pose.as_array() - b.pose.as_array()))
    pe = np.array(pose_err) if pose_err else np.zeros((1, 3))
    return {
        "clip": clip,
        "frames": len(slow),
        "config": config,
        "faces_slow_path": ref_faces,
        "faces_fast_path": fast_faces,
        "faces_matched": matched,
        "recall_vs_slow": round(matched / max(ref_faces, 1), 4),
        "precision_vs_slow": round(matched / max(fast_faces, 1), 4),
        "label_agreement": round(same_label / max(matched, 1), 4),
        "pose_mean_abs_diff_deg": dict(zip(("yaw", "pitch", "roll"), np.round(pe.mean(0), 2).tolist())),
    }


def _faces_per_s(call, batch: int, seconds: float, sync=lambda: None) -> float:
    """Faces a second of ``call()`` (one batch of ``batch`` faces) run for about ``seconds``, after a
    warm-up call; ``sync`` waits for a device's queued work before the clock is read."""
    call()  # warm-up (kernel selection)
    sync()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        call()
        n += batch
    sync()  # (a GPU may still be working through the calls queued)
    return round(n / (time.perf_counter() - t0), 1)


def emotion_throughput(
    model: str = DEFAULT_MODEL,
    batches: tuple[int, ...] = (1, 64, 256),
    seconds: float = 3.0,
    threads: int | None = None,
) -> dict:
    """Faces per second of the emotion model alone, per batch size, on the best provider present
    (CUDA when onnxruntime-gpu is installed and a GPU is visible, else the CPU)."""
    import onnxruntime as ort

    from ..vision.emotion import resolve_model

    path, card = resolve_model(model)
    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(path), opts, providers=providers)
    name = sess.get_inputs()[0].name
    out = {"model": card.name, "provider": sess.get_providers()[0], "faces_per_s": {}}
    for b in batches:
        x = (
            np.random.default_rng(0)
            .standard_normal((b, card.channels, card.input_size, card.input_size))
            .astype(np.float32)
        )
        out["faces_per_s"][b] = _faces_per_s(lambda x=x: sess.run(None, {name: x}), b, seconds)
    return out


def torch_emotion_throughput(
    checkpoints: list[str], batches: tuple[int, ...] = (1, 64, 256), seconds: float = 3.0, bf16: bool = True
) -> dict:
    """Faces per second of training checkpoints (several: their ensemble, as export builds it) run
    by torch, on the GPU where there is one: for a GPU machine without onnxruntime's CUDA build.
    Each call copies its batch from host memory, as the pipeline's crops would come."""
    import torch

    from ..training.checkpoints import load_checkpoints

    model, cks = load_checkpoints(checkpoints)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = model.to(dev, memory_format=torch.channels_last).eval()
    size = cks[0]["config"]["input_size"]
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    out = {
        "model": " + ".join(ck["config"]["model"] for ck in cks),
        "checkpoints": [str(c) for c in checkpoints],
        "provider": f"torch {torch.__version__} on {torch.cuda.get_device_name() if dev.type == 'cuda' else 'cpu'}, "
        f"{'bfloat16 autocast' if bf16 else 'float32'}",
        "faces_per_s": {},
    }
    with torch.inference_mode(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
        for b in batches:
            x = torch.randn(b, 1, size, size).contiguous(memory_format=torch.channels_last)
            out["faces_per_s"][b] = _faces_per_s(lambda x=x: model(x.to(dev, non_blocking=True)), b, seconds, sync)
    return out


def format_table(r: dict) -> str:
    lines = [
        f"{r['clip']}: {r['streams']} stream(s) x {r['frames_per_stream']} frames, "
        f"{r['faces_per_frame']} faces/frame, config {r['config']}, emotion model {r['emotion_model']}, "
        f"encode {r['encode']}",
        f"  fps per stream {r['fps_per_stream']}, total {r['fps_total']}, faces/s {r['faces_per_s']}, "
        f"peak memory {r['peak_memory_mb']:.0f} MB",
        f"  {'stage':<8} {'median ms':>10} {'p95 ms':>8}",
    ]
    for st, v in r["stages"].items():
        lines.append(f"  {st:<8} {v['median_ms']:>10.2f} {v['p95_ms']:>8.2f}")
    return "\n".join(lines)
