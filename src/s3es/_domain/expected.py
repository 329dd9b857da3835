"""What a caller expects of a stream's version when it sends a command (an HTTP ``If-Match``)."""

from __future__ import annotations

import enum

from s3es._storage.keys import StreamName
from s3es.errors import InvalidConfiguration


class ExpectedVersion(enum.Enum):
    """What a command expects of its stream's version, when it is not one exact version.

    ``CommandHandler.handle(..., expected_version=...)`` takes one of these or an exact
    version, an int >= 0: the version the caller saw (an HTTP ``If-Match``). A stream that does
    not match raises :class:`~s3es.errors.WrongExpectedVersion`, and nothing is stored.

    - ``ANY``: no check (the default): the command is decided on the latest state, and decided
      again on a newer one when another writer appends first.
    - ``NO_STREAM``: create only. The stream must have no version yet (nothing stored), the
      same check as the exact version ``0``.
    - ``STREAM_EXISTS``: the stream must have a version (1 or more). As with ``ANY``, a
      command that loses its PUT to another writer is decided again: the stream still exists.

    An exact version (and ``NO_STREAM``) pins the state the command is decided on: the
    command is stored as the next version after it or not at all, never decided again on a
    newer state. A deleted stream raises StreamDeleted whatever is expected.

    .. versionadded:: 0.2
    """

    ANY = "any"
    NO_STREAM = "no stream"
    STREAM_EXISTS = "stream exists"

    def __repr__(self) -> str:
        return f"ExpectedVersion.{self.name}"


def validated(expected: object, stream: StreamName) -> int | ExpectedVersion:
    """``expected`` if it is an ExpectedVersion or an int >= 0; else InvalidConfiguration."""
    if isinstance(expected, ExpectedVersion):
        return expected
    if isinstance(expected, int) and not isinstance(expected, bool) and expected >= 0:
        return expected
    raise InvalidConfiguration(
        f"expected_version for stream {stream} must be a version (an int >= 0) or one of "
        f"ExpectedVersion.ANY, NO_STREAM, STREAM_EXISTS, not {expected!r}"
    )


def pinned(expected: int | ExpectedVersion) -> int | None:
    """The one version ``expected`` admits (``NO_STREAM``: 0), or None if it admits several."""
    if expected is ExpectedVersion.NO_STREAM:
        return 0
    return expected if isinstance(expected, int) else None


def admits(expected: int | ExpectedVersion, version: int) -> bool:
    """Whether a stream at ``version`` is what ``expected`` expects."""
    if expected is ExpectedVersion.ANY:
        return True
    if expected is ExpectedVersion.STREAM_EXISTS:
        return version >= 1
    return version == pinned(expected)
