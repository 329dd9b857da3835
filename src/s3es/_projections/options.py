"""The consumers' options: small frozen values, checked when they are made.

The same values serve the sync and asyncio consumers (:class:`~s3es.projections.Projector`,
:class:`~s3es.projections.DocumentProjector`, :class:`~s3es.reactors.ReactorRunner` and their
``Async`` twins) and the ``s3es projection`` / ``s3es reactor`` commands. A value that cannot
work raises InvalidConfiguration naming the class, the field and the value.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypedDict, cast

import attrs

from s3es._base.backoff import Backoff
from s3es._domain.options import _positive_int, _refuse
from s3es.errors import InvalidConfiguration

if TYPE_CHECKING:
    from s3es._projections._async.notifications import AsyncChangeNotifications
    from s3es._projections.notifications import ChangeNotifications

__all__ = [
    "Batching",
    "ConsumerOptions",
    "Feed",
    "LeaseOptions",
    "OldKeywords",
    "ReactionRetry",
    "Shards",
    "consumer_options",
    "reaction_retry",
]


def _seconds(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A number of seconds >= 0 (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        _refuse(instance, attribute, value, "a number of seconds >= 0")


def _positive_seconds(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A number of seconds > 0 (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        _refuse(instance, attribute, value, "a number of seconds > 0")


def _shard_ids(instance: Shards, attribute: attrs.Attribute[Any], value: object) -> None:
    """None, or distinct shard numbers in ``range(instance.count)``."""
    if value is None:
        return
    ids = value if isinstance(value, tuple) else ()
    if (
        not ids
        or len(set(ids)) != len(ids)
        or not all(type(i) is int and 0 <= i < instance.count for i in ids)
    ):
        _refuse(
            instance,
            attribute,
            value,
            f"None (all) or distinct shards in range(0, {instance.count})",
        )


def _as_ids(value: Sequence[int] | None) -> tuple[int, ...] | None:
    """``value`` as a tuple; anything but a sequence as given (the validator refuses it)."""
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return tuple(value)
    return cast("tuple[int, ...] | None", value)


def _owner(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        _refuse(instance, attribute, value, "a non-empty str or None (host:pid:random)")


def _backoff(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, Backoff):
        _refuse(instance, attribute, value, "a Backoff")


@attrs.frozen
class Shards:
    """How many shards a consumer runs as, and which of them this consumer runs.

    ``DocumentProjector(store, projection, models, shards=Shards(4, ids=[0, 1]))``; a plain
    ``shards=4`` is ``Shards(4)``. A stream belongs to shard ``shard_of(stream, count)``: every
    process of one consumer must give the same ``count``.

    Attributes:
        count: The number of shards, an int >= 1.
        ids: The shards this consumer runs, distinct, from 0 to ``count - 1``; None: all.

    Raises:
        InvalidConfiguration: A field's value cannot work; names the class, field and value.
    """

    count: int = attrs.field(default=1, validator=_positive_int)
    ids: tuple[int, ...] | None = attrs.field(default=None, converter=_as_ids, validator=_shard_ids)

    @property
    def chosen(self) -> tuple[int, ...]:
        """The shards this consumer runs.

        Returns:
            ``ids``, or every shard from 0 to ``count - 1``.
        """
        return tuple(range(self.count)) if self.ids is None else self.ids


@attrs.frozen
class Feed:
    """How a consumer learns, between full scans, which streams moved.

    ``feed=True`` is ``Feed()``: a pass lists the event store's ``_feed/`` objects (its
    appenders need ``EventStore(feed=True)``); ``Feed(notifications=...)`` receives S3 event
    notifications instead (a :class:`~s3es.projections.ChangeNotifications`, an
    :class:`~s3es.aio.AsyncChangeNotifications` for the asyncio consumers). Without a feed
    (``feed=False``), every pass scans every stream.

    Attributes:
        notifications: Where notifications come from; None: list the ``_feed/`` objects.
        lookback: Seconds before its cursor that a listing starts (>= 0), for the feed
            entries of appends whose clock lagged.
        full_scan_interval: Seconds (>= 0) after a shard's last full scan that a pass scans
            every stream anyway: the feed is a hint, the scan the net.

    Raises:
        InvalidConfiguration: A field's value cannot work; names the class, field and value.
    """

    notifications: ChangeNotifications | AsyncChangeNotifications | None = None
    lookback: float = attrs.field(default=30.0, validator=_seconds)
    full_scan_interval: float = attrs.field(default=3600.0, validator=_seconds)


@attrs.frozen
class LeaseOptions:
    """The leases a consumer takes on its shards: whose they say they are, and for how long.

    ``ReactorRunner(store, reactor, models, lease=LeaseOptions(owner=pod_name))``.

    Attributes:
        owner: The name its leases carry (a pod's name reads well); None: ``host:pid:random``.
        ttl: Seconds a lease lasts unless renewed (> 0); a pass renews it in time.

    Raises:
        InvalidConfiguration: A field's value cannot work; names the class, field and value.
    """

    owner: str | None = attrs.field(default=None, validator=_owner)
    ttl: float = attrs.field(default=30.0, validator=_positive_seconds)


@attrs.frozen
class Batching:
    """How a consumer reads streams and how much it commits at once.

    Attributes:
        commit_every: Events per commit (an int >= 1): a crash redoes at most that many.
        read_concurrency: Threads (tasks, in asyncio) reading streams ahead of the fold (an
            int >= 1); the fold itself stays in one thread, so ``evolve`` needs no locks.

    Raises:
        InvalidConfiguration: A field's value cannot work; names the class, field and value.
    """

    commit_every: int = attrs.field(default=1000, validator=_positive_int)
    read_concurrency: int = attrs.field(default=8, validator=_positive_int)


def _reaction_backoff() -> Backoff:
    return Backoff(initial=0.05, maximum=2.0)


@attrs.frozen
class ReactionRetry:
    """How a reactor runner retries a failing reaction before it parks the event.

    ``ReactorRunner(store, reactor, models, retry=ReactionRetry(max_attempts=5))``.

    Attributes:
        max_attempts: Tries of one reaction in all, an int >= 1 (1: park at the first error).
        backoff: The pause before each retry (full jitter).

    Raises:
        InvalidConfiguration: A field's value cannot work; names the class, field and value.
    """

    max_attempts: int = attrs.field(default=3, validator=_positive_int)
    backoff: Backoff = attrs.field(factory=_reaction_backoff, validator=_backoff)


_DEFAULT_BATCHING = Batching()


@attrs.frozen
class ConsumerOptions:
    """What a consumer's engine is given, once: its shards, feed, leases and batching."""

    shards: Shards = Shards()
    feed: Feed | None = None
    lease: LeaseOptions = LeaseOptions()
    batching: Batching = Batching()


class OldKeywords(TypedDict, total=False):
    """The keywords the consumers took before their options were values (one release more)."""

    shard_ids: Sequence[int] | None
    owner: str | None
    lease_ttl: float
    feed_lookback: float
    full_scan_interval: float
    commit_every: int
    read_concurrency: int
    attempts: int
    backoff: Backoff


def _typed(cls: str, option: str, value: object, wanted: type[Any] | tuple[type[Any], ...]) -> None:
    if not isinstance(value, wanted):
        names = wanted if isinstance(wanted, tuple) else (wanted,)
        expected = " or ".join(w.__name__ for w in names)
        raise InvalidConfiguration(f"{cls}: {option} must be {expected}, not {value!r:.80}")


def _mixed(cls: str, old: str, new: str) -> InvalidConfiguration:
    return InvalidConfiguration(
        f"{cls}: {old}= is the old spelling of {new}: give one or the other, not both"
    )


#: Each old keyword, and what replaces it (named in its DeprecationWarning).
_REPLACEMENTS = {
    "shard_ids": "shards=Shards(count, ids=...)",
    "owner": "lease=LeaseOptions(owner=...)",
    "lease_ttl": "lease=LeaseOptions(ttl=...)",
    "feed_lookback": "feed=Feed(lookback=...)",
    "full_scan_interval": "feed=Feed(full_scan_interval=...)",
    "commit_every": "batching=Batching(commit_every=...)",
    "read_concurrency": "batching=Batching(read_concurrency=...)",
    "attempts": "retry=ReactionRetry(max_attempts=...)",
    "backoff": "retry=ReactionRetry(backoff=...)",
}


def _warn_old(cls: str, old: OldKeywords, keywords: frozenset[str]) -> None:
    """A DeprecationWarning for each of ``keywords`` given in ``old``, at the consumer's caller.

    The stack: here, ``consumer_options`` or ``reaction_retry``, the consumer's ``__init__``,
    its caller.
    """
    for keyword in sorted(keywords & set(old)):
        warnings.warn(
            f"{cls}: {keyword}= is deprecated: give {_REPLACEMENTS[keyword]} (the old keyword "
            "works until the next release)",
            DeprecationWarning,
            stacklevel=4,
        )


def consumer_options(
    cls: str,
    *,
    shards: int | Shards,
    feed: object,
    lease: LeaseOptions | None,
    batching: Batching | None,
    old: OldKeywords,
    default_batching: Batching = _DEFAULT_BATCHING,
    accepted: frozenset[str] = frozenset(),
) -> ConsumerOptions:
    """The options of consumer class ``cls``, from its keywords (old spellings mapped).

    ``feed``: False (none), True (``Feed()``), a notifications source, or a :class:`Feed`;
    ``batching`` None: ``default_batching``. ``accepted``: the old keywords ``cls`` took
    besides those of :class:`OldKeywords` it maps here (``attempts``, ``backoff``).

    Raises:
        InvalidConfiguration: Naming ``cls`` and the option, for a value of the wrong type, or
            a value given both as an old keyword and in its new value.
        TypeError: For a keyword ``cls`` never took.

    Warns:
        DeprecationWarning: For each old keyword given, naming it and its replacement.
    """
    unknown = sorted(set(old) - accepted - _CONSUMER_OLD)
    if unknown:
        raise TypeError(f"{cls}() got an unexpected keyword argument {unknown[0]!r}")
    _warn_old(cls, old, _CONSUMER_OLD)
    return ConsumerOptions(
        _shards(cls, shards, old),
        _feed(cls, feed, old),
        _lease(cls, lease, old),
        _batching(cls, batching, old, default_batching),
    )


def _shards(cls: str, shards: int | Shards, old: OldKeywords) -> Shards:
    if isinstance(shards, bool) or not isinstance(shards, int | Shards):
        raise InvalidConfiguration(f"{cls}: shards must be an int or Shards, not {shards!r:.80}")
    if not isinstance(shards, Shards):
        shards = Shards(shards)
    if "shard_ids" not in old:
        return shards
    if shards.ids is not None:
        raise _mixed(cls, "shard_ids", "Shards.ids")
    return Shards(shards.count, old["shard_ids"])


def _feed(cls: str, feed: object, old: OldKeywords) -> Feed | None:
    found: Feed | None
    if feed is False:
        found = None
    elif feed is True:
        found = Feed()
    elif isinstance(feed, Feed):
        found = feed
    elif callable(getattr(feed, "receive", None)) and callable(getattr(feed, "acknowledge", None)):
        found = Feed(notifications=feed)  # type: ignore[arg-type] # either kind: checked above
    else:
        raise InvalidConfiguration(
            f"{cls}: feed must be a bool, a Feed or change notifications, not {feed!r:.80}"
        )
    for key, field in [("feed_lookback", "lookback"), ("full_scan_interval", "full_scan_interval")]:
        if key in old and found is not None:  # without a feed, they never counted
            if isinstance(feed, Feed):
                raise _mixed(cls, key, f"Feed.{field}")
            found = attrs.evolve(found, **{field: old[key]})  # type: ignore[literal-required]
    return found


def _lease(cls: str, lease: LeaseOptions | None, old: OldKeywords) -> LeaseOptions:
    _typed(cls, "lease", lease, (LeaseOptions, type(None)))
    if lease is not None:
        for key in ("owner", "lease_ttl"):
            if key in old:
                raise _mixed(cls, key, "lease=LeaseOptions(...)")
        return lease
    default = LeaseOptions()
    return LeaseOptions(old.get("owner", default.owner), old.get("lease_ttl", default.ttl))


def _batching(cls: str, batching: Batching | None, old: OldKeywords, default: Batching) -> Batching:
    _typed(cls, "batching", batching, (Batching, type(None)))
    if batching is not None:
        for key in ("commit_every", "read_concurrency"):
            if key in old:
                raise _mixed(cls, key, "batching=Batching(...)")
        return batching
    return Batching(
        old.get("commit_every", default.commit_every),
        old.get("read_concurrency", default.read_concurrency),
    )


_CONSUMER_OLD = frozenset(
    {
        "shard_ids",
        "owner",
        "lease_ttl",
        "feed_lookback",
        "full_scan_interval",
        "commit_every",
        "read_concurrency",
    }
)


def reaction_retry(cls: str, retry: ReactionRetry | None, old: OldKeywords) -> ReactionRetry:
    """A reactor runner's retry, from ``retry`` or the old ``attempts`` and ``backoff``.

    Raises:
        InvalidConfiguration: Naming ``cls``, for a ``retry`` that is not a ReactionRetry, or
            one given with an old keyword.

    Warns:
        DeprecationWarning: For ``attempts`` or ``backoff``, naming its replacement.
    """
    _warn_old(cls, old, frozenset({"attempts", "backoff"}))
    _typed(cls, "retry", retry, (ReactionRetry, type(None)))
    if retry is not None:
        if "attempts" in old or "backoff" in old:
            name = "attempts" if "attempts" in old else "backoff"
            raise _mixed(cls, name, "retry=ReactionRetry(...)")
        return retry
    retry = ReactionRetry()
    return ReactionRetry(old.get("attempts", retry.max_attempts), old.get("backoff", retry.backoff))
