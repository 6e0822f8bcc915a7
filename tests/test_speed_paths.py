"""The speed-ups must not change results beyond noise."""

import json

from tiltwatch import Analyzer
from tiltwatch.pipeline import run
from tiltwatch.pipeline.bench import agreement
from tiltwatch.sinks import JsonlSink
from tiltwatch.sources import SampleSource


def test_threaded_run_equals_plain_run(tmp_path):
    outs = []
    for threaded in (False, True):
        path = tmp_path / f"{threaded}.jsonl"
        stats = run(SampleSource(seconds=3), Analyzer(fps=15), [JsonlSink(path)], progress=False, threaded=threaded)
        assert stats.frames == 45
        outs.append([json.loads(line) for line in path.read_text().splitlines()])
    assert outs[0] == outs[1]


def test_landmark_following_agrees_with_detecting_every_frame():
    r = agreement("sample", 60, {"detect_every": 3})
    assert r["recall_vs_slow"] >= 0.9
    assert r["label_agreement"] >= 0.95
    assert max(r["pose_mean_abs_diff_deg"].values()) < 3.0
