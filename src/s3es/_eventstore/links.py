"""The chain of chunks a full read of a stream follows: the values its walk is made of.

A stream's latest version names the version its events follow (``base_version``), that one the
one before, down to version 0: a compacted chunk skips the versions it covers. Of the chunks of
one version the highest-numbered stands for it (a re-snapshotted or merged chunk is stored
beside the version's chunk 0, with a higher number). The walk itself (``newest_of_each_version``,
``walk_chain``, ``ReadAhead``) is in ``chain.py``, generated from its async source
``_async/chain.py``; both use the values here.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Generic, Protocol, TypeVar

import attrs

from s3es._eventstore.chunk import Chunk


class Location(Protocol):
    """Where a chunk is stored: what the walk needs to know of it before reading it."""

    @property
    def key(self) -> str:
        """The chunk's object key."""
        ...  # pragma: no cover - a protocol

    @property
    def version(self) -> int:
        """The version the chunk is of."""
        ...  # pragma: no cover - a protocol


L = TypeVar("L", bound=Location)


class BreakReason(enum.Enum):
    """Why a chain ends before it reaches the version a read started after."""

    #: No chunk of ``version`` is listed, though the chunk at ``key`` follows it.
    MISSING = "missing"
    #: The chunk at ``key`` is an erased chunk, and no merged chunk stands for it.
    ERASED = "erased"
    #: The chunk at ``key`` is a tombstone below the top of the chain, stored after it.
    TOMBSTONE = "tombstone"
    #: No chunk of ``version`` is listed, and the chunk at ``key`` and every one above it are
    #: an erasure's fences (no events): a fence round sends its fences at once, so a higher
    #: one can be stored while a lower one's PUT is in flight, or never lands (it failed, or
    #: the process died). Nothing is lost: the stream ends below the gap until a chunk is
    #: stored there (the fence, a writer's append, or ``s3es repair``'s fence). The only
    #: break that does not end the walk: it goes on from the newest version below the gap.
    FENCE_GAP = "fence-gap"


@attrs.frozen
class ChainBreak:
    """Where and why a chain breaks.

    ``key`` is the key the reason names; ``version`` the missing version (the highest one of
    a fence gap), or that of the erased chunk or the tombstone.
    """

    reason: BreakReason
    key: str
    version: int


@attrs.frozen
class Link(Generic[L]):
    """One chunk of the chain and where it is stored."""

    where: L
    chunk: Chunk


class NumberedLocation(Location, Protocol):
    """A location that also says which chunk of its version it is."""

    @property
    def number(self) -> int:
        """The chunk's number within its version (0: an append's)."""
        ...  # pragma: no cover - a protocol


N = TypeVar("N", bound=NumberedLocation)
#: Seconds a fetch must take for :class:`ReadAhead` to send the next ones ahead: 1 ms, less
#: than any request over a network takes, more than a read from memory.
MIN_WAIT = 0.001


def is_fence(chunk: Chunk) -> bool:
    """Whether ``chunk`` is an erasure's fence (or ``s3es repair``'s): rebased, no events."""
    return chunk.rebased and not chunk.events and not chunk.deleted and not chunk.erased


def version_below(newest: Mapping[int, object], version: int) -> int:
    """The highest version of ``newest`` below ``version``; 0 if there is none."""
    return max((listed for listed in newest if listed < version), default=0)
