"""Request accounting: counts, prices, per-context meters, and the latency-simulating store."""

from __future__ import annotations

import threading

import pytest

from s3es import CommandHandler, EventStore, InMemoryObjectStore, Repository
from s3es.metering import S3_STANDARD_PRICES, RequestCounts, RequestPrices, measure_requests
from s3es.storage import LatencyObjectStore, SimulatedLatency
from tests.aggregates import Counter, Increment


class TestRequestCounts:
    def test_arithmetic(self) -> None:
        """Counts add and subtract kind by kind, and total every kind."""
        a = RequestCounts(put=3, get=2, list=1, delete=4)
        b = RequestCounts(put=1, get=1, list=1, delete=1)
        assert a - b == RequestCounts(put=2, get=1, list=0, delete=3)
        assert a + b == RequestCounts(put=4, get=3, list=2, delete=5)
        assert a.total == 10

    def test_text(self) -> None:
        """A count reads as its non-zero kinds, LIST first; none reads as "no request"."""
        assert str(RequestCounts(put=1, list=1, get=1)) == "1 LIST + 1 GET + 1 PUT"
        assert str(RequestCounts(get=10_000, delete=2)) == "10,000 GET + 2 DELETE"
        assert str(RequestCounts()) == "no request"

    def test_cost_at_s3_standard_prices(self) -> None:
        """A million PUTs cost $5, a million GETs $0.40, a million LISTs $5, DELETEs nothing."""
        million = 1_000_000
        assert RequestCounts(put=million).cost() == pytest.approx(5.0)
        assert RequestCounts(get=million).cost() == pytest.approx(0.40)
        assert RequestCounts(list=million).cost() == pytest.approx(5.0)
        assert RequestCounts(delete=million).cost() == 0
        assert RequestCounts().cost(S3_STANDARD_PRICES) == 0

    def test_cost_at_other_prices(self) -> None:
        """Prices are overridable, kind by kind."""
        prices = RequestPrices(put=0.01, get=0.001, list=0.1, delete=1.0)
        counts = RequestCounts(put=2, get=3, list=1, delete=1)
        assert counts.cost(prices) == pytest.approx(0.02 + 0.003 + 0.1 + 1.0)


class TestMeasureRequests:
    def test_counts_only_its_own_block(self) -> None:
        """A meter counts the requests sent inside its block, not before or after."""
        store = InMemoryObjectStore()
        store.put_if_absent("a/1", b"x")
        with measure_requests() as meter:
            store.get("a/1")
            list(store.list_keys("a/"))
        store.get("a/1")
        assert meter.counts == RequestCounts(get=1, list=1)

    def test_nested(self) -> None:
        """An outer meter counts what inner meters count too."""
        store = InMemoryObjectStore()
        with measure_requests() as outer:
            store.get("k")
            with measure_requests() as inner:
                store.get("k")
        assert (outer.counts.get, inner.counts.get) == (2, 1)

    def test_other_threads_not_counted(self) -> None:
        """Requests another thread sends meanwhile are not counted by this thread's meter,
        though the store counts them all."""
        store = InMemoryObjectStore()
        started, release = threading.Event(), threading.Event()

        def other() -> None:
            started.wait()
            for _ in range(5):
                store.get("k")
            release.set()

        thread = threading.Thread(target=other)
        thread.start()
        with measure_requests() as meter:
            store.get("k")
            started.set()
            release.wait()
        thread.join()
        assert meter.counts == RequestCounts(get=1)
        assert store.requests == RequestCounts(get=6)

    def test_command_result_counts_its_requests(self) -> None:
        """Each CommandResult carries the requests its own call sent, also among threads."""
        store = InMemoryObjectStore()
        handler = CommandHandler(Repository(EventStore(store), Counter))
        results = []
        lock = threading.Lock()

        def run(stream_id: str) -> None:
            for _ in range(3):
                result = handler.handle(stream_id, Increment(1))
                with lock:
                    results.append(result)

        threads = [threading.Thread(target=run, args=(f"c-{n}",)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # Each stream is touched by one thread: a cold first command, then warm ones.
        assert sorted(r.requests.total for r in results) == [1] * 8 + [2] * 4
        assert sum((r.requests for r in results), RequestCounts()) == store.requests


class TestLatencyObjectStore:
    def _store(self, latency: SimulatedLatency) -> tuple[LatencyObjectStore, list[float]]:
        slept: list[float] = []
        return LatencyObjectStore(InMemoryObjectStore(), latency, sleep=slept.append), slept

    def test_waits_per_request_kind(self) -> None:
        """Each request waits its kind's latency before it is passed on."""
        latency = SimulatedLatency(put=0.03, get=0.02, list=0.01, delete=0.04)
        store, slept = self._store(latency)
        store.put_if_absent("p/a", b"1")
        assert store.get("p/a") is not None
        assert list(store.list_keys("p/")) == ["p/a"]
        store.delete("p/a")
        assert slept == [0.03, 0.02, 0.01, 0.04]
        assert store.requests == RequestCounts(put=1, get=1, list=1, delete=1)

    def test_one_wait_per_list_page(self) -> None:
        """A listing of 2,500 keys waits three times, once per page of 1,000."""
        store, slept = self._store(SimulatedLatency.fixed(0.02))
        for n in range(2_500):
            store.inner.put_if_absent(f"p/{n:05d}", b"")
        assert len(list(store.list_keys("p/"))) == 2_500
        assert slept == [0.02] * 3

    def test_jitter_stays_within_bounds(self) -> None:
        """With jitter j, each wait lies within (1 ± j) times the latency."""
        latency = SimulatedLatency(put=0.02, get=0.02, list=0.02, delete=0.02, jitter=0.5)
        slept: list[float] = []
        store = LatencyObjectStore(InMemoryObjectStore(), latency, sleep=slept.append, seed=7)
        for n in range(50):
            store.get(f"k{n}")
        assert all(0.01 <= s <= 0.03 for s in slept)
        assert len(set(slept)) > 1

    def test_negative_latency_refused(self) -> None:
        """A negative latency is refused, naming the kind."""
        with pytest.raises(ValueError, match="'put' must be >= 0: -"):
            SimulatedLatency(put=-1)
