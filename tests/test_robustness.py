"""Faults a new user or a long run meets: one line naming the path, the right exit code, nothing lost.

Each test here failed before its fix (tracebacks, silent wrong answers, lost or stale outputs).
"""

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest

from tiltwatch.errors import InputError, OutputError

from .conftest import HAPPY_TILT_SITE, tiltwatch


def one_line_error(res: subprocess.CompletedProcess, code: int = 2) -> str:
    """The command failed with ``code`` and said why in exactly one ``error:`` line, no traceback."""
    assert res.returncode == code, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr, res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, res.stderr
    return errors[0]


def write_video(path: Path, frames: int, size=(160, 120), fps: int = 25, faststart: bool = True) -> None:
    """An H.264 MP4 of a moving gradient (no faces needed: decoding is what is tested)."""
    w, h = size
    with av.open(str(path), "w", options={"movflags": "+faststart"} if faststart else {}) as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(frames):
            img = np.full((h, w, 3), (i * 3) % 256, np.uint8)
            img[:, : (i % w)] = 255 - img[:, : (i % w)]
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")))
        out.mux(stream.encode())


def playable_frames(path: Path) -> int:
    """Frames a player shows before the file ends or breaks off (a killed writer's last fragment)."""
    n = 0
    with av.open(str(path)) as video:
        try:
            for _ in video.decode(video=0):
                n += 1
        except av.FFmpegError:
            pass
    return n


# --- output folders --------------------------------------------------------------------------


def test_out_that_cannot_be_a_folder_is_one_line(tmp_path):
    (tmp_path / "a-file").write_text("x")
    assert "is a file" in one_line_error(tiltwatch("analyze", "sample", "--out", tmp_path / "a-file", "-q"))
    assert "/proc/tiltwatch" in one_line_error(tiltwatch("analyze", "sample", "--out", "/proc/tiltwatch/o", "-q"))


def run_unable_to_write(tmp_path: Path, *args) -> tuple[Path, list[subprocess.CompletedProcess]]:
    """``tiltwatch ARGS`` with a read-only folder ``ro`` ({ro} in ARGS), by a user who cannot write
    there. Root writes anywhere, so root runs them without the capability that lets it
    (``setpriv``, util-linux: CAP_DAC_OVERRIDE dropped, so root obeys the folder's mode like anyone)."""
    import shutil

    prefix = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without util-linux's setpriv to drop CAP_DAC_OVERRIDE")
        drop = "-dac_override,-fowner"
        prefix = ["setpriv", f"--inh-caps={drop}", f"--bounding-set={drop}", "--"]
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        return ro, [
            subprocess.run(
                [*prefix, sys.executable, "-m", "tiltwatch", *(str(a).format(ro=ro) for a in cmd)],
                capture_output=True,
                text=True,
                timeout=600,
            )
            for cmd in args
        ]
    finally:
        ro.chmod(0o755)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_outputs_in_a_read_only_folder_are_one_line(tmp_path):
    from tiltwatch.store import Store

    db = f"sqlite:///{tmp_path / 's.db'}"
    Store(db).close()
    report = ["report", "--db", db, "--camera", "c", "--date", "2026-01-01"]
    ro, results = run_unable_to_write(
        tmp_path,
        ["analyze", "sample", "--out", "{ro}", "-q"],
        ["analyze", "sample", "--out", "{ro}/sub", "-q"],
        [*report, "--out", "{ro}/r.html"],
        [*report, "--out", tmp_path / "r.html", "--csv", "{ro}/csv"],
    )
    for res in results:
        assert "cannot write" in one_line_error(res) and str(ro) in one_line_error(res)
    assert list(ro.iterdir()) == []


def test_a_folder_holds_one_runs_complete_set(tmp_path):
    out = tmp_path / "o"
    res = tiltwatch("analyze", "sample", "--out", out, "--max-frames", "5", "-q")
    assert res.returncode == 0, res.stderr
    assert json.loads((out / "run.json").read_text())["status"] == "complete"
    old = (out / "results.jsonl").read_text()
    # a failing run (nothing decodable) leaves the old set as it was, and nothing that blocks the next
    (tmp_path / "bad.mp4").write_bytes(b"not a video at all" * 100)
    one_line_error(tiltwatch("analyze", tmp_path / "bad.mp4", "--out", out, "--overwrite", "-q"))
    assert (out / "results.jsonl").read_text() == old and (out / "annotated.mp4").is_file()
    # --overwrite with fewer outputs: the previous run's other files go; run.json says what is this run's
    res = tiltwatch("analyze", "sample", "--out", out, "--max-frames", "3", "--output", "jsonl", "--overwrite", "-q")
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in out.iterdir()) == ["results.jsonl", "run.json"]
    run = json.loads((out / "run.json").read_text())
    assert run["files"] == ["results.jsonl"] and run["frames"] == 3 and run["analyzer"]["detect_every"] == 3


