"""Wiring of the stages: the per-frame Analyzer and the run loop over a source into sinks."""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .analyzer import Analyzer
    from .runner import RunStats, run

__all__ = ["Analyzer", "RunStats", "run"]


def __getattr__(name: str):
    # the stages load on first use, so that ``pipeline.bench``'s emotion-only timing runs where
    # only the training side's libraries are installed (a GPU machine)
    if name == "Analyzer":
        from .analyzer import Analyzer

        return Analyzer
    if name in ("RunStats", "run"):
        from . import runner

        return getattr(runner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
