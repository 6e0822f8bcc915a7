"""The command line as a user meets it: outputs, schema, exit codes and one-line errors."""

import csv
import json

import av
import cv2
import pytest

from tiltwatch.emotions import EMOTIONS
from tiltwatch.sinks.draw import annotate
from tiltwatch.sources import SampleSource
from tiltwatch.types import SCHEMA_VERSION
from tiltwatch.vision.detector import FaceDetector

from .conftest import tiltwatch


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    res = tiltwatch("analyze", "sample", "--out", out, "--max-frames", 60, "-q")
    assert res.returncode == 0, res.stderr
    return out, res


def test_sample_run_writes_three_outputs_and_prints_fps(sample_run):
    out, res = sample_run
    assert "fps" in res.stdout and "60 frames" in res.stdout
    for name in ("results.jsonl", "summary.csv", "annotated.mp4"):
        assert (out / name).stat().st_size > 0


def test_jsonl_schema_carries_everything_the_seed_batch_api_returned(sample_run):
    out, _ = sample_run
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 60 and [r["frame"] for r in rows] == list(range(60))
    r = rows[-1]
    assert r["schema"] == SCHEMA_VERSION and r["face_present"] is True and r["timestamp"] > 0
    f = r["faces"][0]
    assert set(f) >= {"track_id", "box", "score", "pose", "emotion", "smoothed"}
    assert len(f["box"]) == 4 and f["box"][2] > 0 and f["box"][3] > 0  # x, y, w, h
    assert set(f["pose"]) == {"yaw", "pitch", "roll"}
    probs = f["emotion"]["probs"]
    assert len(probs) == 8 and sum(probs.values()) == pytest.approx(1.0, abs=1e-3)
    assert f["emotion"]["label"] == max(probs, key=probs.get)
    assert set(f["smoothed"]) == {"pose", "emotion"}


def test_summary_has_one_row_per_track(sample_run):
    out, _ = sample_run
    rows = list(csv.DictReader((out / "summary.csv").open()))
    ids = {
        f["track_id"]
        for line in (out / "results.jsonl").read_text().splitlines()
        for f in json.loads(line)["faces"]
        if f["track_id"] is not None
    }
    assert {int(r["track_id"]) for r in rows} == ids
    for r in rows:
        assert float(r["last_seen_s"]) >= float(r["first_seen_s"]) and int(r["frames"]) > 0
        assert r["dominant_emotion"] in EMOTIONS


def test_annotated_video_is_h264_with_every_frame(sample_run):
    out, _ = sample_run
    with av.open(str(out / "annotated.mp4")) as c:
        s = c.streams.video[0]
        assert s.codec_context.name == "h264" and s.codec_context.pix_fmt == "yuv420p"
        assert sum(1 for _ in c.decode(s)) == 60


def test_blur_hides_faces_from_a_detector():
    frame = SampleSource().render(60)
    det = FaceDetector()
    from tiltwatch import Analyzer

    result = Analyzer(track=False).analyze(frame)
    assert len(result.faces) >= 2
    assert det.detect(annotate(frame, result, blur=True)) == []


def test_existing_results_are_not_overwritten(sample_run):
    out, _ = sample_run
    before = (out / "results.jsonl").read_bytes()
    res = tiltwatch("analyze", "sample", "--out", out, "--max-frames", 2, "-q")
    assert res.returncode == 2 and "already exists" in res.stderr
    assert (out / "results.jsonl").read_bytes() == before


@pytest.mark.parametrize(
    "make,msg",
    [
        (lambda p: p / "missing.mp4", "missing.mp4: no such file or folder"),
        (lambda p: (p / "junk.png").write_text("x") and p / "junk.png", "junk.png: not an image or corrupt"),
        # a closed port: FFmpeg (inside OpenCV) printed its own "[tcp @ 0x...]" line before ours
        (lambda p: "rtsp://127.0.0.1:1/cam", "rtsp://127.0.0.1:1/cam: cannot open stream"),
    ],
)
def test_bad_source_is_one_line_and_nonzero(tmp_path, make, msg):
    res = tiltwatch("analyze", make(tmp_path), "--out", tmp_path / "o", "-q")
    assert res.returncode != 0
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert lines == [f"error: {lines[0][7:]}"] and msg in lines[0]
    assert "Traceback" not in res.stderr


