"""Wiring of the stages: the per-frame Analyzer and the run loop over a source into sinks."""

from .analyzer import Analyzer
from .runner import RunStats, run

__all__ = ["Analyzer", "RunStats", "run"]
