"""The command's progress bar: drawn in place on a terminal, silent elsewhere."""

from __future__ import annotations

import io
import itertools

from s3es._cli.progress import ProgressBar


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_draws_in_place_on_a_terminal() -> None:
    """Each redraw starts with a carriage return; the last shows the total; close ends the line."""
    out = _Terminal()
    ticks = itertools.count()
    bar = ProgressBar("verify", out=out, interval=0, clock=lambda: float(next(ticks)))
    for done in range(5):
        bar(done, 4)
    bar.close()
    frames = out.getvalue().split("\r")[1:]
    assert frames[0] == f"verify [{' ' * 30}] 0/4 streams"
    assert frames[-1] == f"verify [{'#' * 30}] 4/4 streams\n"
    assert len(frames) == 5


def test_redraws_at_most_every_interval_but_always_the_end() -> None:
    """Updates within the interval are skipped, except the one that finishes."""
    out = _Terminal()
    bar = ProgressBar("rebuild", unit="chunks", out=out, interval=10, clock=lambda: 0.0)
    for done in range(1, 1001):
        bar(done, 1000)
    frames = out.getvalue().split("\r")[1:]
    assert frames == [
        f"rebuild [{' ' * 30}] 1/1,000 chunks",
        f"rebuild [{'#' * 30}] 1,000/1,000 chunks",
    ]


def test_silent_off_a_terminal() -> None:
    """To a file or pipe nothing is written, not even the closing newline."""
    out = io.StringIO()
    bar = ProgressBar("verify", out=out)
    bar(1, 2)
    bar(2, 2)
    bar.close()
    assert out.getvalue() == ""