def test_folder_with_a_broken_image_finishes_and_counts_it(tmp_path):
    from skimage import data

    (tmp_path / "imgs").mkdir()
    cv2.imwrite(str(tmp_path / "imgs" / "a.jpg"), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    (tmp_path / "imgs" / "b.jpg").write_bytes(b"\xff\xd8broken")
    res = tiltwatch(
        "analyze", tmp_path / "imgs", "--out", tmp_path / "o", "-q", "--emotion-tta"
    )  # photos: TTA is cheap
    assert res.returncode == 0, res.stderr
    assert "1 frames" in res.stdout and "1 unreadable" in res.stdout and "b.jpg" in res.stderr


def test_help_explains_sources():
    res = tiltwatch("analyze", "--help")
    assert res.returncode == 0 and "webcam index" in res.stdout and "--stride" in res.stdout


def test_models_lists_every_shipped_model_with_its_figures():
    from tiltwatch.vision.emotion import auto_model, shipped_models

    res = tiltwatch("models")
    assert res.returncode == 0, res.stderr
    first, *lines = res.stdout.strip().splitlines()
    assert first.startswith("auto (the analyzer's default model) runs ")
    rows = [line.split("\t") for line in lines]
    assert [r[0] for r in rows] == shipped_models()
    assert [r[0] for r in rows if r[-1] == "(auto here)"] == [auto_model()[0]]
    assert all(r[3].startswith("FER+ test acc 0.") and r[5].endswith("ms/face") for r in rows)


def test_bench_reports_stages_and_the_tta_config(tmp_path):
    res = tiltwatch(
        "bench", "sample", "--streams", 1, "--frames", 10, "--no-encode", "--emotion-tta", "--json", tmp_path / "b.json"
    )
    assert res.returncode == 0, res.stderr
    run = json.loads((tmp_path / "b.json").read_text())["runs"][0]
    assert run["config"]["emotion_tta"] is True and run["faces_per_frame"] > 0
    assert run["stages"]["emotion"]["median_ms"] > 0 and run["fps_per_stream"] > 0


def test_bench_refuses_zero_streams_and_bad_clips_in_one_line(tmp_path, clip):
    res = tiltwatch("bench", "sample", "--streams", 0, "--frames", 10)
    assert res.returncode == 2 and res.stderr.strip() == "error: --streams: each count must be at least 1, got 0"
    (tmp_path / "notes.mp4").write_text("not a video")
    res = tiltwatch("bench", tmp_path / "notes.mp4", "--streams", 1, "--frames", 10, "--no-encode")
    assert res.returncode == 2 and res.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'notes.mp4'}: cannot open as video (Invalid data found when processing input)"
    ]
    # a clip shorter than asked: the frames measured, not those asked for
    res = tiltwatch("bench", clip, "--streams", 1, "--frames", 100, "--no-encode", "--json", tmp_path / "b.json")
    run = json.loads((tmp_path / "b.json").read_text())["runs"][0]
    assert res.returncode == 0 and run["frames_per_stream"] == 30 and run["frames_asked"] == 100


def test_usage_errors_are_one_line_naming_the_help():
    """A mistyped option, a missing one, a bad value or command: one ``error:`` line, exit 2, no box."""
    from .conftest import tiltwatch

    for args, words in (
        (("analyze", "sample", "--bogus"), "No such option: --bogus"),
        (("eval",), "Missing option '--dataset'"),
        (("eval", "--dataset", "x:y", "--crop", "bad"), "'bad' is not one of"),
        (("bogus",), "No such command 'bogus'"),
    ):
        res = tiltwatch(*args)
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), (args, res.stderr)
        assert words in lines[0] and "--help" in lines[0] and "╭" not in res.stderr
