"""The self-test: stores that honour If-None-Match and If-Match pass, others fail, saying why."""

from __future__ import annotations

import threading

import pytest

from s3es import InMemoryObjectStore, InvalidConfiguration, ObjectStoreError, S3ObjectStore
from s3es.errors import ObjectAlreadyExists, ObjectChanged
from s3es.metering import RequestCounts
from s3es.ops import require_conditional_writes, self_test
from s3es.storage import ForwardingObjectStore, ObjectStore
from s3es.testing.embedded_s3 import EmbeddedS3

#: What the self-test sends to a store that passes it: 5 PUT + 3 GET + 1 DELETE of the
#: sequential checks, then per race round 16 + 16 PUT, 2 GET and the round's key deleted.
PASSING_REQUESTS = RequestCounts(put=5 + 3 * 32, get=3 + 3 * 2, delete=1 + 3)


class IgnoresIfNoneMatch(ForwardingObjectStore):
    """A store whose put-if-absent overwrites whatever is at the key, as a PUT without it does."""

    def put_if_absent(self, key: str, body: bytes) -> str:
        self.inner.delete(key)
        return self.inner.put_if_absent(key, body)


class IgnoresIfMatch(ForwardingObjectStore):
    """A store whose replace stores the body whatever the ETag, and creates a missing key."""

    def replace(self, key: str, body: bytes, *, etag: str) -> str:
        current = self.inner.get(key)
        if current is None:
            return self.inner.put_if_absent(key, body)
        return self.inner.replace(key, body, etag=current.etag)


class RefusesEveryReplace(ForwardingObjectStore):
    """A store that refuses every replace, even one with the right ETag."""

    def replace(self, key: str, body: bytes, *, etag: str) -> str:
        raise ObjectChanged(key)


class FailsReplace(ForwardingObjectStore):
    """A store whose replace fails on the network."""

    def replace(self, key: str, body: bytes, *, etag: str) -> str:
        raise ObjectStoreError("PUT", key, "connection reset")


class LetsTwoRacersThrough(ForwardingObjectStore):
    """A store whose conditional writes check, then store, in two steps, as moto's do.

    One writer at a time is refused as it should be: the self-test's sequential checks, run in
    the thread that made the store, pass. Of writers racing from other threads, the first to
    pass a key's check waits (before it stores) until a second has passed it too: both are
    told they won, every time, whatever the threads' timing.
    """

    def __init__(self, inner: ObjectStore) -> None:
        super().__init__(inner)
        self._owner = threading.get_ident()
        self._lock = threading.Lock()
        self._waiting: dict[tuple[str, str], threading.Event] = {}
        self._paired: set[tuple[str, str]] = set()

    def _passed_check(self, write: str, key: str) -> None:
        """Hold the first racer to pass the check of ``key`` until a second one has."""
        if threading.get_ident() == self._owner:
            return
        name = (write, key)
        with self._lock:
            if name in self._paired:
                return
            first = self._waiting.pop(name, None)
            if first is not None:
                self._paired.add(name)
                first.set()
                return
            mine = self._waiting[name] = threading.Event()
        assert mine.wait(60), f"no second writer raced for {key!r}"  # a hang guard only

    def put_if_absent(self, key: str, body: bytes) -> str:
        if self.inner.get(key) is not None:
            raise ObjectAlreadyExists(key)
        self._passed_check("put", key)
        with self._lock:
            self.inner.delete(key)
            return self.inner.put_if_absent(key, body)

    def replace(self, key: str, body: bytes, *, etag: str) -> str:
        current = self.inner.get(key)
        if current is None or current.etag != etag:
            raise ObjectChanged(key)
        self._passed_check("replace", key)
        with self._lock:
            stored = self.inner.get(key)
            assert stored is not None
            return self.inner.replace(key, body, etag=stored.etag)


def _leftovers(store: ObjectStore, prefix: str = "") -> list[str]:
    return list(store.list_keys(f"{prefix}_selftest/"))


