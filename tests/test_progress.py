"""The command's progress: a bar with rate and ETA on a terminal, a line now and then elsewhere."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable

import pytest

from s3es._cli.progress import ProgressBar


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _clock(readings: Iterable[float]) -> Callable[[], float]:
    """A clock that reads ``readings`` in turn: the first when the bar is made."""
    times = iter(readings)
    return lambda: next(times)


class TestOnATerminal:
    def test_draws_in_place_with_rate_and_eta(self) -> None:
        """Each redraw starts with a carriage return and shows the rate since the bar was made
        and the time left at that rate; the last shows how long it took; close ends the line."""
        out = _Terminal()
        bar = ProgressBar("verify", out=out, interval=0, clock=_clock([0, 1, 2, 3, 4]))
        for done in range(1, 5):
            bar(done, 4)
        bar.close()
        frames = out.getvalue().split("\r")[1:]
        assert frames == [
            f"verify [{'#' * 7}{' ' * 23}] 1/4 streams, 1.0/s, ETA 0:03",
            f"verify [{'#' * 15}{' ' * 15}] 2/4 streams, 1.0/s, ETA 0:02",
            f"verify [{'#' * 22}{' ' * 8}] 3/4 streams, 1.0/s, ETA 0:01",
            f"verify [{'#' * 30}] 4/4 streams, 1.0/s, took 0:04\n",
        ]

    def test_no_rate_before_time_has_passed(self) -> None:
        """With no time elapsed there is no rate to show, only the count."""
        out = _Terminal()
        bar = ProgressBar("verify", out=out, clock=_clock([5, 5]))
        bar(1, 3)
        assert out.getvalue() == f"\rverify [{'#' * 10}{' ' * 20}] 1/3 streams"

    def test_long_eta(self) -> None:
        """An ETA of hours reads h:mm:ss, rounded up to the second."""
        out = _Terminal()
        bar = ProgressBar("rebuild", out=out, clock=_clock([0, 10]))
        bar(3, 4_000)  # 0.3/s: 3,997 streams left take 13,323.3 s
        assert out.getvalue().endswith("3/4,000 streams, 0.3/s, ETA 3:42:04")

    def test_redraws_at_most_every_interval_but_always_the_end(self) -> None:
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

    def test_clear_wipes_the_line(self) -> None:
        """clear blanks the drawn frame, so a line printed next starts clean; the next update
        draws the bar again at once."""
        out = _Terminal()
        bar = ProgressBar("compact", out=out, interval=60, clock=_clock([0, 0, 0]))
        bar(1, 2)
        frame = out.getvalue()[1:]
        bar.clear()
        assert out.getvalue().endswith("\r" + " " * len(frame) + "\r")
        bar(2, 2)
        assert out.getvalue().endswith(f"\rcompact [{'#' * 30}] 2/2 streams")

    def test_shorter_frame_covers_the_longer(self) -> None:
        """A frame shorter than the one before is padded with spaces over its tail."""
        out = _Terminal()
        bar = ProgressBar("verify", out=out, interval=0, clock=_clock([0, 1, 1000]))
        bar(1_000, 3_000)  # 1,000.0/s, ETA 0:02
        bar(1_001, 3_000)  # 1.0/s, ETA 33:18: three characters shorter
        first, second = out.getvalue().split("\r")[1:]
        assert second == f"verify [{'#' * 10}{' ' * 20}] 1,001/3,000 streams, 1.0/s, ETA 33:18   "
        assert len(second) == len(first)


class TestElsewhere:
    def test_a_line_every_interval_and_at_the_end(self) -> None:
        """To a file or pipe: a plain line once ``every`` seconds have passed since the last,
        and one at the end since some were written."""
        out = io.StringIO()
        bar = ProgressBar("verify", out=out, every=10, clock=_clock([0, 4, 11, 15, 22, 25]))
        for done in range(1, 6):
            bar(done, 5)
        assert out.getvalue().splitlines() == [
            "verify: 2/5 streams (40%), 0.2/s, ETA 0:17",
            "verify: 4/5 streams (80%), 0.2/s, ETA 0:06",
            "verify: 5/5 streams (100%), 0.2/s, took 0:25",
        ]

    def test_short_work_writes_nothing(self) -> None:
        """Work that ends before ``every`` seconds writes nothing, not even at the end."""
        out = io.StringIO()
        bar = ProgressBar("verify", out=out, every=10, clock=_clock([0, 1, 2]))
        bar(1, 2)
        bar(2, 2)
        bar.close()
        assert out.getvalue() == ""

    @pytest.mark.parametrize("total", [0, 3])
    def test_clear_and_close_write_nothing(self, total: int) -> None:
        """clear and close have no line to wipe or end off a terminal."""
        out = io.StringIO()
        bar = ProgressBar("verify", out=out, every=1, clock=_clock([0, 5]))
        bar(total, total)
        written = out.getvalue()
        bar.clear()
        bar.close()
        assert out.getvalue() == written
