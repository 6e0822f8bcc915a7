"""The per-person baseline: a steady resting face that reads sad or angry raises no tilt alert, a real
change still does, and a track with too few confident observations follows the absolute rule alone.

Synthetic sequences of smoothed probabilities go through the visit builder and the alert engine as
the analytics sink feeds them (no model); the project's sample clip goes through the real pipeline.
"""

import math

import numpy as np
import pytest
import yaml

from tiltwatch import Analyzer, ConfigError
from tiltwatch.analytics.alerts import AlertEngine
from tiltwatch.analytics.baseline import BaselineLearner
from tiltwatch.analytics.sink import AnalyticsSink
from tiltwatch.analytics.site import BaselineRule, SiteConfig, load_site
from tiltwatch.analytics.visits import VisitBuilder
from tiltwatch.emotions import EMOTIONS
from tiltwatch.sources import SampleSource
from tiltwatch.store import Store

from .conftest import HAPPY_TILT_SITE
from .test_analytics import frame, probs, tracked

BOX = [100, 100, 160, 160]
DT = 0.1  # 10 frames a second
SAD, ANGER = EMOTIONS.index("sadness"), EMOTIONS.index("anger")


def site(**baseline) -> SiteConfig:
    """One camera, the default rules (tilt: 0.5 for 3 s, release 0.35, margin 0.2; baseline: 4 s, 10 frames)."""
    return SiteConfig.model_validate({"cameras": [{"id": "cam"}], "baseline": baseline})


def resting_sad(n: int, level: float = 0.6) -> list[np.ndarray]:
    """A face whose rest reads sad at a steady level, with a small wobble (deterministic)."""
    return [probs(sadness=level + 0.04 * math.sin(i / 3)) for i in range(n)]


def run(cfg: SiteConfig, series, quality=None):
    """Feed one track's smoothed probabilities (a frame each) through visits and alerts, as the sink does.

    ``quality``: the faces' quality score, a number or a function of the frame's index.
    Returns the tilt alerts and the closed visit."""
    visits = VisitBuilder(cfg.cameras[0], "r", cfg.sample_every, 2.0, cfg.baseline, cfg.alerts.tilt.emotions)
    engine = AlertEngine(cfg.alerts, "cam")
    alerts = []
    for i, p in enumerate(series):
        face = tracked(1, BOX, p)
        face.quality = quality(i) if callable(quality) else quality
        up = visits.update(frame(i * DT, [face]), i * DT)
        for f in up.faces:
            alerts += engine.update(f.visit_key, f.track_id, i * DT, f.zone, f.probs, f.attentive, f.baseline)
    (visit,) = visits.close_all()
    alerts += engine.close_all(len(series) * DT)
    return [a for a in alerts if a.kind == "tilt"], visit


def spans(alerts) -> list[tuple[float, float, str]]:
    return [(round(a.start, 2), round(a.end, 2), a.evidence["emotion"]) for a in alerts]


def test_a_steady_sad_resting_face_raises_no_tilt_with_its_baseline_but_did_without():
    series = resting_sad(200)  # 20 s at sadness 0.56 .. 0.64: above the 0.5 threshold all along
    without, visit = run(site(enabled=False), series)
    assert spans(without) == [(0.0, 20.0, "sadness")]  # the absolute rule: one long false alarm
    assert visit.baseline is None and visit.baseline_frames == 0 and visit.peak_deviation is None

    with_baseline, visit = run(site(), series)
    assert with_baseline == []
    assert visit.baseline_frames == 40  # the first 4 s
    assert visit.baseline[SAD] == pytest.approx(0.6, abs=0.03)
    assert visit.peak_tilt == pytest.approx(0.64, abs=0.01) and visit.peak_deviation < 0.1


def test_a_steady_angry_resting_face_too():
    series = [probs(anger=0.7 + 0.03 * math.cos(i / 4)) for i in range(150)]
    assert len(run(site(enabled=False), series)[0]) == 1
    alerts, visit = run(site(), series)
    assert alerts == [] and visit.baseline[ANGER] == pytest.approx(0.7, abs=0.03)


def test_a_real_change_of_the_same_face_still_raises_one():
    series = resting_sad(100) + [probs(anger=0.8, sadness=0.1)] * 50 + resting_sad(50)  # angry from 10 s to 15 s
    alerts, visit = run(site(), series)
    assert spans(alerts) == [(10.0, 15.0, "anger")]
    ev = alerts[0].evidence
    assert ev["baseline"]["sadness"] == pytest.approx(0.6, abs=0.03) and ev["baseline"]["anger"] == 0.0
    assert ev["deviation"] == pytest.approx(0.8) and ev["margin"] == 0.2
    assert alerts[0].value == pytest.approx(0.8)  # the alert's value stays the absolute probability
    assert visit.peak_deviation == pytest.approx(0.8)


def test_sadder_than_the_baseline_and_a_slow_drift_count_as_changes():
    """The baseline is frozen once learned: a slow drift is still measured against the resting level."""
    drift = [probs(sadness=min(0.95, 0.6 + 0.035 * i * DT)) for i in range(100)]  # 0.6 -> 0.95 over 10 s
    alerts, visit = run(site(), resting_sad(80) + drift + [probs(sadness=0.95)] * 50)
    (a,) = alerts
    assert a.evidence["emotion"] == "sadness" and a.evidence["deviation"] == pytest.approx(0.35, abs=0.03)
    # on once sadness is both >= 0.5 and 0.2 above its resting 0.6: from about 0.8, reached 5.7 s into the drift
    assert a.start == pytest.approx(8.0 + 5.7, abs=0.3) and a.end == pytest.approx(23.0)