def test_a_full_disk_is_one_line_and_what_was_written_is_kept(tmp_path, analyzer):
    from tiltwatch.pipeline import run
    from tiltwatch.sinks import JsonlSink
    from tiltwatch.sources.sample import SampleSource

    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full")
    (tmp_path / "results.jsonl").symlink_to("/dev/full")  # every write: ENOSPC
    with pytest.raises(OutputError, match="No space left on device") as err:
        run(SampleSource(seconds=1), analyzer, [JsonlSink(tmp_path / "results.jsonl")], progress=False)
    assert "\n" not in str(err.value) and str(err.value).startswith(f"{tmp_path / 'results.jsonl'}: cannot write")


def test_a_disk_that_fills_up_mid_run_says_how_many_whole_frames_were_kept(tmp_path):
    """The CLI, its files capped at 30 kB (RLIMIT_FSIZE: a write past it fails as on a full disk).
    One error line names the file and the frames kept; each of them is a whole line that parses,
    and the previous run's results in --out are untouched."""
    import resource

    out = tmp_path / "o"
    assert tiltwatch("analyze", "sample", "--out", out, "--max-frames", "2", "-q", "--output", "jsonl").returncode == 0
    before = (out / "results.jsonl").read_text()

    def small_disk():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # (else the kernel kills the writer)
        resource.setrlimit(resource.RLIMIT_FSIZE, (30_000, 30_000))

    res = subprocess.run(
        [sys.executable, "-m", "tiltwatch", "analyze", "sample", "--out", str(out), "-q", "--output", "jsonl"]
        + ["--overwrite"],
        capture_output=True,
        text=True,
        preexec_fn=small_disk,
        timeout=600,
    )
    [partial] = out.glob(".partial-*")
    kept = partial / "results.jsonl"
    assert one_line_error(res).startswith(f"error: {kept}: cannot write (")
    lines = kept.read_bytes().split(b"\n")
    assert lines[-1] == b"" and [json.loads(line)["frame"] for line in lines[:-1]] == list(range(len(lines) - 1))
    assert res.stderr.rstrip().endswith(f"; {len(lines) - 1} frames kept in {kept}") and len(lines) > 5
    assert (out / "results.jsonl").read_text() == before


def free_x_display() -> int:
    """An X display number with nothing listening on it (no file socket, no abstract one)."""
    import socket

    for n in range(190, 290):
        with socket.socket(socket.AF_UNIX) as s:
            try:
                s.bind(f"\0/tmp/.X11-unix/X{n}")  # (free in the abstract namespace: nobody serves it)
            except OSError:
                continue
        if not Path(f"/tmp/.X11-unix/X{n}").exists():
            return n
    pytest.skip("no free X display number")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the X11 check is Linux's")
