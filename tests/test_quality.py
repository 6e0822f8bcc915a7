"""Every face carries a quality score; poor views abstain from smoothing, visits and alerts."""

import cv2
import numpy as np

from tiltwatch import Analyzer


def test_quality_falls_with_blur_darkness_and_size(analyzer, astronaut):
    sharp = analyzer.analyze(astronaut).faces[0]
    assert 0.8 <= sharp.quality <= 1 and not sharp.abstained
    assert set(sharp.quality_parts) == {"size", "blur", "exposure", "pose", "mesh", "confidence"}
    blurred = analyzer.analyze(cv2.GaussianBlur(astronaut, (0, 0), 3)).faces[0]
    dark = analyzer.analyze((astronaut * 0.15).astype(np.uint8)).faces
    small = analyzer.analyze(cv2.resize(astronaut, (128, 128), interpolation=cv2.INTER_AREA)).faces
    assert blurred.quality_parts["blur"] < 0.3 and blurred.quality < sharp.quality - 0.2
    for faces in (dark, small):  # (where the detector still finds the face)
        assert all(f.quality < sharp.quality for f in faces)
    d = sharp.to_dict()
    assert d["quality"] == sharp.quality and d["abstained"] is False


def test_an_abstaining_face_moves_no_smoothing(astronaut):
    an = Analyzer(fps=10, smooth_tau=1.0, min_quality=0.5, detect_every=1)
    good = an.analyze(astronaut, timestamp=0.0).faces[0]
    assert good.track_id is not None and not good.abstained
    before = good.smoothed.emotion.probs.copy()
    poor = an.analyze(cv2.GaussianBlur(astronaut, (0, 0), 4), timestamp=0.1).faces
    assert poor and poor[0].abstained and poor[0].track_id == good.track_id
    assert np.array_equal(poor[0].smoothed.emotion.probs, before)  # the track kept what it had
    assert poor[0].emotion is not None  # reported all the same