class TestPassingStores:
    def test_in_memory(self) -> None:
        """The in-memory store passes every check, and the scratch key is deleted afterwards."""
        store = InMemoryObjectStore()
        report = self_test(store)
        assert report.ok
        assert [(c.condition, c.passed) for c in report.checks] == [
            ("If-None-Match", True),
            ("If-None-Match", True),
            ("If-Match", True),
            ("If-Match", True),
            ("If-Match", True),
            ("If-None-Match", True),
            ("If-Match", True),
        ]
        assert [str(check) for check in report.checks[-2:]] == [
            (
                "ok     If-None-Match: of 16 PUTs racing for one key, exactly one wins: "
                "1 winner in each of 3 rounds, its body kept"
            ),
            (
                "ok     If-Match: of 16 replaces racing with one ETag, exactly one wins: "
                "1 winner in each of 3 rounds, its body kept"
            ),
        ]
        assert report.key.startswith("_selftest/")
        assert report.deleted == (report.key, *(f"{report.key}-race-{n}" for n in (1, 2, 3)))
        assert report.requests == PASSING_REQUESTS
        assert report.summary() == "honours If-None-Match and If-Match: s3es can run on it"
        assert _leftovers(store) == []

    def test_moto(self, s3_store: S3ObjectStore) -> None:
        """An S3 bucket of the embedded moto server, whose conditional writes are atomic (under
        a lock), passes the races too, with the same requests, under the prefix given."""
        report = self_test(s3_store, "tenant/prod")
        assert report.ok, report.summary()
        assert report.key.startswith("tenant/prod/_selftest/")
        assert report.requests == PASSING_REQUESTS
        assert _leftovers(s3_store, "tenant/prod/") == []

    def test_two_runs_use_different_keys(self) -> None:
        """Each run has a scratch key of its own, so runs at start-up of many processes do not
        meet."""
        store = InMemoryObjectStore()
        assert self_test(store).key != self_test(store).key


class TestFailingStores:
    def test_ignores_if_none_match(self) -> None:
        """A store that overwrites on put-if-absent fails both If-None-Match checks, saying so."""
        store = IgnoresIfNoneMatch(InMemoryObjectStore())
        report = self_test(store)
        assert not report.ok
        assert report.failed_conditions == ("If-None-Match",)
        # Sequential checks first; whether the race is lost too depends on the threads.
        failed = [str(check) for check in report.checks[:5] if not check.passed]
        assert failed == [
            (
                "FAILED If-None-Match: a second PUT of the key is refused: the second PUT of "
                f"{report.key!r} with If-None-Match: * succeeded"
            ),
            (
                f"FAILED If-None-Match: the first body is kept: the body of {report.key!r} is "
                "the second PUT's"
            ),
        ]
        assert report.summary().startswith("does NOT honour If-None-Match, so s3es must not run")
        assert _leftovers(store) == []

    def test_ignores_if_match(self) -> None:
        """A store whose replace ignores the ETag fails the If-Match checks; the key it created
        for the missing-key check is deleted too."""
        store = IgnoresIfMatch(InMemoryObjectStore())
        report = self_test(store)
        assert report.failed_conditions == ("If-Match",)
        failed = [check.expected for check in report.checks[:5] if not check.passed]
        assert failed == [
            "a replace with a wrong ETag is refused",
            "a replace of a missing key is refused",
        ]
        assert "does NOT honour If-Match" in report.summary()
        assert report.deleted[:2] == (report.key, f"{report.key}-missing")
        assert _leftovers(store) == []

    def test_refuses_the_right_etag(self) -> None:
        """A store that refuses a replace with the right ETag fails, naming that ETag."""
        report = self_test(RefusesEveryReplace(InMemoryObjectStore()))
        failed, raced = [check for check in report.checks if not check.passed]
        assert failed.expected == "a replace with the right ETag is accepted"
        assert "its ETag, was refused" in failed.detail
        assert raced.detail.startswith("round 1: none of 16 racers won ")

    def test_request_failure_propagates_after_cleanup(self) -> None:
        """A request that fails is raised, not reported as a check, and the key is deleted."""
        inner = InMemoryObjectStore()
        with pytest.raises(ObjectStoreError, match="connection reset"):
            self_test(FailsReplace(inner))
        assert _leftovers(inner) == []


