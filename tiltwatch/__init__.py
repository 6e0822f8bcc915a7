"""tiltwatch: who is at the table, where they look, and what they feel.

Usage::

    from tiltwatch import Analyzer
    result = Analyzer().analyze(frame_bgr)
"""

from typing import TYPE_CHECKING

from .errors import ConfigError, InputError, ModelError, TiltwatchError
from .lazy import lazy_exports

if TYPE_CHECKING:
    from .config import AnalyzerConfig
    from .pipeline.analyzer import Analyzer
    from .types import SCHEMA_VERSION, Emotion, FaceResult, FrameResult, Pose

__version__ = "0.1.0"
__all__ = [
    "Analyzer",
    "AnalyzerConfig",
    "Emotion",
    "FaceResult",
    "FrameResult",
    "Pose",
    "SCHEMA_VERSION",
    "TiltwatchError",
    "InputError",
    "ConfigError",
    "ModelError",
    "__version__",
]

# The live pipeline (mediapipe, video, tracking) loads on first use, so that the training side
# (``tiltwatch.training``) imports on a machine that has only torch and the numeric stack.
_LAZY = {
    "Analyzer": ".pipeline.analyzer",
    "AnalyzerConfig": ".config",
    "SCHEMA_VERSION": ".types",
    "Emotion": ".types",
    "FaceResult": ".types",
    "FrameResult": ".types",
    "Pose": ".types",
}


__getattr__ = lazy_exports(__name__, _LAZY)
