"""Wiring of the stages: the per-frame Analyzer and the run loop over a source into sinks."""

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

if TYPE_CHECKING:
    from .analyzer import Analyzer
    from .runner import RunStats, run

__all__ = ["Analyzer", "RunStats", "run"]


# the stages load on first use, so that ``pipeline.bench``'s emotion-only timing runs where only
# the training side's libraries are installed (a GPU machine)
__getattr__ = lazy_exports(__name__, {"Analyzer": ".analyzer", "RunStats": ".runner", "run": ".runner"})
