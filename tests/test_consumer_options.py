"""The consumers' options as values: Shards, Feed, LeaseOptions, Batching, ReactionRetry."""

from __future__ import annotations

from typing import Any

import pytest

from s3es import Backoff, EventStore
from s3es.aio import (
    AsyncDocumentProjector,
    AsyncEventStore,
    AsyncInMemoryObjectStore,
    AsyncProjector,
    AsyncReactorRunner,
    AsyncS3ReadModelStore,
)
from s3es.errors import InvalidConfiguration
from s3es.projections import (
    Batching,
    DocumentProjector,
    Feed,
    LeaseOptions,
    Notified,
    Projector,
    Shards,
)
from s3es.reactors import ReactionRetry, ReactorRunner
from s3es.readmodels import S3ReadModelStore
from s3es.storage import InMemoryObjectStore
from tests.consumers_cli_fixtures import CounterIds
from tests.consumers_cli_fixtures import Mirror as Fulfilment
from tests.projections import AppliedIds as CounterView


class _Notifications:
    def receive(self) -> Notified:
        return Notified((), ())

    def acknowledge(self, notified: Notified) -> None:
        pass


def _events() -> EventStore:
    return EventStore(InMemoryObjectStore())


class TestValues:
    """Each value refuses what cannot work, naming its class, its field and the value."""

    @pytest.mark.parametrize(
        ("make", "message"),
        [
            (lambda: Shards(0), r"Shards\.count must be an int >= 1, not 0"),
            (lambda: Shards(True), r"Shards\.count must be an int >= 1, not True"),
            (lambda: Shards(2, ids=[0, 0]), r"Shards\.ids must be .*range\(0, 2\), not \(0, 0\)"),
            (lambda: Shards(2, ids=[]), r"Shards\.ids must be .*, not \(\)"),
            (lambda: Shards(2, ids="01"), r"Shards\.ids must be .*, not '01'"),  # type: ignore[arg-type]
            (lambda: Feed(lookback=-1), r"Feed\.lookback must be a number of seconds >= 0, not -1"),
            (lambda: Feed(full_scan_interval="1"), r"Feed\.full_scan_interval must be .*'1'"),  # type: ignore[arg-type]
            (lambda: LeaseOptions(ttl=0), r"LeaseOptions\.ttl must be a number of seconds > 0"),
            (lambda: LeaseOptions(owner=""), r"LeaseOptions\.owner must be a non-empty str"),
            (lambda: Batching(commit_every=0), r"Batching\.commit_every must be an int >= 1"),
            (lambda: Batching(read_concurrency=1.5), r"Batching\.read_concurrency .*, not 1\.5"),  # type: ignore[arg-type]
            (lambda: ReactionRetry(max_attempts=0), r"ReactionRetry\.max_attempts must be"),
            (lambda: ReactionRetry(backoff=1.0), r"ReactionRetry\.backoff must be a Backoff"),  # type: ignore[arg-type]
        ],
    )
    def test_refuses(self, make: Any, message: str) -> None:
        """A value out of range or of the wrong type raises InvalidConfiguration."""
        with pytest.raises(InvalidConfiguration, match=message):
            make()

    def test_shards_chosen(self) -> None:
        """``chosen`` is every shard by default, else the ids given (as a tuple)."""
        assert Shards(3).chosen == (0, 1, 2)
        assert Shards(3, ids=[2, 0]).chosen == (2, 0)


