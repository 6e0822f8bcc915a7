"""From emotion probabilities to valence and arousal, and from head pose to attention.

Valence and arousal are the expectation of each class's place on Russell's circumplex of
affect (valence: unpleasant -1 .. pleasant +1; arousal: calm -1 .. excited +1):
``V = sum_i p_i * v_i``, ``A = sum_i p_i * a_i``. The places below follow the angles at
which Russell (1980) and the AffectNet paper (Mollahosseini et al., 2017, fig. 2) put these
categories, on the unit circle (neutral at the centre, contempt beside disgust, weaker).

| class | valence | arousal |
| --- | --- | --- |
| neutral | 0.00 | 0.00 |
| happiness | 0.80 | 0.35 |
| surprise | 0.25 | 0.85 |
| sadness | -0.75 | -0.40 |
| anger | -0.60 | 0.70 |
| disgust | -0.70 | 0.35 |
| fear | -0.55 | 0.75 |
| contempt | -0.55 | 0.20 |
"""

from __future__ import annotations

import math

import numpy as np

from ..emotions import EMOTIONS
from .site import AttentionCone

CIRCUMPLEX: dict[str, tuple[float, float]] = {
    "neutral": (0.0, 0.0),
    "happiness": (0.80, 0.35),
    "surprise": (0.25, 0.85),
    "sadness": (-0.75, -0.40),
    "anger": (-0.60, 0.70),
    "disgust": (-0.70, 0.35),
    "fear": (-0.55, 0.75),
    "contempt": (-0.55, 0.20),
}
_VA = np.array([CIRCUMPLEX[c] for c in EMOTIONS])


def valence_arousal(probs) -> tuple[float, float]:
    v, a = np.asarray(probs, float) @ _VA
    return float(v), float(a)


def _direction(yaw: float, pitch: float) -> np.ndarray:
    y, p = math.radians(yaw), math.radians(pitch)
    return np.array([math.sin(y) * math.cos(p), math.sin(p), math.cos(y) * math.cos(p)])


def attentive(yaw: float, pitch: float, cone: AttentionCone) -> bool:
    """Is the head pointing within ``cone.half_angle`` degrees of the cone's direction?"""
    cos = float(np.clip(_direction(yaw, pitch) @ _direction(cone.yaw, cone.pitch), -1, 1))
    return math.degrees(math.acos(cos)) <= cone.half_angle
