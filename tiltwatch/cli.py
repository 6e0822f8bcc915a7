"""The ``tiltwatch`` command: analyze, models, train, eval, export.

Usage::

    tiltwatch analyze sample --out out/
    tiltwatch analyze clip.mp4 --out out/ --stride 2 --blur
"""

from __future__ import annotations

import logging
import signal
import sys
from enum import Enum
from functools import reduce
from pathlib import Path
from types import SimpleNamespace
from typing import Optional

import typer

from .cli_settings import AnalyzerChoice, analyzer_flags
from .emotions import DEFAULT_MODEL
from .errors import OutputError, TiltwatchError
from .signals import stop_on_sigterm
from .timeparse import parse_time

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Faces on camera: who is there, where they look, what they feel.",
)


def _version(value: bool) -> None:
    if value:
        from . import __version__

        typer.echo(f"tiltwatch {__version__}")
        raise typer.Exit()


class LogLevel(str, Enum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


@app.callback()
def _main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="print the version and exit"
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="say more: --log-level info"),
    log_level: LogLevel = typer.Option(LogLevel.warning, help="the least important log lines shown"),
) -> None:
    """Faces on camera: who is there, where they look, what they feel."""
    level = logging.INFO if verbose and log_level == LogLevel.warning else getattr(logging, log_level.value.upper())
    logging.getLogger().setLevel(level)


@app.command("settings")
def settings_cmd(
    preset: str = typer.Option("fast", help="the preset to show (exact, fast, photo)"),
    settings: Optional[Path] = typer.Option(None, help="an analyzer settings file to apply on top"),
) -> None:
    """Print every analyzer setting a run would use, as a settings file (YAML) to edit and pass back."""
    import yaml

    from .config import AnalyzerConfig, load_analyzer_settings

    try:
        config = AnalyzerConfig.preset(preset, **(load_analyzer_settings(settings) if settings else {}))
    except TiltwatchError as exc:
        _fail(str(exc))
    typer.echo(f"# tiltwatch analyzer settings: preset {preset}" + (f" + {settings}" if settings else ""))
    typer.echo(yaml.safe_dump(config.model_dump(), sort_keys=False).rstrip())


from .server.cli import serve_command  # noqa: E402  (imports nothing heavy until it runs)

app.command("serve")(serve_command)


class Output(str, Enum):
    jsonl = "jsonl"
    csv = "csv"
    video = "video"


class Preset(str, Enum):
    ultrafast = "ultrafast"
    superfast = "superfast"
    veryfast = "veryfast"
    faster = "faster"
    fast = "fast"
    medium = "medium"


def _fail(msg: str, code: int = 2) -> None:
    typer.secho(f"error: {msg}", fg="red", err=True)
    raise typer.Exit(code)


