"""tiltwatch: who is at the table, where they look, and what they feel.

Usage::

    from tiltwatch import Analyzer
    result = Analyzer().analyze(frame_bgr)
"""

from .config import AnalyzerConfig
from .errors import ConfigError, InputError, ModelError, TiltwatchError
from .pipeline.analyzer import Analyzer
from .types import SCHEMA_VERSION, Emotion, FaceResult, FrameResult, Pose

__version__ = "0.1.0"
__all__ = ["Analyzer", "AnalyzerConfig", "Emotion", "FaceResult", "FrameResult", "Pose", "SCHEMA_VERSION",
           "TiltwatchError", "InputError", "ConfigError", "ModelError", "__version__"]
