"""Analytics: site config validation, zones, affect, attention, alerts on synthetic sequences, staff privacy."""

import numpy as np
import pytest

from tiltwatch import Analyzer, ConfigError
from tiltwatch.analytics.affect import attentive, valence_arousal
from tiltwatch.analytics.alerts import AlertEngine
from tiltwatch.analytics.site import AttentionCone, SiteConfig, load_site
from tiltwatch.analytics.visits import VisitBuilder
from tiltwatch.analytics.zones import ZoneMap
from tiltwatch.emotions import EMOTIONS
from tiltwatch.sources import SampleSource
from tiltwatch.types import Emotion, FaceResult, FrameResult, Pose, Smoothed

SITE = """\
site: test floor
cameras:
  - id: cam-1
    zones:
      - name: table-1
        kind: table
        polygon: [[0, 0], [400, 0], [400, 540], [0, 540]]
        attention: {yaw: 0, pitch: 0, half_angle: 25}
      - name: bar
        kind: staff
        polygon: [[600, 0], [960, 0], [960, 540], [600, 540]]
alerts:
  tilt: {threshold: 0.5, release: 0.35, seconds: 2}
"""


def site_file(tmp_path, text=SITE):
    p = tmp_path / "site.yaml"
    p.write_text(text)
    return p


def probs(**kw) -> np.ndarray:
    p = np.zeros(len(EMOTIONS))
    for k, v in kw.items():
        p[EMOTIONS.index(k)] = v
    p[0] += 1 - p.sum()  # the rest is neutral
    return p


def test_site_loads(tmp_path):
    site = load_site(site_file(tmp_path))
    cam = site.camera("cam-1")
    assert [z.name for z in cam.zones] == ["table-1", "bar"] and cam.zones[1].staff
    assert site.camera(None) is cam  # a single camera needs no --camera


def test_a_camera_can_set_its_own_detector_tiles(tmp_path):
    from tiltwatch.config import AnalyzerConfig
    from tiltwatch.pipeline.build import resolve_config

    base = AnalyzerConfig(detect_every=3)
    assert resolve_config(base, load_site(site_file(tmp_path)).camera("cam-1")) == base  # unset: the analyzer's own
    wide = load_site(site_file(tmp_path, SITE.replace("  - id: cam-1\n", "  - id: cam-1\n    detect_tiles: 3\n")))
    config = resolve_config(base, wide.camera("cam-1"))
    assert config.detect_tiles == 3 and config.detect_every == 3
    assert resolve_config(base, wide.camera("cam-1"), {"detect_tiles": 2}).detect_tiles == 2  # a flag wins
    with pytest.raises(ConfigError, match="line 4: cameras.0.detect_tiles"):
        load_site(site_file(tmp_path, SITE.replace("  - id: cam-1\n", "  - id: cam-1\n    detect_tiles: 9\n")))


@pytest.mark.parametrize(
    "bad,expect",
    [
        (SITE.replace("kind: table", "kind: tabel"), "line 6: cameras.0.zones.0.kind"),
        (SITE.replace("half_angle: 25", "half_angel: 25"), "line 8: cameras.0.zones.0.attention.half_angel"),
        (SITE.replace("threshold: 0.5, release: 0.35", "threshold: 0.3, release: 0.35"), "line 13: alerts.tilt"),
        (
            SITE.replace("[[600, 0], [960, 0], [960, 540], [600, 540]]", "[[600, 0], [960, 0]]"),
            "line 11: cameras.0.zones.1.polygon",
        ),
        (SITE.replace("cameras:", "camras:"), "camras"),
        ("cameras: [\n  - id: x\n  zones: oops", "not valid YAML"),
    ],
)
def test_site_errors_name_the_key_and_line(tmp_path, bad, expect):
    with pytest.raises(ConfigError) as err:
        load_site(site_file(tmp_path, bad))
    assert expect in str(err.value) and "\n" not in str(err.value)


def test_unknown_camera_is_named(tmp_path):
    with pytest.raises(ConfigError, match="camera 'nope' is not in the site config"):
        load_site(site_file(tmp_path)).camera("nope")


def test_zones_staff_wins_overlap():
    site = SiteConfig.model_validate(
        {
            "cameras": [
                {
                    "id": "c",
                    "zones": [
                        {"name": "t", "kind": "table", "polygon": [[0, 0], [100, 0], [100, 100], [0, 100]]},
                        {"name": "s", "kind": "staff", "polygon": [[50, 0], [150, 0], [150, 100], [50, 100]]},
                    ],
                }
            ]
        }
    )
    zm = ZoneMap(site.cameras[0])
    assert zm.zone_at(20, 50).name == "t" and zm.zone_at(70, 50).name == "s" and zm.zone_at(200, 50) is None


