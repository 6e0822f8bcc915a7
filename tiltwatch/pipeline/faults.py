"""Frames that cannot be analysed (a damaged image, an error inside a model): each is skipped and
counted, each kind of failure logged once with the frame it first hit; a run or a live stream
stops only when ``FAILED_IN_A_ROW`` frames in a row fail (then the source or the machine is at
fault, not one frame). The run loop, server streams and camera actors share it.

Usage::

    faults = FrameFaults("table-7", log)
    for frame, result in analyzer.stream(frames):
        if isinstance(result, Exception):
            faults.failed_frame(frame.index, result)  # InputError after 50 in a row
            continue
        faults.analysed()
"""

from __future__ import annotations

import logging

from ..errors import InputError, first_line

FAILED_IN_A_ROW = 50


class FrameFaults:
    def __init__(self, name: str, log: logging.Logger):
        self.name, self.log = name, log
        self.failed = 0  # frames read but not analysable
        self.causes: dict[str, int] = {}  # why: first line -> frames
        self.in_a_row = 0

    def failed_frame(self, index: int, exc: Exception) -> None:
        self.failed += 1
        self.in_a_row += 1
        cause = f"{type(exc).__name__}: {first_line(exc)}"
        if cause not in self.causes:
            self.log.warning(
                "%s: frame %d skipped: %s (further frames failing so are only counted)", self.name, index, cause
            )
        self.causes[cause] = self.causes.get(cause, 0) + 1
        if self.in_a_row >= FAILED_IN_A_ROW:
            raise InputError(
                f"{self.name}: {self.in_a_row} frames in a row could not be analysed (last: {first_line(exc)})"
            )

    def analysed(self) -> None:
        self.in_a_row = 0
