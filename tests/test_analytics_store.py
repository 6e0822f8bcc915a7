"""Analytics into a real store: the sample clip through the CLI, and a synthetic sequence through the sink."""

import csv
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from tiltwatch.analytics.sink import AnalyticsSink
from tiltwatch.analytics.site import load_site
from tiltwatch.emotions import EMOTIONS
from tiltwatch.store import Store
from tiltwatch.tracking.smoothing import TrackSmoother

from .conftest import tiltwatch
from .test_analytics import frame, probs, tracked

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
T0 = 1795268000.0  # 2026-11-21T10:13:20Z


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory):
    d = tmp_path_factory.mktemp("site")
    db = f"sqlite:///{d / 'floor.db'}"
    res = tiltwatch(
        "analyze",
        "sample",
        "--out",
        d,
        "--site",
        EXAMPLES / "site_sample.yaml",
        "--db",
        db,
        "--start-time",
        "2026-11-21T10:13:20Z",
        "--max-frames",
        60,
        "-q",
        "--output",
        "jsonl",
    )
    assert res.returncode == 0, res.stderr
    return d, db


def test_staff_zone_holds_no_emotion_data(sample_store):
    d, db = sample_store
    with Store(db) as store:
        visits, obs = store.visits(camera="sample"), store.observations(camera="sample")
        counts = store.zone_counts(camera="sample", zone="bar")
    assert visits and obs
    assert all(v.zones == ["table-1"] for v in visits)  # only the patron zone
    assert {o.zone for o in obs} == {"table-1"}
    assert counts and max(c.count for c in counts) == 1  # the bartender: counted, nothing else
    rows = [json.loads(line) for line in (d / "results.jsonl").read_text().splitlines()]
    assert all(f["box"][0] + f["box"][2] / 2 < 600 for r in rows for f in r["faces"])  # no face from the bar
    assert sum(r["excluded"].get("bar", 0) for r in rows) > 0


def test_report_has_its_plots_and_csv(sample_store, tmp_path):
    _, db = sample_store
    res = tiltwatch(
        "report",
        "--db",
        db,
        "--camera",
        "sample",
        "--date",
        "2026-11-21",
        "--out",
        tmp_path / "r.html",
        "--csv",
        tmp_path / "csv",
    )
    assert res.returncode == 0, res.stderr
    page = (tmp_path / "r.html").read_text()
    assert page.count("src='data:image/png;base64,") == 4  # timelines, heatmap, attention, staff occupancy
    assert "No alerts." in page
    with Store(db) as store:
        visits = store.visits(camera="sample")
    # each visit a row of the page's table, with its resting face as learned (or "-" before it is)
    assert page.count("<tr><td>#") == len(visits)
    for v in visits:
        top = sorted(zip(v.baseline, EMOTIONS), reverse=True)[:2] if v.baseline else []
        resting = ", ".join(f"{e} {p:.2f}" for p, e in top) or "-"
        row = f"<tr><td>#{v.track_id}</td><td>{datetime.fromtimestamp(v.start, UTC):%H:%M:%S}</td>"
        assert row in page
        assert f"<td>{resting} ({v.baseline_frames} frames)</td>" in page.split(row)[1].split("</tr>")[0] + "</tr>"
    assert (tmp_path / "csv" / "visits.csv").read_text().count("\n") >= 2
    with open(tmp_path / "csv" / "visits.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {"baseline_frames", "peak_tilt", "peak_deviation", "baseline_sadness"} <= set(rows[0])
    assert all(float(r["peak_tilt"]) >= 0 for r in rows)
    res = tiltwatch("report", "--db", db, "--camera", "nope", "--date", "2026-11-21", "--out", tmp_path / "x.html")
    assert res.returncode == 2 and "camera 'nope' has no data" in res.stderr


def test_analyze_site_errors_are_one_line(tmp_path):
    bad = tmp_path / "site.yaml"
    bad.write_text((EXAMPLES / "site_sample.yaml").read_text().replace("kind: staff", "kind: stuff"))
    res = tiltwatch("analyze", "sample", "--out", tmp_path, "--site", bad, "--db", f"sqlite:///{tmp_path}/x.db")
    assert res.returncode == 2 and "cameras.0.zones.1.kind" in res.stderr and "line 13" in res.stderr
    res = tiltwatch("analyze", "sample", "--out", tmp_path, "--site", EXAMPLES / "site_sample.yaml")
    assert res.returncode == 2 and "--site and --db go together" in res.stderr


def test_tilt_alert_stored_where_the_smoothed_values_cross(tmp_path):
    """A patron at table-1 turns angry for 6 s; the raw anger is noisy, the smoothed one decides."""
    site = load_site(EXAMPLES / "site_sample.yaml")  # tilt: 0.5 for 3 s, release 0.35
    with Store(f"sqlite:///{tmp_path / 'a.db'}", batch_size=20) as store:
        sink = AnalyticsSink(store, site, "sample", "synthetic", start_time=T0)
        smoother = TrackSmoother(tau=0.5)
        rng = np.random.default_rng(1)
        smoothed_anger = []
        for i in range(150):  # 15 s at 10 fps; angry between 4 s and 10 s
            t = i * 0.1
            level = 0.75 if 4.0 <= t < 10.0 else 0.1
            noisy = float(np.clip(level + rng.normal(0, 0.15), 0, 1))
            face = tracked(1, [100, 100, 160, 160], probs(anger=noisy))
            smoother.update([face], t)
            smoothed_anger.append((t, face.smoothed.emotion.probs[4]))
            sink.write(None, frame(t, [face]))
        sink.close()
        alerts = store.alerts(camera="sample", kind="tilt")
    assert len(alerts) == 1
    a = alerts[0]
    first_above = next(t for t, v in smoothed_anger if v >= 0.5)
    first_release = next(t for t, v in smoothed_anger if t > first_above + 3 and v < 0.35)
    assert a.start == pytest.approx(T0 + first_above) and a.end == pytest.approx(T0 + first_release)
    assert a.zone == "table-1" and a.evidence["emotion"] == "anger" and a.value >= 0.5