def test_valence_arousal_on_the_circumplex():
    assert valence_arousal(probs()) == (0.0, 0.0)
    v, a = valence_arousal(probs(happiness=1.0))
    assert v > 0.5 and a > 0
    v, a = valence_arousal(probs(anger=1.0))
    assert v < -0.4 and a > 0.5
    v, a = valence_arousal(probs(sadness=1.0))
    assert v < -0.5 and a < 0


def test_attention_cone():
    cone = AttentionCone(yaw=0, pitch=-20, half_angle=25)
    assert attentive(5, -15, cone) and not attentive(40, -20, cone) and not attentive(0, 20, cone)


def feed(engine, series, zone="table-1", attentive_series=None, dt=0.1):
    alerts = []
    for i, p in enumerate(series):
        att = None if attentive_series is None else attentive_series[i]
        alerts += engine.update("r:1", 1, i * dt, zone, p, att)
    return alerts + engine.close_all(len(series) * dt)


def test_tilt_fires_after_the_duration_and_not_before(tmp_path):
    rules = load_site(site_file(tmp_path)).alerts  # tilt: 0.5 for 2 s, release 0.35
    calm = [probs(anger=0.1)] * 20
    angry = [probs(anger=0.7)] * 30  # 3 s
    brief = [probs(anger=0.7)] * 10  # 1 s: too short
    alerts = feed(AlertEngine(rules, "cam-1"), calm + brief + calm)
    assert alerts == []
    alerts = feed(AlertEngine(rules, "cam-1"), calm + angry + calm)
    assert [a.kind for a in alerts] == ["tilt"]
    a = alerts[0]
    assert a.start == pytest.approx(2.0) and a.end == pytest.approx(5.0) and a.value == pytest.approx(0.7)
    assert a.zone == "table-1" and a.evidence["emotion"] == "anger" and a.evidence["series"]


def test_open_alerts_show_a_tilt_while_it_lasts(tmp_path):
    rules = load_site(site_file(tmp_path)).alerts  # tilt: 0.5 for 2 s, release 0.35
    engine = AlertEngine(rules, "cam-1")
    for i in range(25):  # 2.5 s angry: fired at 2 s, still open
        engine.update("r:1", 7, i * 0.1, "table-1", probs(anger=0.6 + i * 0.01), True)
    (a,) = engine.open_alerts()
    assert (a.kind, a.visit_key, a.track_id, a.zone, a.emotion) == ("tilt", "r:1", 7, "table-1", "anger")
    assert a.start == pytest.approx(0.0) and a.value == pytest.approx(0.84) and a.threshold == 0.5
    engine.update("r:1", 7, 2.6, "table-1", probs(anger=0.1), True)  # below release: closed
    assert engine.open_alerts() == []


def test_tilt_hysteresis_does_not_flicker(tmp_path):
    rules = load_site(site_file(tmp_path)).alerts
    rng = np.random.default_rng(0)
    noisy = [probs(sadness=float(v)) for v in 0.5 + rng.uniform(-0.12, 0.12, 100)]  # 10 s around the threshold
    alerts = feed(AlertEngine(rules, "cam-1"), [probs()] * 5 + noisy + [probs()] * 5)
    tilts = [a for a in alerts if a.kind == "tilt"]
    assert len(tilts) == 1 and tilts[0].evidence["emotion"] == "sadness"
    assert tilts[0].end - tilts[0].start == pytest.approx(10.0, abs=0.3)


def test_disengagement_needs_a_sustained_low_attention(tmp_path):
    rules = load_site(site_file(tmp_path)).alerts  # defaults: < 0.3 over a 5 s window for 10 s
    n = 300  # 30 s
    att = [True] * 100 + [False] * 150 + [True] * 50
    alerts = feed(AlertEngine(rules, "cam-1"), [probs()] * n, attentive_series=att)
    dis = [a for a in alerts if a.kind == "disengagement"]
    assert len(dis) == 1 and dis[0].value == 0.0
    assert 10.0 < dis[0].start < 15.0 and dis[0].end > 25.0