class TestConsumersTakeValues:
    """The consumers take the values, and hand one options value to their engine."""

    def test_document_projector(self) -> None:
        """Shards, feed, lease and batching land where the engine reads them."""
        projector = DocumentProjector(
            _events(),
            CounterIds,
            S3ReadModelStore(InMemoryObjectStore()),
            shards=Shards(4, ids=[1, 3]),
            feed=Feed(lookback=5.0, full_scan_interval=60.0),
            lease=LeaseOptions(owner="pod-1", ttl=12.0),
            batching=Batching(commit_every=7, read_concurrency=2),
        )
        assert (projector.shards, projector.shard_ids, projector.owner) == (4, (1, 3), "pod-1")
        assert projector.feed == Feed(lookback=5.0, full_scan_interval=60.0)
        assert projector.options.batching == Batching(7, 2)
        assert projector.options.lease.ttl == 12.0

    def test_plain_shards_and_feed(self) -> None:
        """``shards=N`` is Shards(N); ``feed`` True is Feed(), notifications a Feed of them."""
        notifications = _Notifications()
        projector = DocumentProjector(
            _events(), CounterIds, S3ReadModelStore(InMemoryObjectStore()), shards=2, feed=True
        )
        assert (projector.options.shards, projector.feed) == (Shards(2), Feed())
        notified = DocumentProjector(
            _events(), CounterIds, S3ReadModelStore(InMemoryObjectStore()), feed=notifications
        )
        assert notified.feed == Feed(notifications=notifications)
        scanning = DocumentProjector(_events(), CounterIds, S3ReadModelStore(InMemoryObjectStore()))
        assert scanning.feed is None

    def test_reactor_defaults(self) -> None:
        """A reactor commits every 100 events and tries a reaction 3 times by default."""
        runner = ReactorRunner(_events(), Fulfilment, S3ReadModelStore(InMemoryObjectStore()))
        assert runner.options.batching == Batching(commit_every=100)
        assert runner.reaction_retry == ReactionRetry()
        retried = ReactorRunner(
            _events(),
            Fulfilment,
            S3ReadModelStore(InMemoryObjectStore()),
            retry=ReactionRetry(5, Backoff(initial=0.1)),
        )
        assert retried.reaction_retry.max_attempts == 5

    def test_projector(self) -> None:
        """The whole-model projector runs one shard, with the lease and batching given."""
        projector = Projector(
            _events(), CounterView, lease=LeaseOptions(owner="one"), batching=Batching(3)
        )
        assert (projector.shards, projector.owner, projector.options.batching.commit_every) == (
            1,
            "one",
            3,
        )

    def test_async_twins(self) -> None:
        """The asyncio consumers take the same values."""
        objects = AsyncInMemoryObjectStore()
        store = AsyncS3ReadModelStore(objects)
        events = AsyncEventStore(objects)
        projector = AsyncDocumentProjector(
            events, CounterIds, store, shards=Shards(2, ids=[1]), lease=LeaseOptions(owner="a")
        )
        assert (projector.shard_ids, projector.owner) == ((1,), "a")
        runner = AsyncReactorRunner(events, Fulfilment, store, retry=ReactionRetry(2))
        assert runner.reaction_retry.max_attempts == 2
        model = AsyncProjector(events, CounterView, feed=True)
        assert model.feed == Feed()

    @pytest.mark.parametrize(
        ("options", "message"),
        [
            ({"shards": "2"}, r"DocumentProjector: shards must be an int or Shards, not '2'"),
            ({"feed": 1.0}, r"DocumentProjector: feed must be a bool, a Feed or change notif"),
            ({"lease": 30.0}, r"DocumentProjector: lease must be LeaseOptions or NoneType"),
            ({"batching": 10}, r"DocumentProjector: batching must be Batching or NoneType"),
        ],
    )
    def test_wrong_type(self, options: dict[str, Any], message: str) -> None:
        """An option of the wrong type names the consumer class and the option."""
        with pytest.raises(InvalidConfiguration, match=message):
            DocumentProjector(
                _events(), CounterIds, S3ReadModelStore(InMemoryObjectStore()), **options
            )