def test_show_without_a_reachable_display_stops_before_anything_starts(tmp_path):
    """OpenCV's Qt aborts the process (SIGABRT, an empty results.jsonl) when no X server answers:
    unset, set to a display no one serves, or a Wayland-only session. Each is one line, before the run."""
    n = free_x_display()
    bare = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    for env, said in [
        (bare, "DISPLAY is not set"),
        ({**bare, "WAYLAND_DISPLAY": "wayland-0"}, "needs XWayland's DISPLAY"),
        ({**bare, "DISPLAY": f":{n}"}, f"no X server answers at DISPLAY=:{n}"),
    ]:
        res = subprocess.run(
            [sys.executable, "-m", "tiltwatch", "analyze", "sample", "--out", str(tmp_path / "o"), "--show", "-q"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert said in one_line_error(res)
        assert not (tmp_path / "o").exists()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the X11 check is Linux's")
def test_the_display_check_sees_an_x_server_that_listens():
    import socket

    from tiltwatch.sinks.window import _x_server_answers

    n = free_x_display()
    assert not _x_server_answers(f":{n}") and not _x_server_answers(f"unix:{n}.0")
    with socket.socket(socket.AF_UNIX) as server:  # where libxcb connects first for :N
        server.bind(f"\0/tmp/.X11-unix/X{n}")
        server.listen(8)  # (never accepted: room for the three probes)
        assert _x_server_answers(f":{n}") and _x_server_answers(f":{n}.0") and _x_server_answers(f"unix:{n}")


# --- stopping: SIGTERM as Ctrl-C ---------------------------------------------------------------


def test_sigterm_stops_like_ctrl_c_and_keeps_playable_outputs(tmp_path):
    clip, out = tmp_path / "long.mp4", tmp_path / "o"
    write_video(clip, 3000)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tiltwatch", "analyze", clip, "--out", out, "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not any(p.stat().st_size > 2000 for p in out.glob(".partial-*/results.jsonl")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, (stdout, stderr)
    assert "Traceback" not in stderr and "interrupted" in stdout
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "interrupted" and 0 < run["frames"] < 3000
    assert (out / "summary.csv").is_file()
    with av.open(str(out / "annotated.mp4")) as video:  # a moov was written: it plays
        assert sum(1 for _ in video.decode(video=0)) >= run["frames"] - 1
    assert len((out / "results.jsonl").read_text().splitlines()) == run["frames"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_set_up_ends_the_command_cleanly(tmp_path, signum):
    """The signal comes as soon as the output folder exists, while the models load: exit 143 / 130,
    one line, and no empty ``.partial-*`` left for the next run to point out (SIGTERM used to
    kill the process outright there, or to read as 'no frame could be processed', exit 1)."""
    from tiltwatch.store import Store

    clip, out, site, db = tmp_path / "long.mp4", tmp_path / "o", tmp_path / "site.yaml", tmp_path / "s.db"
    write_video(clip, 3000)
    site.write_text("cameras:\n  - id: cam\n    zones: []\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tiltwatch", "analyze", clip, "--out", out, "-q"]
        + ["--site", site, "--db", f"sqlite:///{db}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not list(out.glob(".partial-*")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.005)
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum and "interrupted" in stdout, (proc.returncode, stdout, stderr)
    assert stderr == "" and not list(out.glob(".partial-*"))
    if (out / "run.json").exists():  # (only if the run had already begun: then it kept its frames)
        assert json.loads((out / "run.json").read_text())["status"] == "interrupted"
    with Store(f"sqlite:///{db}") as store:  # the store's run, if it was started, was ended, not left open
        assert all(r["ended_at"] is not None for r in store.runs("cam"))


@pytest.mark.parametrize("signals", [1, 2])
def test_a_signal_while_the_models_load_is_acted_on_after_and_a_second_at_once(tmp_path, monkeypatch, signals):
    """SIGTERM sent from inside the run's building (where the models load: a KeyboardInterrupt in
    an import would be an ImportError) is acted on once it is built; a second one stops it there.
    Either way: exit 143, the one line, no staging folder left."""
    from typer.testing import CliRunner

    from tiltwatch.cli import app
    from tiltwatch.pipeline import build

    real, built = build.build_run, []

    def signalled_build_run(*args, **kwargs):
        built.append(True)
        for _ in range(signals):
            os.kill(os.getpid(), signal.SIGTERM)  # (handled at once, in this thread: deterministic)
        return real(*args, **kwargs)

    monkeypatch.setattr(build, "build_run", signalled_build_run)
    res = CliRunner().invoke(app, ["analyze", "sample", "--out", str(tmp_path / "o"), "-q"])
    assert res.exit_code == 143 and "interrupted before the first frame; nothing written" in res.output, res.output
    assert built and not list((tmp_path / "o").glob(".partial-*")) and not (tmp_path / "o" / "run.json").exists()


def test_a_second_ctrl_c_while_the_outputs_close_keeps_what_was_written(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from tiltwatch.cli import app
    from tiltwatch.pipeline import runner

    real = runner._close_sinks

    def closed_then_interrupted(*args, **kwargs):  # Ctrl-C pressed again while the video was flushing
        real(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "_close_sinks", closed_then_interrupted)
    res = CliRunner().invoke(app, ["analyze", "sample", "--out", str(tmp_path / "o"), "-q", "--max-frames", "3"])
    [partial] = (tmp_path / "o").glob(".partial-*")
    assert (
        res.exit_code == 130 and f"interrupted again while the outputs closed; 3 frames kept in {partial}" in res.output
    )
    assert len((partial / "results.jsonl").read_text().splitlines()) == 3


def analyze_with_a_store(tmp_path: Path) -> tuple[subprocess.Popen, Path, Path]:
    """``tiltwatch analyze`` started in the background on 40 s of the sample's faces, with a
    one-table site and an SQLite store: (the process, the store's file, ``--out``)."""
    from tiltwatch.sources.sample import SampleSource

    site, db_file, out, clip = tmp_path / "site.yaml", tmp_path / "s.db", tmp_path / "o", tmp_path / "long.mp4"
    site.write_text(
        "cameras:\n  - id: cam\n    zones:\n      - {name: t, kind: table, polygon: "
        "[[0, 0], [480, 0], [480, 270], [0, 270]]}\n"
    )
    with av.open(str(clip), "w") as f:
        stream = f.add_stream("libx264", rate=15)
        stream.width, stream.height, stream.pix_fmt = 480, 270, "yuv420p"
        for frame in SampleSource(seconds=40, fps=15, size=(480, 270)):
            f.mux(stream.encode(av.VideoFrame.from_ndarray(frame.image, format="bgr24")))
        f.mux(stream.encode())
    args = ["analyze", clip, "--out", out, "-q", "--site", site, "--db", f"sqlite:///{db_file}"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tiltwatch", *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    return proc, db_file, out


def open_visits(db_file: Path) -> int:
    """Visits still open in the store (0 before it exists)."""
    import sqlite3

    try:
        with sqlite3.connect(db_file) as conn:
            return conn.execute("SELECT count(*) FROM visits WHERE closed = 0").fetchone()[0]
    except sqlite3.Error:  # not created yet
        return 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_closes_the_run_and_its_visits_in_the_store(tmp_path, signum):
    """What ``docker stop`` (SIGTERM) or Ctrl-C (SIGINT) ends must not be left open in the store:
    the run ends, every visit is closed (by the run itself: not marked as killed), exit 143 / 130."""
    from tiltwatch.store import Store

    proc, db_file, _ = analyze_with_a_store(tmp_path)  # (the signal comes long before the clip's end)
    deadline = time.monotonic() + 180
    while not open_visits(db_file):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, (stdout, stderr)
    assert "Traceback" not in stderr and "interrupted" in stdout
    with Store(f"sqlite:///{db_file}") as store:
        [run] = store.runs("cam")
        visits = store.visits(camera="cam")
    assert run["ended_at"] is not None and not run["interrupted"]
    assert visits and all(v.closed and not v.interrupted for v in visits)


# --- sources -----------------------------------------------------------------------------------


def test_a_video_that_ends_early_says_so(tmp_path):
    clip = tmp_path / "cut.mp4"
    write_video(clip, 100)
    data = clip.read_bytes()
    clip.write_bytes(data[: int(len(data) * 0.6)])  # moov first (faststart): the header promises 100
    res = tiltwatch("analyze", clip, "--out", tmp_path / "o", "-q", "--output", "jsonl")
    assert res.returncode == 0, res.stderr
    assert "ended early" in res.stderr and "of the 100 frames" in res.stderr


def test_a_matroska_file_that_ends_early_says_so_by_its_duration(tmp_path):
    """Matroska's header gives a duration, not a frame count: 4 s promised, about half there."""
    whole, cut = tmp_path / "whole.mkv", tmp_path / "cut.mkv"
    write_video(whole, 100, faststart=False)
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.55)])
    from fractions import Fraction

    late = tmp_path / "late.mkv"  # whole, but its timestamps start at 10 s (a DVR's file): its duration says 14
    with av.open(str(late), "w") as f:
        stream = f.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for i in range(100):
            frame = av.VideoFrame.from_ndarray(np.full((120, 160, 3), i * 2, np.uint8), format="bgr24")
            frame.pts, frame.time_base = 250 + i, Fraction(1, 25)
            f.mux(stream.encode(frame))
        f.mux(stream.encode())
    for clip, early in ((whole, False), (cut, True), (late, False)):
        res = tiltwatch("analyze", clip, "--out", tmp_path / clip.stem, "-q", "--output", "jsonl")
        assert res.returncode == 0, res.stderr
        said = [line for line in res.stderr.splitlines() if "ended early" in line]
        assert len(said) == early and (not early or "of the 4.0 s its header gives" in said[0]), res.stderr


def test_a_camera_index_beyond_any_camera_is_one_line(tmp_path):
    res = tiltwatch("analyze", "99999999999999999999", "--out", tmp_path / "o", "-q")  # OpenCV: int overflow
    assert one_line_error(res) == "error: 99999999999999999999: not a camera index (0 to 9999) and no such file"


def test_a_skipped_file_is_reported_once_and_the_version_is_there(tmp_path, astronaut):
    import cv2

    folder = tmp_path / "imgs"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.jpg"), astronaut)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    res = tiltwatch("analyze", folder, "--out", tmp_path / "o", "-q")
    assert res.returncode == 0, res.stderr
    assert sum("broken.jpg" in line for line in res.stderr.splitlines()) == 1, res.stderr
    res = tiltwatch("--version")
    assert res.returncode == 0 and res.stdout.startswith("tiltwatch ")


def test_a_broken_packet_is_one_line_of_ours_and_keeps_its_frames_place(tmp_path):
    """Two frames of an MJPEG clip replaced by garbage: each is said once, in our words (no FFmpeg
    log line, no errno), and the other frames keep their positions in the source."""
    clip = tmp_path / "two-broken.mkv"
    with av.open(str(clip), "w") as out:
        stream = out.add_stream("mjpeg", rate=25)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuvj420p"
        for i in range(20):
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.full((120, 160, 3), i * 9, np.uint8), "bgr24")):
                if i in (5, 11):  # a JPEG start, then nothing a decoder can use
                    bad = av.Packet(b"\xff\xd8\xff\xdb" + bytes(range(256)) * 3)
                    bad.pts, bad.dts, bad.time_base, bad.stream = packet.pts, packet.dts, packet.time_base, stream
                    packet = bad
                out.mux(packet)
        out.mux(stream.encode())
    res = tiltwatch("analyze", clip, "--out", tmp_path / "o", "-q", "--output", "jsonl")
    assert res.returncode == 0, res.stderr
    assert res.stderr.splitlines() == [
        f"skipped: {clip}: frame {i} could not be decoded (Invalid data found when processing input)" for i in (5, 11)
    ]
    assert "18 frames" in res.stdout and "2 unreadable frames or files skipped" in res.stdout
    lines = (tmp_path / "o" / "results.jsonl").read_text().splitlines()
    assert [json.loads(line)["frame"] for line in lines] == [i for i in range(20) if i not in (5, 11)]


def test_damaged_pictures_get_our_line_only_not_libpngs_or_libjpegs(tmp_path):
    """A PNG whose data fails its CRC, and a JPEG with junk before its end marker: libpng and
    libjpeg print their own complaints on file descriptor 2; the user sees only ours."""
    import cv2

    img = np.random.default_rng(0).integers(0, 255, (64, 80, 3)).astype(np.uint8)
    png = bytearray(cv2.imencode(".png", img)[1].tobytes())
    png[png.find(b"IDAT") + 40] ^= 0xFF
    jpg = cv2.imencode(".jpg", img)[1].tobytes()
    (tmp_path / "crc.png").write_bytes(bytes(png))
    (tmp_path / "junk.jpg").write_bytes(jpg[:-2] + b"\0" * 500 + jpg[-2:])
    res = tiltwatch("analyze", tmp_path / "crc.png", "--out", tmp_path / "a", "-q")
    assert res.stderr == f"error: {tmp_path / 'crc.png'}: not an image or corrupt\n" and res.returncode == 2
    res = tiltwatch("analyze", tmp_path / "junk.jpg", "--out", tmp_path / "b", "-q")
    assert res.returncode == 0 and res.stderr == ""  # (libjpeg reads it, saying "Corrupt JPEG data")


def test_what_others_write_while_a_decoder_is_quieted_is_kept(capfd):
    """The descriptor is held, not muted: another thread's line written meanwhile comes out after."""
    import threading

    from tiltwatch.native import DECODER_LINES, quiet_native_stderr

    with quiet_native_stderr(drop=DECODER_LINES):
        os.write(2, b"libpng error: IDAT: CRC error\n")
        writer = threading.Thread(target=lambda: os.write(2, b"WARNING: ours, from another thread\n"))
        writer.start()
        writer.join()
    assert capfd.readouterr().err == "WARNING: ours, from another thread\n"


# --- a frame that raises anything is skipped, not the end of a 24/7 run -------------------------


def test_a_frame_that_raises_anything_is_skipped_counted_and_logged_once(caplog):
    from tiltwatch import Analyzer
    from tiltwatch.pipeline import run
    from tiltwatch.sources.sample import SampleSource

    calls = {"n": 0}

    def flaky_staff_filter(face):  # a bug in a stage: raises on frames 3 to 7
        calls["n"] += 1
        if 3 <= calls["frame"] <= 7:
            raise ValueError("alignment points coincide")
        return None

    an = Analyzer(emotion=False, mesh=False)  # (no mesh: the detector runs on every frame)
    an.exclude = flaky_staff_filter
    calls["frame"], detect = -1, an.detector.detect

    def counting_detect(image):
        calls["frame"] += 1
        return detect(image)

    an.detector.detect = counting_detect
    with caplog.at_level(logging.WARNING, logger="tiltwatch.pipeline.runner"):
        stats = run(SampleSource(seconds=1, fps=15), an, [], progress=False, threaded=False)
    assert stats.failed == 5 and stats.frames == 10
    assert stats.causes == {"ValueError: alignment points coincide": 5}
    assert sum("alignment points coincide" in r.getMessage() for r in caplog.records) == 1
    # every frame failing: the run stops with one line, not after the whole source
    an.exclude = lambda face: 1 / 0
    with pytest.raises(InputError, match="50 frames in a row could not be analysed"):
        run(SampleSource(seconds=8, fps=15), an, [], progress=False, threaded=False)


def test_a_live_stream_skips_a_frame_that_raises_and_fails_only_after_many_in_a_row(monkeypatch):
    from tiltwatch.server import streams
    from tiltwatch.server.settings import StreamSpec

    real, raising = streams.build_analyzer, {"every": 3, "faces": 0}

    def flaky_analyzer(*args, **kwargs):  # its staff filter raises on every third face it sees
        an = real(*args, **kwargs)

        def exclude(face):
            raising["faces"] += 1
            if raising["faces"] % raising["every"] == 0:
                raise ValueError("alignment points coincide")

        an.exclude = exclude
        return an

    def wait_until(predicate, what):
        end = time.monotonic() + 120
        while not predicate():
            assert time.monotonic() < end, f"no {what} after 120 s"
            time.sleep(0.2)

    monkeypatch.setattr(streams, "build_analyzer", flaky_analyzer)
    live = streams.LiveStream(StreamSpec(id="cam", source="sample", loop=True), None, None, lambda message: None)
    live.start()
    try:
        wait_until(lambda: live.frames >= 12 and live.failed_frames >= 2, "frames")
        status = live.status()
        assert status["state"] == "running" and status["last_error"] is None and status["failed_frames"] >= 2
    finally:
        live.stop()
    raising["every"] = 1  # every frame fails: the stream fails, in one line
    live.start()
    wait_until(lambda: live.state == "failed", "failure")
    assert live.last_error == "stream cam: 50 frames in a row could not be analysed (last: alignment points coincide)"
    live.stop()


def test_long_runs_keep_bounded_timings_and_each_result_its_own(astronaut):
    from tiltwatch import Analyzer
    from tiltwatch.pipeline.analyzer import TIMINGS_KEPT

    an = Analyzer(emotion=False, mesh=False, track=False)
    small = astronaut[::4, ::4].copy()
    for i in range(TIMINGS_KEPT + 200):
        result = an.analyze(small, index=i)
    assert all(len(v) <= TIMINGS_KEPT for v in an.timings.values())
    assert set(result.speed) >= {"detect", "pose"} and all(v >= 0 for v in result.speed.values())


# --- store and report: commands that only read never create a store ---------------------------


def test_retention_says_what_it_purged_and_keeps_the_run_being_written(tmp_path):
    """Footage analysed with an old ``--start-time`` is older than a short retention at once: the
    next run's automatic purge must say what it deleted, and must never delete that run's own rows."""
    from tiltwatch.store import Store

    site, db = tmp_path / "site.yaml", f"sqlite:///{tmp_path / 'x.db'}"
    site.write_text(HAPPY_TILT_SITE + "retention_days: 1\n")
    old = ("analyze", "sample", "--site", site, "--db", db, "--start-time", "2026-01-01T10:00:00Z")
    first = tiltwatch(*old, "--max-frames", 30, "-q", "--output", "jsonl", "--out", tmp_path / "a")
    assert first.returncode == 0 and "retention" not in first.stderr, first.stderr  # nothing old yet
    with Store(db) as store:
        before = len(store.observations(camera="sample"))
        first_runs = {r["run_id"] for r in store.runs("sample")}
    second = tiltwatch(*old, "--max-frames", 30, "-q", "--output", "jsonl", "--out", tmp_path / "b")
    assert second.returncode == 0, second.stderr
    said = [line for line in second.stderr.splitlines() if line.startswith("retention (1 days): deleted")]
    assert len(said) == 1 and f"{before} observations" in said[0], second.stderr
    with Store(db) as store:
        kept, visits = store.observations(camera="sample"), store.visits(camera="sample")
        runs = store.runs("sample")
    assert before > 0 and len(kept) == before  # the second run's own, as many as the first wrote
    assert visits and {v.run_id for v in visits} == {r["run_id"] for r in runs} - first_runs  # its visits alone


def test_report_and_purge_on_a_mistyped_store_create_nothing(tmp_path):
    db = tmp_path / "mistyped.db"
    out, csv_dir = tmp_path / "reports" / "day" / "r.html", tmp_path / "csv"
    base = ("report", "--db", f"sqlite:///{db}", "--camera", "c", "--date", "2026-01-01", "--out", out)
    assert "no store at" in one_line_error(tiltwatch(*base, "--csv", csv_dir))
    assert "no store at" in one_line_error(tiltwatch("purge", "--db", f"sqlite:///{db}", "--days", "1"))
    assert not db.exists() and not (tmp_path / "reports").exists() and not csv_dir.exists()  # no folders either


def test_report_outputs_are_checked_first(tmp_path):
    from tiltwatch.store import Store

    db = f"sqlite:///{tmp_path / 's.db'}"
    Store(db).close()
    (tmp_path / "folder").mkdir()
    (tmp_path / "a-file").write_text("x")
    base = ("report", "--db", db, "--camera", "c", "--date", "2026-01-01")
    assert "is a folder" in one_line_error(tiltwatch(*base, "--out", tmp_path / "folder"))
    assert "is a file" in one_line_error(tiltwatch(*base, "--out", tmp_path / "r.html", "--csv", tmp_path / "a-file"))
    msg = one_line_error(tiltwatch(*base, "--out", tmp_path / "a-file" / "day" / "r.html"))
    assert msg == f"error: {tmp_path / 'a-file' / 'day'}: cannot write here ({tmp_path / 'a-file'} is a file)"


# --- site files --------------------------------------------------------------------------------


SITE = (
    "cameras:\n  - id: cam-1\n    zones:\n"
    "      - {name: t, kind: table, polygon: [[0, 0], [100, 0], [100, 100], [0, 100]]}\n"
)


def test_a_site_file_that_is_not_utf8_is_one_line(tmp_path):
    from tiltwatch import ConfigError
    from tiltwatch.analytics.site import load_site

    site = tmp_path / "site.yaml"
    site.write_bytes(SITE.replace("t,", "t\xe9ble,").encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_site(site)
    msg = one_line_error(
        tiltwatch(
            "analyze", "sample", "--site", site, "--db", f"sqlite:///{tmp_path / 'x.db'}", "--out", tmp_path / "o", "-q"
        )
    )
    assert "not UTF-8" in msg and str(site) in msg
    served = tiltwatch("serve", "--site", site, "--db", f"sqlite:///{tmp_path / 'y.db'}", "--port", 1)
    msg = one_line_error(served)  # (refused before it listens: port 1 is never bound)
    assert "not UTF-8" in msg and str(site) in msg


def test_serve_refuses_a_key_file_not_in_utf8_and_a_media_folder_that_is_not_one(tmp_path):
    keys = tmp_path / "keys.txt"
    keys.write_bytes("k\xe9y-0123456789abcdefgh\n".encode("latin-1"))
    base = ("serve", "--db", f"sqlite:///{tmp_path / 'y.db'}", "--port", 1, "--no-sample")
    msg = one_line_error(tiltwatch(*base, "--api-key-file", keys))
    assert msg == f"error: {keys}: the API key file is not UTF-8 text (byte 1); keys are ASCII"
    (tmp_path / "a-file").write_text("x")
    assert "no such folder" in one_line_error(tiltwatch(*base, "--media-dir", tmp_path / "missing"))
    assert "is not a folder" in one_line_error(tiltwatch(*base, "--media-dir", tmp_path / "a-file"))


def test_zones_that_cross_themselves_are_refused_and_zones_off_the_frame_named(tmp_path):
    from tiltwatch import ConfigError
    from tiltwatch.analytics.site import load_site

    site = tmp_path / "site.yaml"
    site.write_text(
        SITE.replace("[[0, 0], [100, 0], [100, 100], [0, 100]]", "[[0, 0], [100, 100], [100, 0], [0, 100]]")
    )
    with pytest.raises(ConfigError, match="edges 1 and 3 cross"):
        load_site(site)
    for flat in ("[[0, 0], [100, 0], [200, 0]]", "[[7, 7], [7, 7], [7, 7]]"):  # a line, one point: no inside
        site.write_text(SITE.replace("[[0, 0], [100, 0], [100, 100], [0, 100]]", flat))
        with pytest.raises(ConfigError, match="encloses no area"):
            load_site(site)
    site.write_text(
        SITE.replace("[[0, 0], [100, 0], [100, 100], [0, 100]]", "[[5000, 0], [5100, 0], [5100, 100], [5000, 100]]")
    )
    res = tiltwatch(
        "analyze",
        "sample",
        "--site",
        site,
        "--db",
        f"sqlite:///{tmp_path / 'x.db'}",
        "--out",
        tmp_path / "o",
        "-q",
        "--max-frames",
        "2",
        "--camera",
        "cam-1",
    )
    assert res.returncode == 0, res.stderr
    assert res.stderr.count("zone 't' lies wholly outside the 960x540 frame") == 1, res.stderr


def test_a_zone_off_the_frame_is_said_once_across_a_streams_restarts(tmp_path, caplog):
    """A live stream builds a new analytics sink each time it restarts: the zone is still named once."""
    from tiltwatch.analytics.sink import AnalyticsSink
    from tiltwatch.analytics.site import load_site
    from tiltwatch.store import Store
    from tiltwatch.types import FrameResult

    site = tmp_path / "site.yaml"
    site.write_text(
        SITE.replace("cam-1", "cam-restarts").replace(
            "[[0, 0], [100, 0], [100, 100], [0, 100]]", "[[5000, 0], [5100, 0], [5100, 99], [5000, 99]]"
        )
    )
    site = load_site(site)
    frame = FrameResult(index=0, timestamp=0.0, width=640, height=360, faces=[])
    with Store(f"sqlite:///{tmp_path / 'x.db'}") as store, caplog.at_level(logging.WARNING):
        for _ in range(3):  # three starts of the same camera
            sink = AnalyticsSink(store, site, "cam-restarts", "rtsp://cam")
            sink.write(None, frame)
            sink.close()
    assert sum("lies wholly outside the 640x360 frame" in r.getMessage() for r in caplog.records) == 1


# --- one wiring: a video job honours its camera's settings --------------------------------------


def test_a_video_job_runs_with_its_site_cameras_tiles(tmp_path):
    from tiltwatch.analytics.site import load_site
    from tiltwatch.server.jobs import JobManager
    from tiltwatch.store import Store

    site = tmp_path / "site.yaml"
    site.write_text(SITE.replace("  - id: cam-1\n", "  - id: cam-1\n    detect_tiles: 3\n"))
    clip = tmp_path / "clip.mp4"
    write_video(clip, 5)
    with Store(f"sqlite:///{tmp_path / 's.db'}") as store:
        jobs = JobManager(tmp_path / "data", store, load_site(site), annotate=False)
        try:
            upload = jobs.incoming_path()
            upload.write_bytes(clip.read_bytes())
            job = jobs.create(upload, "clip.mp4", camera="cam-1", start_time=None)
            jobs.submit(job)
            deadline = time.monotonic() + 120
            while jobs.get(job.id).status in ("queued", "running"):
                assert time.monotonic() < deadline
                time.sleep(0.1)
        finally:
            jobs.close()
    done = jobs.get(job.id).to_dict()
    assert done["status"] == "done", done
    assert done["analyzer"]["detect_tiles"] == 3 and done["analyzer"]["detect_every"] == 3  # camera + preset


def test_after_sigkill_the_video_plays_and_the_next_run_closes_the_open_visits(tmp_path):
    from tiltwatch.store import Store

    proc, db_file, out = analyze_with_a_store(tmp_path)  # (killed long before the clip's end)
    deadline = time.monotonic() + 180
    # until the video has fragments (a keyframe every 2 s) and the store an open visit
    while not (any(p.stat().st_size > 60_000 for p in out.glob(".partial-*/annotated.mp4")) and open_visits(db_file)):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.kill()
    proc.communicate(timeout=60)
    [staged] = out.glob(".partial-*/annotated.mp4")
    assert playable_frames(staged) >= 15  # fragmented MP4: plays up to its last whole fragment
    with Store(f"sqlite:///{db_file}") as store:
        assert [r for r in store.visits() if not r.closed]  # left open by the killed run
    # its process is gone from this host: `purge` closes it at once (as a service restarted right away
    # needs), marked interrupted, and the day's report counts the visits it cut short
    res = tiltwatch("purge", "--db", f"sqlite:///{db_file}", "--days", "3650")
    assert res.returncode == 0 and "closed 1 runs left open by a killed process" in res.stdout, res.stdout
    with Store(f"sqlite:///{db_file}") as store:
        visits = store.visits()
        assert visits and all(v.closed and v.interrupted for v in visits)
        day = time.strftime("%Y-%m-%d", time.gmtime(visits[0].start))  # (the report's days are UTC)
    report = tiltwatch(
        "report", "--db", f"sqlite:///{db_file}", "--camera", "cam", "--date", day, "--out", tmp_path / "r.html"
    )
    assert report.returncode == 0, report.stderr
    assert f"{len(visits)} visits cut short by an interrupted run" in (tmp_path / "r.html").read_text()
    # the next run into the folder names the killed run's partial results
    res = tiltwatch("analyze", "sample", "--out", out, "-q", "--max-frames", "2")
    assert res.returncode == 0 and "partial results of a run that was killed" in res.stderr, res.stderr


def test_a_bad_input_is_reported_before_the_models_stack_loads(tmp_path):
    # start-up is part of every run: a missing file must not wait for mediapipe, PyAV or onnxruntime
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom tiltwatch.cli import app\n"
        f"r = CliRunner().invoke(app, ['analyze', {str(tmp_path / 'missing.mp4')!r}, '-q'])\n"
        "heavy = [m for m in ('mediapipe', 'av', 'onnxruntime', 'supervision') if m in sys.modules]\n"
        "print(r.exit_code, heavy)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.stdout.strip() == "2 []", (res.stdout, res.stderr)


def test_a_stage_can_be_swapped_for_another_backend(astronaut):
    from tiltwatch import Analyzer
    from tiltwatch.pipeline.stages import Detector
    from tiltwatch.vision.haar import HaarFaceDetector

    haar = HaarFaceDetector()
    assert isinstance(haar, Detector)
    an = Analyzer(detector=haar, track=False, smooth_tau=0)
    assert an.detector is haar
    [face] = an.analyze(astronaut).faces  # OpenCV's detector, then the same mesh, pose and emotion
    assert face.landmarks is not None and face.emotion is not None and abs(face.pose.yaw) < 20


def test_a_move_that_fails_while_results_go_in_leaves_no_run_json_over_a_mix(tmp_path, monkeypatch):
    """--overwrite: should moving the new files in fail half-way, no run.json may call the folder's
    mix of old and new files a complete run, and every new file not moved in stays in staging."""
    from tiltwatch.sinks import folder as folder_module
    from tiltwatch.sinks.folder import OutputFolder

    names = ["results.jsonl", "summary.csv"]
    first = OutputFolder(tmp_path / "o", names, overwrite=False)
    for name in names:
        (first.staging / name).write_text(f"old {name}\n")
    first.commit({"status": "complete"})
    second = OutputFolder(tmp_path / "o", names, overwrite=True)
    for name in names:
        (second.staging / name).write_text(f"new {name}\n")
    real = os.replace

    def failing_replace(src, dst):
        if Path(src).name == "summary.csv":
            raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(folder_module.os, "replace", failing_replace)
    with pytest.raises(OutputError, match="cannot move the results in .No space left on device.; they are in"):
        second.commit({"status": "complete"})
    out = tmp_path / "o"
    assert not (out / "run.json").exists()  # the folder no longer claims a complete run
    assert (out / "results.jsonl").read_text() == "new results.jsonl\n"
    assert (second.staging / "summary.csv").read_text() == "new summary.csv\n"  # not lost
    assert (out / "summary.csv").read_text() == "old summary.csv\n"  # replaced only by a move that worked


def test_a_failed_run_that_analysed_nothing_leaves_no_staging_folder(tmp_path):
    """A run that fails before its first frame is analysed (the video's header may already be
    written) keeps nothing, so the next run is not told of a killed run's partial results."""
    from tiltwatch.sinks.folder import OutputFolder

    folder = OutputFolder(tmp_path / "o", ["results.jsonl", "summary.csv", "annotated.mp4"], overwrite=False)
    (folder.staging / "results.jsonl").write_bytes(b"")
    (folder.staging / "annotated.mp4").write_bytes(b"\0\0\0\x20ftypisom")  # a header, no frame
    assert folder.keep_partial() is None and not folder.staging.exists()
    again = OutputFolder(tmp_path / "o", ["results.jsonl"], overwrite=False)
    assert again.leftovers == []
    (again.staging / "results.jsonl").write_text('{"index": 0}\n')  # one frame analysed: kept
    assert again.keep_partial() == again.staging