def test_distress_spike_and_cooldown(tmp_path):
    rules = load_site(site_file(tmp_path)).alerts  # rise 0.4 within 1 s to >= 0.6; cooldown 10 s
    seq = [probs()] * 10 + [probs(fear=0.5, sadness=0.3)] * 10 + [probs()] * 10 + [probs(fear=0.8)] * 10
    alerts = [a for a in feed(AlertEngine(rules, "cam-1"), seq) if a.kind == "distress"]
    assert len(alerts) == 1 and alerts[0].start == pytest.approx(0.9) and alerts[0].end == pytest.approx(1.0)
    slow = [probs(fear=min(0.8, i * 0.01)) for i in range(100)]  # a slow drift is no spike
    assert [a for a in feed(AlertEngine(rules, "cam-1"), slow) if a.kind == "distress"] == []


def frame(t, faces):
    return FrameResult(index=int(t * 10), timestamp=t, width=960, height=540, faces=faces)


def tracked(tid, box, p, yaw=0.0):
    e = Emotion(p)
    return FaceResult(
        box=np.array(box, np.float32),
        score=0.9,
        emotion=e,
        pose=Pose(yaw, 0, 0),
        track_id=tid,
        smoothed=Smoothed(Pose(yaw, 0, 0), e),
    )


def test_visits_dwell_attention_and_closing(tmp_path):
    cam = load_site(site_file(tmp_path)).camera("cam-1")
    vb = VisitBuilder(cam, "run1", sample_every=0.5, lost_seconds=1.0)
    obs, visits = [], {}
    for i in range(50):  # 5 s at the table, looking at it half the time
        up = vb.update(
            frame(i * 0.1, [tracked(7, [100, 100, 150, 150], probs(happiness=0.8), yaw=0 if i < 25 else 60)]),
            100 + i * 0.1,
        )
        obs += up.observations
        visits.update({v.visit_key: v for v in up.visits})
    up = vb.update(frame(7.0, []), 107.0)  # gone for 2 s > lost_seconds
    assert up.closed == ["run1:7"]
    v = up.visits[0]
    assert v.closed and v.zones == ["table-1"] and v.dominant == "happiness"
    assert v.dwell_s["table-1"] == pytest.approx(4.9, abs=0.01)
    assert v.attention == pytest.approx(0.5, abs=0.05) and v.mean_valence > 0.5
    assert len(obs) == 10 and all(o.zone == "table-1" for o in obs)


def test_staff_zone_faces_are_never_analysed(tmp_path):
    """The right-hand face of the sample stands in a staff zone: no emotion, no pose, only a count."""
    site = load_site(site_file(tmp_path))
    zones = ZoneMap(site.camera("cam-1"))

    def staff(face):
        z = zones.zone_of_box(face.box)
        return z.name if z is not None and z.staff else None

    calls = []
    an = Analyzer(track=False, exclude=staff)
    predict = an.classifier.predict
    an.classifier.predict = lambda crops, **kw: calls.append(len(crops)) or predict(crops, **kw)
    result = an.analyze(SampleSource().render(30))
    assert result.excluded == {"bar": 1}
    assert all(zones.zone_of_box(f.box).name != "bar" for f in result.faces if zones.zone_of_box(f.box))
    assert calls == [len(result.faces)]  # the staff face never reached the emotion model


def test_abstaining_faces_keep_the_visit_open_but_move_nothing(tmp_path):
    cam = load_site(site_file(tmp_path)).camera("cam-1")
    vb = VisitBuilder(cam, "run1", sample_every=0.5, lost_seconds=1.0)
    vb.update(frame(0.0, [tracked(7, [100, 100, 150, 150], probs(happiness=0.8))]), 100.0)
    for i in range(1, 30):  # 3 s of a poor view: longer than lost_seconds, yet the face is there
        poor = tracked(7, [100, 100, 150, 150], probs(anger=0.9))
        poor.abstained = True
        up = vb.update(frame(i * 0.1, [poor]), 100 + i * 0.1)
        assert up.faces == [] and up.observations == [] and up.closed == []
    visit = vb.close_all()[0]
    assert visit.frames == 1 and visit.dominant == "happiness"


def test_an_alert_on_for_hours_keeps_a_bounded_series_over_its_whole_span():
    from tiltwatch.analytics.alerts import SERIES_KEPT, Hysteresis

    h = Hysteresis(threshold=0.5, release=0.3, seconds=1.0)
    for i in range(36_000):  # 10 hours at one value a second
        assert h.update(float(i), 0.9) is None
        assert len(h.series) <= 2 * SERIES_KEPT
    start, end, peak, series = h.update(36_000.0, 0.0)
    assert (start, end, peak) == (0.0, 36_000.0, 0.9)
    assert series[0][0] == 0.0 and series[-1][0] > 35_000  # evidence spans the whole alert, evenly
