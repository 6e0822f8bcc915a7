"""A person's own resting expression: the per-track baseline the tilt alert and visits compare with.

Some faces at rest read sad or angry to the emotion model (a low brow, a downturned mouth), and
an absolute threshold then raises a tilt alert for a player who is simply sitting there. So
each track learns its baseline over the first ``seconds`` of its visit (measured from its first
observation that did not abstain):

- only **confident** observations count: not abstained, and a quality score of at least
  ``min_quality`` (a face without a score, e.g. from a caller that computes none, counts);
- the baseline is the **median** of each of the 8 smoothed probabilities over them: a few frames
  of a passing grimace or a misread view move it little (it breaks down only past half of them),
  and it needs no tuning. The 8 medians need not sum to 1; each is compared with its own class;
- it needs at least ``min_frames`` observations, and a **steady** face: if the middle 80% of any
  tilt emotion's values over them (10th to 90th percentile) spans more than ``max_spread``, the
  window held a change (a player who starts crying as they sit down), not a resting face, and
  taking it as the baseline would hide that change. A change over less than a tenth of the
  window barely moves the median; over more than nine tenths, the player arrived that way (see
  below). Without either the track has no baseline and the absolute rule alone applies to it,
  as without a baseline;
- it is then **frozen**: a slow drift into anger later in the visit is still a change, where a
  running baseline would follow it and never alert.

The window is bounded in time, not in frames, so how long the alert engine waits for it is
bounded too (see :mod:`tiltwatch.analytics.alerts`). A patron who arrives already tilted takes
that as their baseline: only a further rise of ``margin`` alerts then.

Usage::

    learner = BaselineLearner(site.baseline, start=t, steady=tilt_indices)
    learner.update(t, smoothed_probs, face.quality)   # each frame of the track that did not abstain
    learner.learning, learner.probs, learner.frames    # still learning? the 8 medians (or None), from how many
"""

from __future__ import annotations

import numpy as np

from .site import BaselineRule


class BaselineLearner:
    """One track's baseline: learns over its window, then is fixed (``probs`` stays None without one)."""

    def __init__(self, rule: BaselineRule, start: float, steady: list[int] | None = None):
        """``steady``: the classes (indices) whose spread decides whether the face was steady (default: all)."""
        self.rule = rule
        self.start = start
        self.steady = steady
        self.spread: float | None = None  # the widest 10th-90th percentile range of those classes
        self.probs: np.ndarray | None = None
        self.frames = 0  # the confident observations the baseline was learned from
        self.learning = rule.enabled
        self._seen: list[np.ndarray] = []

    def update(self, t: float, probs, quality: float | None) -> None:
        """One observation of the track (smoothed probabilities, the face's quality) at ``t``."""
        if not self.learning:
            return
        if t - self.start >= self.rule.seconds:
            self.finish()
        elif quality is None or quality >= self.rule.min_quality:
            self._seen.append(np.asarray(probs, float))

    def finish(self) -> None:
        """End the learning now (the window is over, or the visit ended within it). Idempotent."""
        if not self.learning:
            return
        self.learning = False
        if len(self._seen) >= self.rule.min_frames:
            seen = np.stack(self._seen)
            judged = seen if self.steady is None else seen[:, self.steady]
            low, high = np.percentile(judged, [10, 90], axis=0)
            self.spread = float((high - low).max())
            if self.spread <= self.rule.max_spread:
                self.probs = np.median(seen, axis=0)
                self.frames = len(seen)
        self._seen = []

    def rounded(self) -> list[float] | None:
        """The baseline as stored with the visit (4 decimals), or None."""
        return None if self.probs is None else [round(float(p), 4) for p in self.probs]
