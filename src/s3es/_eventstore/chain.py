# Generated from src/s3es/_eventstore/_async/chain.py by tools/async_to_sync.py: do not edit.
"""The walk down the chain of chunks a full read of a stream follows, in one place for every reader.

The event store walks this chain to read a stream and raises at a break; verification walks it
to report the break as a problem. Both get their chains from
:func:`newest_of_each_version` and :func:`walk_chain`, which send no
request of their own: the caller's listing and ``read`` do. :class:`ReadAhead` is a ``read``
that fetches the links the walk will need next while it decodes the one at hand.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Generic, TypeVar

from s3es._base.concurrency import Future, forget, outcome
from s3es._eventstore.chunk import Chunk
from s3es._eventstore.links import (
    MIN_WAIT,
    BreakReason,
    ChainBreak,
    L,
    Link,
    Location,
    N,
    NumberedLocation,
    is_fence,
    version_below,
)
from s3es._storage.keys import FIRST_CHUNK

__all__ = [
    "MIN_WAIT",
    "BreakReason",
    "ChainBreak",
    "Link",
    "Location",
    "NumberedLocation",
    "ReadAhead",
    "is_fence",
    "newest_of_each_version",
    "version_below",
    "walk_chain",
]

T = TypeVar("T")


def newest_of_each_version(listed: Iterable[L], *, after_version: int = 0) -> dict[int, L]:
    """Of each version after ``after_version``, the location listed first.

    ``listed`` comes newest first, as a stream's keys list: a version's highest chunk number
    comes first. It is consumed no further than its first location at or below
    ``after_version``, so that a lazy listing sends no LIST for the older keys.
    """
    newest: dict[int, L] = {}
    for where in listed:
        if where.version <= after_version:
            break
        newest.setdefault(where.version, where)
    return newest


def walk_chain(
    newest: Mapping[int, L], read: Callable[[L], Chunk], *, after_version: int = 0
) -> Iterator[Link[L] | ChainBreak]:
    """The chain down to ``after_version``, newest first; a break ends it, as its last item.

    ``newest`` maps each version to the location of the chunk that stands for it (see
    :func:`newest_of_each_version`); ``read`` gets the chunk at a location, and is called
    lazily, one link at a time, so a caller that stops early reads no further. The walk starts
    at the highest version and goes down each chunk's ``base_version`` until it reaches
    ``after_version``. A tombstone is a link only at the top (a deleted stream's latest
    version): whether a tombstone at the top is an error is the caller's to say.

    A missing version below links that are all an erasure's fences (rebased, no events) is a
    :attr:`~BreakReason.FENCE_GAP`: a fence round's PUT not landed (yet). It does not end the
    walk: the links yielded before it are not part of the stream (yet), and the walk starts
    again, as at the top, from the newest version below the gap. Every other break ends it.
    """
    top = max(newest, default=after_version)
    if top <= after_version:
        return
    where, at_top, fences_only = newest[top], True, True
    while True:
        chunk = read(where)
        if chunk.deleted:
            if not at_top:
                yield ChainBreak(BreakReason.TOMBSTONE, where.key, chunk.version)
                return
        elif chunk.erased:
            yield ChainBreak(BreakReason.ERASED, where.key, chunk.version)
            return
        yield Link(where, chunk)
        fences_only = fences_only and is_fence(chunk)
        if chunk.base_version <= after_version:
            return
        below = newest.get(chunk.base_version)
        if below is None:
            if not fences_only:
                yield ChainBreak(BreakReason.MISSING, where.key, chunk.base_version)
                return
            yield ChainBreak(BreakReason.FENCE_GAP, where.key, chunk.base_version)
            head = version_below(newest, chunk.base_version)
            if head <= after_version:
                return
            where, at_top, fences_only = newest[head], True, True
            continue
        where, at_top = below, False


class ReadAhead(Generic[N, T]):
    """A ``read`` for :func:`walk_chain` that fetches the links the walk will likely need next.

    The walk learns each link's successor only by reading it (its ``base_version``), but the
    listing already names the chunk that stands for each version. A location the walk asks
    for that was not fetched ahead (the top of the chain, or after a jump) is read at once, and
    its ``base_version`` says which location comes next. From there the next ``depth``
    locations are fetched ahead, at most ``depth`` in flight, in the order the walk will need
    them, predicted as the common case has it: an append's chunk (number 0) follows the
    version just below it. A chunk of a higher number (re-snapshotted, merged or compacted)
    may skip versions, so nothing below it is fetched until it is read: a compacted chunk
    costs no request for the versions it covers. A tombstone or an erased chunk ends the
    prediction (the walk stops there). So a stream of appends, and a deleted one, cost the same
    GETs as reading one chunk at a time; a walk that jumps where number 0 said it would not,
    or stops below the top (a tombstone or an erased chunk there), wastes at most the fetches
    already started (``depth``). Those not started are cancelled.

    Handing a fetch to a thread (or a task) costs some 15 µs of CPU: more than a GET from
    memory or a local disk takes. So a fetch read at once that took less than ``min_wait``
    seconds starts no read-ahead; the walk reads one chunk at a time for as long as the store
    answers that fast (a stream in memory replays at the speed of decoding it).

    ``fetch`` runs through ``submit`` (a thread pool's; the event loop's tasks for the async
    store); ``finish`` turns its result into the chunk in the caller's thread (or task), so a
    corrupt chunk raises in walk order. Call :meth:`close` when the walk ends, to cancel what
    it no longer needs.
    """

    def __init__(
        self,
        newest: Mapping[int, N],
        fetch: Callable[[N], T],
        finish: Callable[[N, T], Chunk],
        *,
        submit: Callable[[Callable[[N], T], N], Future[T]],
        depth: int,
        after_version: int = 0,
        min_wait: float = MIN_WAIT,
    ) -> None:
        if depth < 1:
            raise ValueError(f"read-ahead depth must be at least 1, not {depth}")
        self._newest = newest
        self._fetch = fetch
        self._finish = finish
        self._submit = submit
        self._depth = depth
        self._after_version = after_version
        self._min_wait = min_wait
        self._pending: collections.deque[tuple[N, Future[T]]] = collections.deque()
        #: The next location predicted and not yet fetched, or None: no prediction.
        self._next: N | None = None

    def __call__(self, where: N) -> Chunk:
        """The chunk at ``where``: fetched ahead if it was predicted, else read now."""
        pending = self._pending
        while pending and pending[0][0] is not where and pending[0][0] != where:
            forget(pending.popleft()[1])  # mispredicted
        if pending:
            _, future = pending.popleft()
            self._fill()
            chunk = self._finish(where, outcome(future))
        else:
            self._next = None
            started = time.perf_counter()
            fetched = self._fetch(where)
            waited = time.perf_counter() - started
            chunk = self._finish(where, fetched)
            if waited < self._min_wait:
                return chunk  # a store this fast gains nothing from threads: read on one by one
        if chunk.deleted or chunk.erased:
            self.close()  # the walk ends here, or raises
        elif not pending and self._next is None and chunk.base_version > self._after_version:
            self._next = self._newest.get(chunk.base_version)
            self._fill()
        return chunk

    def close(self) -> None:
        """Cancel every fetch not started yet; forget the prediction."""
        while self._pending:
            forget(self._pending.popleft()[1])
        self._next = None

    def _fill(self) -> None:
        while self._next is not None and len(self._pending) < self._depth:
            where = self._next
            self._pending.append((where, self._submit(self._fetch, where)))
            self._next = self._below(where)

    def _below(self, where: N) -> N | None:
        """The location the walk needs after ``where``'s, if an append's chunk is at ``where``."""
        if where.number != FIRST_CHUNK or where.version - 1 <= self._after_version:
            return None
        return self._newest.get(where.version - 1)
