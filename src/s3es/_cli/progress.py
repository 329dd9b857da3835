"""How far long work in the ``s3es`` command has got: streams verified, rebuilt, compacted.

Our own few lines rather than rich or tqdm: what the command needs (a bar with rate and ETA
on a terminal, a plain line now and then in a log) is this much code, and either library would
be one more dependency of every installation of a library whose command is a side door.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

_WIDTH = 30


class ProgressBar:
    """Shows ``done`` of ``total`` units, their rate and the time left, on ``out``.

    On a terminal it draws ``verify [#####     ] 12/40 streams, 3.1/s, ETA 0:09`` in place,
    at most every ``interval`` seconds, and always the last update. Anywhere else (a file, a
    pipe, a log collector) it writes a plain line every ``every`` seconds,
    ``verify: 12/40 streams (30%), 3.1/s, ETA 0:09``, and, if it wrote any, one more at the
    end; work that ends sooner writes nothing, so short runs keep logs and JSON clean.

    The rate is the units done since the bar was made, divided by the time since. Call it as a
    :data:`~s3es._base.progress.Progress` callback; :meth:`clear` before printing a line of
    your own to the same terminal, :meth:`close` at the end.
    """

    def __init__(
        self,
        label: str,
        *,
        unit: str = "streams",
        out: TextIO = sys.stderr,
        interval: float = 0.1,
        every: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.unit = unit
        self._out = out
        self._interval = interval
        self._every = every
        self._clock = clock
        self._started = clock()
        self._terminal = out.isatty()
        self._shown_at: float | None = None  # when a line or frame was last written
        self._drawn = 0  # characters of the frame on the terminal's line (0: none)
        self._last: tuple[int, int] | None = None

    def __call__(self, done: int, total: int) -> None:
        """Report that ``done`` of ``total`` units are done."""
        now = self._clock()
        self._last = (done, total)
        finished = done >= total
        since = now - (self._started if self._shown_at is None else self._shown_at)
        if self._terminal:
            if finished or self._drawn == 0 or since >= self._interval:
                self._draw(done, total, now)
        elif since >= self._every or (finished and self._shown_at is not None):
            self._line(done, total, now)

    def _draw(self, done: int, total: int, now: float) -> None:
        filled = _WIDTH * done // total if total else _WIDTH
        bar = "#" * filled + " " * (_WIDTH - filled)
        frame = f"{self.label} [{bar}] {done:,}/{total:,} {self.unit}{self._pace(done, total, now)}"
        padding = " " * max(0, self._drawn - len(frame))  # a shorter frame hides the longer one
        self._out.write(f"\r{frame}{padding}")
        self._out.flush()
        self._drawn, self._shown_at = len(frame), now

    def _line(self, done: int, total: int, now: float) -> None:
        percent = f" ({100 * done // total}%)" if total else ""
        pace = self._pace(done, total, now)
        self._out.write(f"{self.label}: {done:,}/{total:,} {self.unit}{percent}{pace}\n")
        self._out.flush()
        self._shown_at = now

    def _pace(self, done: int, total: int, now: float) -> str:
        """``, 3.1/s, ETA 0:09``; empty before any time has passed or any unit is done."""
        elapsed = now - self._started
        if elapsed <= 0 or done <= 0:
            return ""
        rate = done / elapsed
        if done >= total:
            return f", {rate:,.1f}/s, took {_duration(elapsed)}"
        return f", {rate:,.1f}/s, ETA {_duration((total - done) / rate)}"

    def clear(self) -> None:
        """Wipe the bar from the terminal's line (the next update draws it again)."""
        if self._drawn:
            self._out.write("\r" + " " * self._drawn + "\r")
            self._out.flush()
            self._drawn = 0

    def close(self) -> None:
        """End the bar's line on a terminal, if one was drawn."""
        if self._drawn:
            self._out.write("\n")
            self._out.flush()
            self._drawn = 0


def _duration(seconds: float) -> str:
    """``0:09``, ``12:30``, ``3:04:05``: whole seconds, rounded up."""
    whole = int(-(-seconds // 1))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"