def test_too_few_confident_observations_fall_back_to_the_absolute_rule():
    series = resting_sad(200)
    absolute, _ = run(site(enabled=False), series)
    # quality 0.4: above the analyzer's min_quality (the faces do not abstain), below the baseline's 0.5
    poor, visit = run(site(), series, quality=0.4)
    assert visit.baseline is None and visit.baseline_frames == 0
    assert spans(poor) == spans(absolute) == [(0.0, 20.0, "sadness")]
    # 9 confident frames in the window, one short of min_frames; later good views do not learn it late
    few, visit = run(site(), series, quality=lambda i: 0.9 if i % 4 == 0 and i < 36 or i >= 40 else 0.4)
    assert visit.baseline is None and spans(few) == spans(absolute)


def test_a_face_changing_within_the_window_is_no_baseline():
    """A player who starts crying as they sit down: learning that as the rest would hide it."""
    onset = [probs(sadness=min(0.85, 0.2 + 0.03 * i)) for i in range(40)]  # 0.2 -> 0.85 within the window
    series = onset + [probs(sadness=0.85)] * 40 + [probs()] * 20
    alerts, visit = run(site(), series)
    assert visit.baseline is None
    assert spans(alerts) == spans(run(site(enabled=False), series)[0]) != []


def test_an_alert_begun_while_learning_keeps_its_true_start_and_a_short_visit_learns_what_it_had():
    # anger from 1 s: an unsteady window, so no baseline; the frames that waited are replayed, start 1 s
    series = [probs()] * 10 + [probs(anger=0.8)] * 60 + [probs()] * 10
    assert spans(run(site(), series)[0]) == spans(run(site(enabled=False), series)[0]) == [(1.0, 7.0, "anger")]
    # a visit over within its window (3 s): a steady face's baseline is learned at its close, and excuses it
    alerts, visit = run(site(), resting_sad(30))
    assert alerts == [] and visit.baseline_frames == 30
    # ... and one that learned none (poor views) gets the absolute rule's alert, though its visit
    # closed (and finished its learning) before the alert engine heard of it, as in the sink
    absolute = spans(run(site(enabled=False), resting_sad(35))[0])
    assert spans(run(site(), resting_sad(35), quality=0.4)[0]) == absolute == [(0.0, 3.5, "sadness")]


def test_the_learner_uses_only_confident_frames_and_the_median():
    learner = BaselineLearner(BaselineRule(seconds=1.0, min_frames=3, min_quality=0.5), start=0.0)
    for i, (level, quality) in enumerate([(0.1, 0.9), (0.9, 0.2), (0.12, 0.9), (0.5, 0.9), (0.11, 0.8)]):
        learner.update(i * 0.1, probs(anger=level), quality)
    assert learner.learning
    learner.update(1.0, probs(anger=0.9), 0.9)  # the window is over: frozen, this frame not counted
    assert not learner.learning and learner.frames == 4 and learner.probs[ANGER] == pytest.approx(0.115)
    learner.update(1.1, probs(anger=0.9), 0.9)
    assert learner.probs[ANGER] == pytest.approx(0.115)


def test_baseline_settings_are_validated(tmp_path):
    text = "cameras:\n  - id: cam\nbaseline:\n  seconds: 4\n  min_frame: 10\n"
    (tmp_path / "site.yaml").write_text(text)
    with pytest.raises(ConfigError, match="line 5: baseline.min_frame"):
        load_site(tmp_path / "site.yaml")
    (tmp_path / "site.yaml").write_text("cameras:\n  - id: cam\nalerts:\n  tilt: {margin: 1.5}\n")
    with pytest.raises(ConfigError, match="line 4: alerts.tilt.margin"):
        load_site(tmp_path / "site.yaml")
    assert site().baseline == BaselineRule(enabled=True, seconds=4.0, min_frames=10, min_quality=0.5, max_spread=0.3)


@pytest.fixture(scope="module")
def sample_frames():
    """The built-in sample clip (three copies of a smiling face) through the real analyzer, once."""
    source = SampleSource()
    analyzer = Analyzer(fps=source.fps)
    frames = [analyzer.analyze(f.image, f.timestamp, f.index) for f in source]
    analyzer.close()
    return frames


@pytest.mark.parametrize("enabled", [False, True])
def test_the_sample_clips_steady_smiles_raise_a_happiness_tilt_only_without_a_baseline(
    sample_frames, tmp_path, enabled
):
    """With the tilt rule on happiness, the sample's steady smiles are resting faces: each of its three
    tracks alerts under the absolute rule, none once each has its baseline; the store keeps the baselines."""
    data = yaml.safe_load(HAPPY_TILT_SITE) | {"baseline": {"enabled": enabled}}
    cfg = SiteConfig.model_validate(data)
    with Store(f"sqlite:///{tmp_path / 's.db'}") as store:
        sink = AnalyticsSink(store, cfg, "sample", "sample", start_time=0.0)
        for result in sample_frames:
            sink.write(None, result)
        sink.close()
        alerts, visits = store.alerts(kind="tilt"), store.visits()
    assert len(visits) == 3
    if not enabled:
        assert sorted(a.track_id for a in alerts) == [v.track_id for v in visits]
        assert all(v.baseline is None for v in visits)
    else:
        assert alerts == []
        for v in visits:
            assert v.baseline_frames >= 10 and v.baseline[EMOTIONS.index("happiness")] > 0.9
            assert v.peak_tilt > 0.9 and v.peak_deviation < 0.05
