"""The clock: what s3es asks when it needs the time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeAlias

#: A clock returns the current time as an aware UTC datetime. The event store, projectors and
#: their leases each take one (``clock=``), so a test can give them all one fake clock.
Clock: TypeAlias = Callable[[], datetime]


def utc_now() -> datetime:
    """The system clock's time, in UTC: the default clock."""
    return datetime.now(UTC)