@app.command()
@analyzer_flags()
def analyze(
    source: str = typer.Argument(
        ...,
        help="'sample' (built in), an image, a folder of images, a video file, "
        "a webcam index (0) or a stream URL (rtsp://, http://)",
    ),
    out: Path = typer.Option(Path("out"), "--out", "-o", help="output folder"),
    outputs: list[Output] = typer.Option(
        [o.value for o in Output], "--output", help="what to write (repeat): jsonl, csv, video"
    ),
    stride: int = typer.Option(1, min=1, help="analyse every N-th frame of a video"),
    recursive: bool = typer.Option(False, "--recursive", "-r", help="a folder of photos: its sub-folders too"),
    video_preset: Preset = typer.Option(Preset.superfast, help="x264 speed of annotated.mp4 (faster = bigger file)"),
    blur: bool = typer.Option(False, help="pixelate faces in the annotated video and the window"),
    show: bool = typer.Option(False, help="live window (press q or Esc to stop)"),
    landmarks: bool = typer.Option(False, help="include the 468 mesh points per face in results.jsonl"),
    max_frames: Optional[int] = typer.Option(None, min=1, help="stop after this many frames"),
    overwrite: bool = typer.Option(False, help="replace the results of an earlier run in --out"),
    site: Optional[Path] = typer.Option(None, help="site config (YAML): zones, staff zones, alert thresholds"),
    db: Optional[str] = typer.Option(
        None, help="store visits and alerts here (with --site): sqlite:///file.db or postgresql+psycopg://..."
    ),
    camera: Optional[str] = typer.Option(None, help="which camera of the site config this source is"),
    start_time: Optional[str] = typer.Option(
        None,
        help="wall-clock time of the source's first frame, ISO 8601 (default: now); visits and alerts are stored at it",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
    analyzer: AnalyzerChoice = None,
) -> None:
    """Find every face in SOURCE; write results.jsonl, summary.csv and annotated.mp4 into --out.

    Photos (an image, a folder of them) are each analysed on their own: results.jsonl names each
    line's file, faces.csv has a row per face and annotated/ an annotated copy of each photo.

    With --site and --db, also turns the run into visits, alerts and staff-zone counts in the store
    (faces in staff zones are never analysed: only counted). Ctrl-C or SIGTERM stops the run and
    keeps what was written (exit 130 / 143)."""
    if (site is None) != (db is None):
        _fail("--site and --db go together")
    if show:
        _check_display()
    _run_analyze(SimpleNamespace(**locals()))


def _run_analyze(opts: SimpleNamespace) -> None:
    """``analyze`` with its options ``opts``: check every input, then build the run, run it and finish
    it. SIGTERM counts as Ctrl-C from the first step; one during set-up (the models take a second or
    two to load) is acted on once set-up is done, and ends the command as cleanly as one during the run."""
    from .native import keep_decoders_quiet

    keep_decoders_quiet()  # (one photo decoded at a time here: libpng's and libjpeg's lines held off)
    opened = SimpleNamespace(folder=None, store=None, plan=None, ran=False)  # what set-up got to
    with stop_on_sigterm(deferred=True) as signalled:  # (a signal during set-up: noted, acted on below)
        try:
            plan, src = _build(opts, opened)
            signalled.raise_from_now_on()
            opened.ran = True
            stats = plan.execute(progress=not opts.quiet, max_frames=opts.max_frames)
        except TiltwatchError as exc:
            _fail(str(exc) + (_kept(opened.folder) if opened.folder is not None else ""))
        except KeyboardInterrupt:
            if opened.ran:  # a second signal while the run's outputs closed: what was written stays
                _fail("interrupted again while the outputs closed" + _kept(opened.folder), code=130)
            if opened.plan is not None:  # before the run began: nothing analysed, nothing to keep
                opened.plan.abandon()
            _stopped_before_the_first_frame(opened.folder, signalled.signum)
        finally:
            if opened.store is not None:
                opened.store.close()
    stats.signum = signalled.signum
    _finish(stats, opened.folder, plan, src.name, opts.source)


def _build(opts: SimpleNamespace, opened: SimpleNamespace):
    """Check every input, open the output folder (and the store), build the run: (plan, source)."""
    from .sinks.folder import OutputFolder, output_names
    from .sources import ImageSource, open_source

    chosen = [o.value for o in dict.fromkeys(opts.outputs)]
    site = t0 = None
    if opts.site is not None:
        from .analytics.site import load_site
        from .store import Store

        site = load_site(opts.site)
        site.camera(opts.camera)
        t0 = parse_time(opts.start_time, "--start-time")
    src = open_source(opts.source, stride=opts.stride, recursive=opts.recursive)
    for note in getattr(src, "notes", []):
        typer.secho(f"note: {note}", fg="yellow", err=True)
    opened.folder = OutputFolder(opts.out, output_names(chosen, isinstance(src, ImageSource)), opts.overwrite)
    for path in opened.folder.leftovers:
        typer.secho(f"note: {path} holds the partial results of a run that was killed or failed", fg="yellow", err=True)
    if site is not None:
        opened.store = Store(opts.db)
        _retention(opened.store, site.retention_days)
    from .pipeline.build import build_run  # (the models' stack: after every input is known to be good)
    from .sinks import WindowSink

    choice: AnalyzerChoice = opts.analyzer
    plan = build_run(
        src,
        choice.base,
        opened.folder.staging,
        chosen,
        choice.overrides,
        site=site,
        camera=opts.camera,
        store=opened.store,
        start_time=t0,
        blur=opts.blur,
        video_preset=opts.video_preset.value,
        landmarks=opts.landmarks,
        extra_sinks=[WindowSink(blur=opts.blur)] if opts.show else [],
    )
    opened.plan = plan
    return plan, src


def _stopped_before_the_first_frame(folder, signum: int | None) -> None:
    """Ctrl-C or SIGTERM before any frame: the staging folder goes (it holds no frame), the exit
    says which signal."""
    kept = folder.keep_partial() if folder is not None else None
    typer.echo(
        "interrupted before the first frame; " + (f"partial files kept in {kept}" if kept else "nothing written")
    )
    raise typer.Exit(128 + int(signum or signal.SIGINT))


def _finish(stats, folder, plan, name: str, source: str) -> None:
    """Say what was skipped and done, move the outputs in, exit 130 / 143 when a signal stopped the run."""
    animated = getattr(plan.source, "first_frame_only", [])
    if animated:
        typer.secho(
            f"note: {len(animated)} animated image(s) or multi-page TIFF(s) (e.g. {animated[0]}): only the first "
            "frame or page of each analysed (convert an animation to a video, split a TIFF into images)",
            fg="yellow",
            err=True,
        )
    for line in stats.skipped[:10]:
        typer.secho(f"skipped: {line}", fg="yellow", err=True)
    if len(stats.skipped) > 10:
        typer.secho(f"skipped: ... and {len(stats.skipped) - 10} more", fg="yellow", err=True)
    if stats.frames == 0 and stats.interrupted:
        _stopped_before_the_first_frame(folder, stats.signum)
    typer.echo(stats.line())
    if stats.frames == 0:
        _fail(f"{source}: no frame could be processed" + _kept(folder), code=1)
    try:
        files = folder.commit(
            {
                "status": "interrupted" if stats.interrupted else "complete",
                "source": name,
                "frames": stats.frames,
                "faces": stats.faces,
                "skipped": len(stats.skipped) + stats.failed,
                "analyzer": plan.analyzer.config.model_dump(),
            }
        )
    except TiltwatchError as exc:
        _fail(str(exc))
    typer.echo(
        "wrote " + ", ".join(str(f) for f in files) + (" (interrupted: up to there)" if stats.interrupted else "")
    )
    if plan.analytics is not None:
        typer.echo(
            f"stored run {plan.analytics.run_id} of camera {plan.analytics.camera.id}: "
            f"{plan.analytics.alert_count} alerts"
        )
    if stats.interrupted:
        raise typer.Exit(128 + int(stats.signum or signal.SIGINT))


def _kept(folder) -> str:
    """What a failed run kept: the old results stay; the new partial ones are named."""
    partial = folder.keep_partial()
    if partial is None:
        return ""
    jsonl = partial / "results.jsonl"
    if jsonl.exists():
        with open(jsonl, "rb") as fh:
            whole = sum(1 for line in fh if line.endswith(b"\n"))  # (a last line without its end is no frame)
        return f"; {whole} frames kept in {jsonl}"
    return f"; partial results kept in {partial}"


def _check_display() -> None:
    """A live window needs a screen: say so before anything starts (OpenCV would abort the process)."""
    from .sinks.window import display_problem

    problem = display_problem()
    if problem is not None:
        _fail(problem)


def _retention(store, days: float | None) -> None:
    """The site's retention: purge and say what went (the run about to be written starts after it)."""
    if not days:
        return
    counts = store.purge(days)
    if any(counts.values()):
        typer.secho(
            f"retention ({days:g} days): deleted " + ", ".join(f"{n} {t}" for t, n in counts.items() if n),
            fg="yellow",
            err=True,
        )


@app.command()
def report(
    db: str = typer.Option(..., help="the store: sqlite:///file.db or postgresql+psycopg://..."),
    camera: str = typer.Option(..., help="camera id"),
    date: str = typer.Option(..., help="day to report, YYYY-MM-DD (UTC)"),
    out: Path = typer.Option(..., "--out", "-o", help="the HTML file to write"),
    csv_dir: Optional[Path] = typer.Option(None, "--csv", help="also export visits, alerts, observations as CSV here"),
) -> None:
    """A self-contained HTML report of one camera's day: timelines, heatmap, attention, alerts."""
    from .analytics.report import build_report
    from .store import Store

    try:
        _check_report_outputs(out, csv_dir)
        with Store(db, create=False) as store:
            if camera not in store.cameras():
                _fail(f"camera {camera!r} has no data in the store (known: {', '.join(store.cameras()) or 'none'})")
            counts = build_report(store, camera, date, out, csv_dir)
    except TiltwatchError as exc:
        _fail(str(exc))
    except OSError as exc:  # a full disk while writing
        _fail(f"{exc.filename or out}: cannot write ({exc.strerror})")
    typer.echo(
        f"wrote {out}: {counts['visits']} visits, {counts['alerts']} alerts, {counts['plots']} plots"
        + (f"; CSV in {csv_dir}" if csv_dir else "")
    )


def _check_report_outputs(out: Path, csv_dir: Path | None) -> None:
    """Where the report goes must be writable, before any work: one line naming the path if not.
    Nothing is made here (the report makes its folders): a mistyped store or camera leaves none."""
    import os

    if out.is_dir():
        raise OutputError(f"{out}: is a folder; --out is the HTML file to write (e.g. {out / 'report.html'})")
    if csv_dir is not None and csv_dir.exists() and not csv_dir.is_dir():
        raise OutputError(f"{csv_dir}: is a file; --csv is the folder to write the CSV files into")
    for folder in (out.parent, csv_dir):
        if folder is None:
            continue
        existing = folder.absolute()
        while not existing.exists():  # the nearest folder that is there: the rest would be made in it
            existing = existing.parent
        if not existing.is_dir():
            raise OutputError(f"{folder}: cannot write here ({existing} is a file)")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise OutputError(f"{folder}: cannot write here (permission denied)")


@app.command()
def purge(
    db: str = typer.Option(..., help="the store URL"),
    days: float = typer.Option(..., min=0, help="delete data older than this many days"),
) -> None:
    """Retention: delete stored data older than N days."""
    from .store import Store

    try:
        with Store(db, create=False) as store:
            abandoned = store.close_abandoned()
            counts = store.purge(days)
    except TiltwatchError as exc:
        _fail(str(exc))
    if abandoned:
        typer.echo(f"closed {abandoned} runs left open by a killed process (marked interrupted)")
    typer.echo("deleted " + ", ".join(f"{n} {table}" for table, n in counts.items()))


@app.command("bench")
@analyzer_flags()
def bench_cmd(
    clip: str = typer.Argument("sample", help="a video file, or 'sample'"),
    streams: list[int] = typer.Option([1, 4, 8], help="concurrent streams to measure (repeat)"),
    frames: int = typer.Option(200, min=10, help="frames per stream"),
    encode: bool = typer.Option(True, help="also annotate and encode H.264 (as for files; live streams need not)"),
    video_preset: Preset = typer.Option(Preset.superfast, help="x264 speed, as in analyze"),
    compare: bool = typer.Option(False, help="also report agreement of this config with the slow path"),
    emotion_only: bool = typer.Option(
        False,
        help="instead: emotion-model faces/s at batch 1, 64, 256 on the best "
        "onnxruntime provider present (the GPU's, when there is one)",
    ),
    checkpoint: list[Path] = typer.Option(
        [],
        help="with --emotion-only: time these training checkpoints (repeat: "
        "their ensemble) in torch instead, float32 and bfloat16, on the "
        "GPU where there is one",
    ),
    json_out: Optional[Path] = typer.Option(None, "--json", help="write all figures as JSON here"),
    cluster: Optional[str] = typer.Option(
        None,
        help="local:N: the streams as camera actors on a local N-node Ray "
        "cluster (the 'cluster' extra); each stream's fps and node",
    ),
    analyzer: AnalyzerChoice = None,
) -> None:
    """Per-stage latency, frames and faces per second, peak memory, for 1..N concurrent streams."""
    import json

    from .machine import describe_machine, machine_line
    from .pipeline.bench import agreement, bench, emotion_throughput, format_table, torch_emotion_throughput

    if any(n < 1 for n in streams):
        _fail(f"--streams: each count must be at least 1, got {min(streams)}", code=2)
    chosen = analyzer.config()
    config, model, threads = chosen.model_dump(), chosen.model, chosen.threads
    report = {"machine": describe_machine(), "runs": []}
    typer.echo(f"machine: {machine_line(report['machine'])}")
    if emotion_only and checkpoint:
        try:
            report["emotion"] = [torch_emotion_throughput([str(c) for c in checkpoint], bf16=b) for b in (False, True)]
        except TiltwatchError as exc:
            _fail(str(exc))
        for r in report["emotion"]:
            typer.echo(json.dumps(r))
        streams = []
    elif emotion_only:
        report["emotion"] = emotion_throughput(model, threads=threads)
        typer.echo(json.dumps(report["emotion"]))
        streams = []
    try:
        if cluster and streams:
            from .cluster.bench import cluster_bench, format_cluster

            report["cluster"] = cluster_bench(clip, cluster, streams, frames, config, encode, video_preset.value)
            report["streams"] = report["cluster"]["streams"]
            typer.echo(format_cluster(report["cluster"]))
            streams = []
        for n in streams:
            r = bench(clip, n, frames, config, encode, video_preset.value)
            report["runs"].append(r)
            typer.echo(format_table(r))
        if compare:
            report["agreement"] = agreement(clip, frames, config)
            typer.echo("agreement with the slow path: " + json.dumps(report["agreement"]))
    except TiltwatchError as exc:
        _fail(str(exc))
    _write_json(json_out, report)


@app.command("models")
def models_cmd() -> None:
    """List the emotion models shipped in the package, and which one `auto` (the default) runs here."""
    from .vision.emotion import auto_model, resolve_model, shipped_models

    chosen, why = auto_model()
    typer.echo(f"auto (the analyzer's default model) runs {chosen} on this machine: {why}")
    for name in shipped_models():
        card = resolve_model(name)[1]
        acc = {k: card.metrics.get(k, {}).get("accuracy", "n/a") for k in ("ferplus_test", "fer2013_private_test")}
        ece = card.metrics.get("ferplus_test", {}).get("calibration", {}).get("ece", "n/a")
        latency = card.cpu_latency_ms_batch1_2threads
        typer.echo(
            f"{name}\t{card.architecture}\t{card.input_size}px\t"
            f"FER+ test acc {acc['ferplus_test']} ECE {ece} (T {card.temperature(card.heads[0]):g})\t"
            f"FER2013 test acc {acc['fer2013_private_test']}\t"
            f"{'n/a' if latency is None else latency} ms/face" + ("\t(auto here)" if name == chosen else "")
        )


@app.command()
def train(
    config: Path = typer.Option(..., "--config", "-c", help="training YAML (see configs/)"),
    out: Optional[str] = typer.Option(None, help="run folder (overrides the config's 'out')"),
    data: Optional[str] = typer.Option(
        None, help="KIND:PATH of the data (overrides the config's 'data', e.g. a file tiltwatch pack made)"
    ),
    epochs: Optional[int] = typer.Option(None, min=1, help="length of the schedule (overrides the config's)"),
    max_minutes: Optional[float] = typer.Option(None, help="stop after this long; run again to resume"),
) -> None:
    """Train an emotion model; resumes from the run folder's last checkpoint."""
    try:
        from .training.train import load_config, log_progress_to_stdout
        from .training.train import train as train_fn
    except ImportError as exc:
        _fail(f"training needs the 'train' extra (pip install -e '.[train]'): {exc}")
    log_progress_to_stdout()  # each epoch's metrics as a JSON line, as scripts read them
    try:
        best = train_fn(load_config(config, out=out, data=data, epochs=epochs, max_minutes=max_minutes))
    except TiltwatchError as exc:
        _fail(str(exc))
    typer.echo(f"checkpoint to export: {best}")


@app.command()
def teach(
    models: list[str] = typer.Argument(
        ...,
        help="the teacher: shipped model names, .onnx files, training "
        "checkpoints (.pt) or earlier teachers (.npz), each an equal "
        "share of the mean logits",
    ),
    data: str = typer.Option(..., help="KIND:PATH of the training data (e.g. ferplus:DATA/ferplus)"),
    out: Path = typer.Option(..., "--out", "-o", help="the .npz to write (a config's teacher_logits)"),
    split: list[str] = typer.Option(["train", "valid"], help="splits to cover (repeat); never test"),
    threads: Optional[int] = typer.Option(None, min=1, help="onnxruntime threads (default: all cores)"),
) -> None:
    """Compute a teacher's logits for every training face once (and its mirror), for offline distillation."""
    from .training.datasets import FaceSet, load_dataset
    from .training.teacher import save_teacher, teacher_logits
    from .training.train import data_spec

    if "test" in split:
        _fail("a teacher is never run on a test split: what it gives becomes training targets")
    try:
        faces = reduce(FaceSet.join, (load_dataset(data_spec(data), s) for s in split))
        heads = teacher_logits(models, faces, threads)
        path = save_teacher(out, faces.names, heads, models)
    except TiltwatchError as exc:
        _fail(str(exc))
    typer.echo(f"wrote {path}: {len(faces)} faces, heads {', '.join(heads)}")


@app.command()
def pack(
    data: str = typer.Argument(..., help="KIND:PATH of the dataset (e.g. ferplus:DATA/ferplus)"),
    out: Path = typer.Option(..., "--out", "-o", help="the .npz to write"),
    split: list[str] = typer.Option(["train", "valid"], help="splits to pack (repeat)"),
    size: int = typer.Option(48, min=8, max=512, help="face size in pixels"),
) -> None:
    """Pack a dataset's splits into one compressed file (data: packed:FILE), to train elsewhere."""
    from .training.packed import pack_dataset
    from .training.train import data_spec

    try:
        path = pack_dataset(data_spec(data), split, out, size)
    except TiltwatchError as exc:
        _fail(str(exc))
    typer.echo(f"wrote {path}: {', '.join(split)} ({path.stat().st_size / 1e6:.1f} MB)")


class Crop(str, Enum):
    none = "none"
    detect = "detect"


@app.command("eval")
def eval_cmd(
    dataset: str = typer.Option(
        ...,
        help="KIND:PATH, test split (KIND-valid:PATH: validation): ferplus:ROOT, "
        "fer2013:FILE.csv, fer2013-folders:ROOT, rafdb:ROOT, affectnet:ROOT, "
        "folder:PATH (class sub-folders)",
    ),
    model: str = typer.Option(DEFAULT_MODEL, help="shipped model name or path to .onnx"),
    tta: bool = typer.Option(False, help="test-time augmentation: mirror and one-pixel shifts"),
    crop: Crop = typer.Option(
        Crop.none,
        help="none: images are face crops; detect: whole photos through the live pipeline's detection and alignment",
    ),
    filter: Optional[str] = typer.Option(
        None, "--filter", help="keep files whose name contains this (e.g. PrivateTest)"
    ),
    json_out: Optional[Path] = typer.Option(None, "--json", help="write the metrics as JSON here"),
    confusion: Optional[Path] = typer.Option(None, help="write the confusion-matrix PNG here"),
    card: Optional[str] = typer.Option(None, help="record the metrics in the shipped model's card under this key"),
    head: str = typer.Option(
        "auto",
        help="model output to score: auto (the head trained on the dataset's own "
        "labelling if the model has one) or a head name from the card",
    ),
    agreement: Optional[int] = typer.Option(
        None,
        help="instead: N crops through both the training path and the "
        "live path (detect, mesh, align); report label agreement",
    ),
    degrade: Optional[str] = typer.Option(
        None,
        help="also score degraded copies of the crops: all, or a list of shrink24, shrink16, jpeg30, "
        "blur, dark, noise; adds accuracy by quality score over all copies",
    ),
    reliability: Optional[Path] = typer.Option(None, help="write the reliability diagram (calibration) PNG here"),
) -> None:
    """Accuracy, balanced accuracy, per-class precision / recall / F1 and calibration (ECE) of an emotion model."""
    import json

    from .training.calibration import plot_reliability
    from .training.degrade import parse_degradations
    from .training.evaluate import evaluate, path_agreement, plot_confusion, print_table, record_in_card

    if agreement:
        try:
            r = path_agreement(dataset, model, agreement)
        except TiltwatchError as exc:
            _fail(str(exc))
        typer.echo(json.dumps(r))
        _write_json(json_out, r)
        if card:
            typer.echo(f"recorded in {record_in_card(r, card, _command(card), model)}")
        return
    try:
        names = parse_degradations(degrade) if degrade else None
        m = evaluate(dataset, model, tta, crop.value, filter, head, names)
        typer.echo(print_table(m))
        _write_json(json_out, m)
        if confusion:
            plot_confusion(m, confusion)
        if reliability:
            plot_reliability(m["calibration"]["bins"], reliability, f"{m['model']} on {m['dataset']}")
    except TiltwatchError as exc:
        _fail(str(exc))
    if card:
        typer.echo(f"recorded in {record_in_card(m, card, _command(card), model)}")


@app.command()
def calibrate(
    dataset: str = typer.Option(..., help="KIND-valid:PATH, a validation split (e.g. ferplus-valid:ROOT)"),
    model: str = typer.Option(DEFAULT_MODEL, help="shipped model name or path to .onnx"),
    head: str = typer.Option("auto", help="the head to calibrate: auto (as eval chooses) or a head name from the card"),
    write: bool = typer.Option(False, help="record the temperature in the model's card (what every run then applies)"),
    seen_factor: float = typer.Option(
        1.0,
        min=0.5,
        max=2.0,
        help="for a model trained on this split too: multiply the fitted temperature by this "
        "(unseen / seen temperature of models that were not; see docs/reference/models.md)",
    ),
) -> None:
    """Fit a model head's temperature on a validation split so its probabilities match how often it is right."""
    from .training.calibration import calibrate_model

    try:
        r = calibrate_model(dataset, model, head, write, _command(), seen_factor)
    except TiltwatchError as exc:
        _fail(str(exc))
    typer.echo(
        f"{r['model']} head {r['head']} on {r['dataset']} (n={r['n']}): temperature {r['temperature']:g}"
        + (f" (fitted {r['fitted']:g} x {r['seen_factor']:g})" if r["seen_factor"] != 1 else "")
        + "; "
        f"ECE {r['ece_before']:.4f} -> {r['ece_after']:.4f}, NLL {r['nll_before']:.4f} -> {r['nll_after']:.4f}"
    )
    if write:
        typer.echo(f"recorded in {r['card']}")


def _write_json(path: Path | None, data: dict) -> None:
    """Write ``data`` as JSON to ``path`` (if given); a path that cannot be written is a one-line error."""
    import json

    if path is None:
        return
    try:
        path.write_text(json.dumps(data, indent=2) + "\n")
    except OSError as exc:  # one line wherever it is called (inside a command's error handling or after it)
        _fail(f"{path}: cannot write ({exc.strerror or exc})")


def _command(card_key: str | None = None) -> str:
    """This ``tiltwatch`` command line as a user would retype it, without its ``--card KEY``."""
    return "tiltwatch " + " ".join(a for a in sys.argv[1:] if not a.startswith("--card") and a != card_key)


@app.command()
def export(
    checkpoints: list[Path] = typer.Argument(
        ..., help="a best.pt from tiltwatch train; several make an ensemble (the mean of their logits, one ONNX graph)"
    ),
    out: Path = typer.Option(..., "--out", "-o", help="the .onnx file to write (card goes beside it)"),
    balance: Optional[str] = typer.Option(
        None, help="FER+ root: tune a rare-class logit adjustment on its validation split and fold it into the model"
    ),
    max_acc_drop: float = typer.Option(0.01, help="with --balance: accuracy it may cost on validation"),
    min_balanced: Optional[float] = typer.Option(
        None,
        min=0.0,
        max=1.0,
        help="with --balance: accuracy "
        "first instead: the most accurate adjustment whose "
        "validation balanced accuracy (faces and mirror "
        "images) is at least this",
    ),
    tau: Optional[float] = typer.Option(
        None,
        min=0.0,
        max=2.0,
        help="with --balance: this logit "
        "adjustment as it is, nothing tuned (for models trained on the "
        "validation split; the prior comes from the training split)",
    ),
    int8: Optional[str] = typer.Option(
        None,
        "--int8",
        help="FER+ root: quantize to int8, calibrating on its training split (2.5x faster on this project's CPU)",
    ),
    float_heads: bool = typer.Option(
        False, help="with --int8: keep each head's last layer in float32 (a lone net's int8 parity; no cost)"
    ),
) -> None:
    """Export a checkpoint (or an ensemble of several) to ONNX with its card, checking torch/onnxruntime parity."""
    from .training.export import export as export_fn

    try:
        card = export_fn(
            list(checkpoints),
            out,
            balance_data=balance,
            max_acc_drop=max_acc_drop,
            command=_command(),
            int8_data=int8,
            min_balanced=min_balanced,
            tau=tau,
            float_heads=float_heads,
        )
    except TiltwatchError as exc:
        _fail(str(exc))
    typer.echo(
        f"wrote {out} ({card['file_size_bytes'] / 1e6:.1f} MB), parity max |dp| "
        f"{card['parity']['max_abs_prob_diff']:.2e}, CPU {card['cpu_latency_ms_batch1_2threads']} ms/face"
    )


@app.command("eval-pose")
@analyzer_flags(default_preset="photo")
def eval_pose_cmd(
    dataset: str = typer.Option(
        ..., "--dataset", help="KIND:PATH of a head-pose dataset (aflw2000:ROOT: AFLW2000-3D's .jpg + .mat files)"
    ),
    json_out: Optional[Path] = typer.Option(None, "--json", help="write the figures to this JSON file"),
    scatter: Optional[Path] = typer.Option(None, "--scatter", help="write a predicted-vs-true PNG"),
    limit: Optional[int] = typer.Option(None, min=1, help="only the first N protocol images"),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
    analyzer: AnalyzerChoice = None,  # type: ignore[assignment]  # filled by analyzer_flags
) -> None:
    """Head pose against labelled angles: faces found and MAE of yaw, pitch, roll, overall and by |yaw|.

    The photos run as `analyze` runs photos (the photo preset); `--preset exact` measures one mesh
    pass from the detector's box instead (a camera's first sight of a face; once followed, a face
    is meshed from its last mesh). Each image on its own: nothing is tracked or smoothed."""

    from .config import EACH_IMAGE_ALONE
    from .pipeline.analyzer import Analyzer
    from .training.pose_eval import evaluate_pose, format_report, load_pose_dataset, save_scatter

    try:
        samples = load_pose_dataset(dataset)[:limit]
        if not samples:
            raise TiltwatchError(f"{dataset}: no image inside the +-99 degree protocol")
        config = analyzer.config().model_copy(update={"emotion": False} | EACH_IMAGE_ALONE)
        runner = Analyzer(config)
        report, true, pred = evaluate_pose(samples, runner)
        runner.close()
    except TiltwatchError as exc:
        _fail(str(exc))
    report["dataset"] = dataset
    report["settings"] = {
        k: getattr(config, k) for k in ("mesh_passes", "mesh_tta", "mesh_retry", "detect_both_ranges")
    }
    report["command"] = _command()
    if not quiet:
        typer.echo(format_report(report))
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        _write_json(json_out, report)
    if scatter is not None:
        save_scatter(true, pred, scatter, f"{dataset.partition(':')[0]}: {report['found']}/{report['images']} faces")


def main() -> None:
    from .native import quiet_native_logs

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    quiet_native_logs()
    sys.exit(_run_app())


def _run_app() -> int:
    """The app, with click's usage errors as one ``error:`` line like every other error (not a box)."""
    try:
        from typer._click import exceptions as cx  # the pinned typer carries its own copy of click
    except ImportError:  # an older typer runs on click itself
        from click import exceptions as cx

    try:
        code = app(standalone_mode=False)
    except cx.NoArgsIsHelpError as exc:  # a bare command: its help, as before
        typer.echo(exc.ctx.get_help(), err=True)
        return 2
    except cx.UsageError as exc:  # a mistyped option, a missing or bad value
        hint = f"; see '{exc.ctx.command_path} --help'" if exc.ctx is not None else ""
        typer.secho(f"error: {exc.format_message().rstrip('.')}{hint}", fg="red", err=True)
        return exc.exit_code
    except cx.ClickException as exc:
        typer.secho(f"error: {exc.format_message()}", fg="red", err=True)
        return exc.exit_code
    except typer.Abort:  # Ctrl-C outside a run's own handling
        return 130
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