class TestOldKeywords:
    """The keywords of the release before still work, mapped to the values."""

    def test_mapped(self) -> None:
        """Each old keyword lands in its value."""
        old: dict[str, Any] = {
            "shard_ids": [1],
            "owner": "old",
            "lease_ttl": 9.0,
            "feed_lookback": 1.0,
            "full_scan_interval": 2.0,
            "commit_every": 4,
            "read_concurrency": 3,
        }
        with pytest.warns(DeprecationWarning, match=r"DocumentProjector: \w+= is deprecated"):
            projector = DocumentProjector(
                _events(),
                CounterIds,
                S3ReadModelStore(InMemoryObjectStore()),
                shards=2,
                feed=True,
                **old,
            )
        assert projector.options.shards == Shards(2, ids=(1,))
        assert projector.options.lease == LeaseOptions(owner="old", ttl=9.0)
        assert projector.feed == Feed(lookback=1.0, full_scan_interval=2.0)
        assert projector.options.batching == Batching(commit_every=4, read_concurrency=3)
        backoff = Backoff(initial=0.2)
        with pytest.warns(DeprecationWarning, match=r"ReactorRunner: \w+= is deprecated"):
            runner = ReactorRunner(
                _events(),
                Fulfilment,
                S3ReadModelStore(InMemoryObjectStore()),
                attempts=4,
                backoff=backoff,
                commit_every=50,
            )
        assert runner.reaction_retry == ReactionRetry(4, backoff)
        assert runner.options.batching == Batching(commit_every=50)

    @pytest.mark.parametrize(
        ("options", "message"),
        [
            ({"shards": Shards(2, ids=[0]), "shard_ids": [1]}, r"shard_ids= .* Shards\.ids"),
            ({"lease": LeaseOptions(), "owner": "x"}, r"owner= .* lease=LeaseOptions"),
            ({"batching": Batching(), "commit_every": 3}, r"commit_every= .* batching=Batching"),
            ({"feed": Feed(), "feed_lookback": 3.0}, r"feed_lookback= .* Feed\.lookback"),
        ],
    )
    def test_not_both(self, options: dict[str, Any], message: str) -> None:
        """A setting given both ways is refused, naming both spellings."""
        with (
            pytest.warns(DeprecationWarning, match="DocumentProjector: .* is deprecated"),
            pytest.raises(InvalidConfiguration, match=f"DocumentProjector: {message}"),
        ):
            DocumentProjector(
                _events(), CounterIds, S3ReadModelStore(InMemoryObjectStore()), **options
            )

    def test_reactor_not_both(self) -> None:
        """``retry`` and ``attempts`` together are refused."""
        with (
            pytest.warns(DeprecationWarning, match="ReactorRunner: attempts= is deprecated"),
            pytest.raises(InvalidConfiguration, match=r"ReactorRunner: attempts= .* retry="),
        ):
            ReactorRunner(
                _events(),
                Fulfilment,
                S3ReadModelStore(InMemoryObjectStore()),
                retry=ReactionRetry(),
                attempts=2,
            )

    def test_unknown_keyword(self) -> None:
        """A keyword a consumer never took is a TypeError, as for any call."""
        with pytest.raises(TypeError, match="'attempts'"):
            DocumentProjector(
                _events(),
                CounterIds,
                S3ReadModelStore(InMemoryObjectStore()),
                attempts=2,
            )
        with pytest.raises(TypeError, match="'shard_ids'"):
            Projector(_events(), CounterView, shard_ids=[0])


_BACKOFF = Backoff(initial=0.2)