class TestRaces:
    def test_two_racers_told_they_won_fail(self) -> None:
        """A store that refuses one writer at a time but lets two racing writers both win (as
        moto does now and then) passes every sequential check and fails both races."""
        store = LetsTwoRacersThrough(InMemoryObjectStore())
        report = self_test(store, racers=4, rounds=2)
        assert all(check.passed for check in report.checks[:5])
        assert [str(check) for check in report.checks[5:]] == [
            (
                "FAILED If-None-Match: of 4 PUTs racing for one key, exactly one wins: "
                f"round 1: 2 of 4 racers were told they won '{report.key}-race-1'"
            ),
            (
                "FAILED If-Match: of 4 replaces racing with one ETag, exactly one wins: "
                f"round 1: 2 of 4 racers were told they won '{report.key}-race-1'"
            ),
        ]
        assert report.summary().startswith("does NOT honour If-None-Match and If-Match, so s3es")
        assert _leftovers(store) == []

    def test_rounds_and_racers(self) -> None:
        """Each round races ``racers`` PUTs, then as many replaces, on a key of its own."""
        report = self_test(InMemoryObjectStore(), racers=2, rounds=1)
        assert report.ok
        assert report.requests == RequestCounts(put=5 + 4, get=3 + 2, delete=1 + 1)

    @pytest.mark.parametrize(("racers", "rounds"), [(1, 3), (16, 0)])
    def test_too_few(self, racers: int, rounds: int) -> None:
        """Fewer than two racers, or no round, is refused before any request is sent."""
        store = InMemoryObjectStore()
        with pytest.raises(InvalidConfiguration, match="needs racers >= 2 and rounds >= 1"):
            self_test(store, racers=racers, rounds=rounds)
        assert store.requests == RequestCounts()


class TestRequired:
    def test_passes(self) -> None:
        """require_conditional_writes returns the report of a store that passes."""
        assert require_conditional_writes(InMemoryObjectStore()).ok

    def test_refuses_naming_bucket_and_condition(self) -> None:
        """A store that fails is refused with InvalidConfiguration naming bucket and condition."""
        with pytest.raises(InvalidConfiguration) as refused:
            require_conditional_writes(IgnoresIfNoneMatch(InMemoryObjectStore()), bucket="b-1")
        assert str(refused.value).startswith(
            "bucket 'b-1' does NOT honour If-None-Match, so s3es must not run on it"
        )

    def test_connect_checks_at_start_up(self, embedded_s3: EmbeddedS3) -> None:
        """S3ObjectStore.connect(self_test=True) checks the bucket before returning the store."""
        embedded_s3.create_bucket("selftest-start")
        store = embedded_s3.object_store("selftest-start", self_test=True, self_test_prefix="p")
        assert store.requests == PASSING_REQUESTS
        assert _leftovers(store, "p/") == []

    def test_connect_refuses_a_store_ignoring_if_none_match(
        self, embedded_s3: EmbeddedS3, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A bucket whose PUTs ignore If-None-Match (simulated: the header is not sent) is
        refused at start-up, naming the bucket and the condition."""
        embedded_s3.create_bucket("selftest-ignoring")

        def unconditional(self: S3ObjectStore, key: str, body: bytes) -> str:
            return self._put(key, body, {})

        monkeypatch.setattr(S3ObjectStore, "put_if_absent", unconditional)
        with pytest.raises(
            InvalidConfiguration, match=r"'selftest-ignoring' does NOT honour If-No"
        ):
            embedded_s3.object_store("selftest-ignoring", self_test=True)

    def test_connect_without_self_test_sends_nothing(self, embedded_s3: EmbeddedS3) -> None:
        """Without self_test, connecting sends no request."""
        embedded_s3.create_bucket("selftest-off")
        assert embedded_s3.object_store("selftest-off").requests == RequestCounts()
