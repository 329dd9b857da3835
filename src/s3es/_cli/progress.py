"""A progress bar for long work in the ``s3es`` command: streams verified, streams rebuilt."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

_WIDTH = 30


class ProgressBar:
    """Draws ``label [#####     ] 12/40 streams`` on ``out``, redrawn in place.

    Only on a terminal: to a file or a pipe it writes nothing, so logs and JSON stay clean. Call
    it as a :data:`Progress` callback; :meth:`close` ends the line.
    """

    def __init__(
        self,
        label: str,
        *,
        unit: str = "streams",
        out: TextIO = sys.stderr,
        interval: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.unit = unit
        self._out = out
        self._interval = interval
        self._clock = clock
        self._drawn_at: float | None = None
        self._enabled = out.isatty()

    def __call__(self, done: int, total: int) -> None:
        """Show that ``done`` of ``total`` units are done (at most every ``interval`` seconds)."""
        if not self._enabled:
            return
        now = self._clock()
        finished = done >= total
        if not finished and self._drawn_at is not None and now - self._drawn_at < self._interval:
            return
        self._drawn_at = now
        filled = _WIDTH * done // total if total else _WIDTH
        bar = "#" * filled + " " * (_WIDTH - filled)
        self._out.write(f"\r{self.label} [{bar}] {done:,}/{total:,} {self.unit}")
        self._out.flush()

    def close(self) -> None:
        """End the bar's line, if one was drawn."""
        if self._drawn_at is not None:
            self._out.write("\n")
            self._out.flush()
            self._drawn_at = None