#: Each old keyword, a value for it, the replacement its warning names, and where it lands.
_DEPRECATED: list[tuple[str, object, str, str]] = [
    ("shard_ids", [1], r"shards=Shards\(count, ids=\.\.\.\)", "options.shards.ids"),
    ("owner", "old", r"lease=LeaseOptions\(owner=\.\.\.\)", "options.lease.owner"),
    ("lease_ttl", 9.0, r"lease=LeaseOptions\(ttl=\.\.\.\)", "options.lease.ttl"),
    ("feed_lookback", 1.0, r"feed=Feed\(lookback=\.\.\.\)", "feed.lookback"),
    (
        "full_scan_interval",
        2.0,
        r"feed=Feed\(full_scan_interval=\.\.\.\)",
        "feed.full_scan_interval",
    ),
    (
        "commit_every",
        4,
        r"batching=Batching\(commit_every=\.\.\.\)",
        "options.batching.commit_every",
    ),
    (
        "read_concurrency",
        3,
        r"batching=Batching\(read_concurrency=\.\.\.\)",
        "options.batching.read_concurrency",
    ),
    ("attempts", 4, r"retry=ReactionRetry\(max_attempts=\.\.\.\)", "reaction_retry.max_attempts"),
    ("backoff", _BACKOFF, r"retry=ReactionRetry\(backoff=\.\.\.\)", "reaction_retry.backoff"),
]


def _landed(consumer: object, path: str) -> object:
    for name in path.split("."):
        consumer = getattr(consumer, name)
    return consumer


class TestOldKeywordsWarn:
    """Each old keyword warns, naming itself and its replacement, and still maps."""

    @pytest.mark.parametrize(("keyword", "value", "replacement", "landed"), _DEPRECATED)
    def test_sync(self, keyword: str, value: object, replacement: str, landed: str) -> None:
        """The sync consumers warn at the caller's line and map the keyword."""
        reactor = keyword in {"attempts", "backoff"}
        old: dict[str, Any] = {keyword: value}
        cls = "ReactorRunner" if reactor else "DocumentProjector"
        store = S3ReadModelStore(InMemoryObjectStore())
        match = rf"^{cls}: {keyword}= is deprecated: give {replacement} \(the old keyword works"
        with pytest.warns(DeprecationWarning, match=match) as caught:
            consumer: Any = (
                ReactorRunner(_events(), Fulfilment, store, **old)
                if reactor
                else DocumentProjector(_events(), CounterIds, store, shards=2, feed=True, **old)
            )
        assert [w.filename for w in caught] == [__file__]
        expected = (1,) if keyword == "shard_ids" else value
        assert _landed(consumer, landed) == expected

    @pytest.mark.parametrize(("keyword", "value", "replacement", "landed"), _DEPRECATED)
    def test_async(self, keyword: str, value: object, replacement: str, landed: str) -> None:
        """The asyncio consumers warn and map the same way."""
        reactor = keyword in {"attempts", "backoff"}
        old: dict[str, Any] = {keyword: value}
        cls = "AsyncReactorRunner" if reactor else "AsyncDocumentProjector"
        events = AsyncEventStore(AsyncInMemoryObjectStore())
        store = AsyncS3ReadModelStore(AsyncInMemoryObjectStore())
        match = rf"^{cls}: {keyword}= is deprecated: give {replacement}"
        with pytest.warns(DeprecationWarning, match=match) as caught:
            consumer: Any = (
                AsyncReactorRunner(events, Fulfilment, store, **old)
                if reactor
                else AsyncDocumentProjector(events, CounterIds, store, shards=2, feed=True, **old)
            )
        assert [w.filename for w in caught] == [__file__]
        expected = (1,) if keyword == "shard_ids" else value
        assert _landed(consumer, landed) == expected

    def test_projector(self) -> None:
        """The whole-model projector warns for its old keywords too."""
        with pytest.warns(DeprecationWarning, match=r"^Projector: owner= is deprecated"):
            projector = Projector(_events(), CounterView, owner="old")
        assert projector.options.lease.owner == "old"

    def test_values_do_not_warn(self) -> None:
        """The values themselves raise no warning (the suite turns warnings into errors)."""
        projector = DocumentProjector(
            _events(),
            CounterIds,
            S3ReadModelStore(InMemoryObjectStore()),
            shards=Shards(2, ids=[1]),
            lease=LeaseOptions(owner="new"),
        )
        assert projector.options.shards.ids == (1,)
