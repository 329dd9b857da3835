"""Fair turns on a hot stream: what one handler remembers of each stream it writes to.

Writers in separate processes share nothing but the store, so each judges contention from
what it sees itself: its own conflicts, and how many versions in a row it stored on top of its
own. See docs/design.md, "Fairness on a hot stream".
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

import attrs

#: Round trips a writer that holds a contended stream sits out before its next decision: a
#: loser learns the winning chunk one round trip after it lands (the GET after its 412) and
#: lands its own PUT one round trip later.
SIT_OUT_ROUND_TRIPS = 2.0
#: Versions a writer stores in a row, each on its own last one, before it sits out once even
#: though it met no conflict: it cannot see writers that keep losing to it.
BLIND_STREAK = 12
#: Round trips a conflict keeps a stream counted as contended (and at least CONTENDED_SECONDS).
CONTENDED_ROUND_TRIPS = 50
CONTENDED_SECONDS = 0.5
#: Seniority: a retry of a command that has waited fewer rounds waits this many round trips
#: more per round, up to SENIORITY_ROUNDS rounds, so the longest-waiting writer lands first.
SENIORITY_STEP = 0.25
SENIORITY_ROUNDS = 8
#: Weight of the newest round trip in the running estimate.
_SMOOTHING = 0.2


@attrs.define
class _Stream:
    """One stream as this handler saw it."""

    #: The version this handler stored last, and when (clock seconds).
    own_version: int = -1
    stored_at: float = -math.inf
    #: Versions stored in a row, each on top of this handler's own previous one.
    streak: int = 0
    #: Until when (clock seconds) the stream counts as contended.
    contended_until: float = -math.inf


class Turns:
    """What a command handler remembers of the streams it writes, to take turns on hot ones.

    Bounded to the last ``size`` streams written. Thread-safe. ``clock`` returns seconds.
    """

    def __init__(self, size: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.size = size
        self._clock = clock
        self._lock = threading.Lock()
        self._streams: OrderedDict[str, _Stream] = OrderedDict()
        #: A running estimate of one PUT round trip (seconds), from this handler's appends.
        self.round_trip = 0.0

    def now(self) -> float:
        """The clock's seconds: what append durations are measured with."""
        return self._clock()

    def _entry(self, stream_id: str) -> _Stream:
        entry = self._streams.get(stream_id)
        if entry is None:
            entry = self._streams[stream_id] = _Stream()
            while len(self._streams) > max(self.size, 1):
                self._streams.popitem(last=False)
        self._streams.move_to_end(stream_id)
        return entry

    def conflicted(self, stream_id: str) -> None:
        """A decision of ours on ``stream_id`` lost its version: the stream is contended."""
        window = max(CONTENDED_SECONDS, CONTENDED_ROUND_TRIPS * self.round_trip)
        with self._lock:
            entry = self._entry(stream_id)
            entry.contended_until = self._clock() + window
            entry.streak = 0

    def stored(self, stream_id: str, base_version: int, version: int, seconds: float) -> None:
        """We stored ``version`` on ``base_version``; the append took ``seconds``."""
        with self._lock:
            self.round_trip = (
                seconds
                if not self.round_trip
                else (1 - _SMOOTHING) * self.round_trip + _SMOOTHING * seconds
            )
            entry = self._entry(stream_id)
            entry.streak = entry.streak + 1 if base_version == entry.own_version else 1
            entry.own_version, entry.stored_at = version, self._clock()

    def sit_out(self, stream_id: str, version: int) -> float:
        """Seconds to wait before deciding on ``version`` of ``stream_id``; 0: go ahead.

        Non-zero only when we stored ``version`` ourselves a moment ago (we hold the stream)
        and either the stream is contended or we have stored BLIND_STREAK versions in a row.
        Sitting out resets the streak.
        """
        with self._lock:
            entry = self._streams.get(stream_id)
            if entry is None or entry.own_version != version:
                return 0.0
            now = self._clock()
            back_to_back = now - entry.stored_at < SIT_OUT_ROUND_TRIPS * self.round_trip
            if not back_to_back:
                return 0.0
            if now < entry.contended_until or entry.streak >= BLIND_STREAK:
                entry.streak = 0
                return SIT_OUT_ROUND_TRIPS * self.round_trip
            return 0.0

    def seniority_delay(self, rounds: int) -> float:
        """Seconds a retry waits after ``rounds`` rounds lost or sat out (less, the longer)."""
        return max(0, SENIORITY_ROUNDS - rounds) * SENIORITY_STEP * self.round_trip
