"""Request accounting: how many requests of each kind a store sent, and what they cost.

S3 charges per request, so requests and dollars per operation are first-class figures: every
adapter counts its requests in a :class:`RequestCounter`, and :func:`measure_requests` counts
those that one block of code causes.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterator

import attrs


@attrs.frozen
class RequestPrices:
    """Dollars per request of each kind; the defaults are S3 Standard's in us-east-1.

    Pass one to :meth:`RequestCounts.cost` to price requests at another region's or storage
    class's rates.

    Attributes:
        put: Dollars per PUT.
        get: Dollars per GET.
        list: Dollars per LIST.
        delete: Dollars per DELETE (free on S3).
    """

    put: float = 0.005 / 1000
    get: float = 0.0004 / 1000
    list: float = 0.005 / 1000
    delete: float = 0.0


#: S3 Standard's request prices in us-east-1, which :meth:`RequestCounts.cost` uses by default.
S3_STANDARD_PRICES = RequestPrices()


@attrs.frozen
class RequestCounts:
    """How many requests of each kind an object store sent: a value that adds and subtracts.

    ``store.requests`` and :attr:`RequestMeter.counts` hand these out; subtract two to count
    an operation. ``str()`` reads ``1 LIST + 1 GET + 1 PUT``; :meth:`cost` prices them.

    Attributes:
        put: PUT requests (put-if-absent and replace).
        get: GET requests.
        list: LIST requests (one per page of up to 1,000 keys).
        delete: DELETE requests.
    """

    put: int = 0
    get: int = 0
    list: int = 0
    delete: int = 0

    @property
    def total(self) -> int:
        """All requests of every kind."""
        return self.put + self.get + self.list + self.delete

    def __str__(self) -> str:
        """``1 LIST + 1 GET + 1 PUT``: the kinds that are not zero (``no request`` if none)."""
        kinds = [("LIST", self.list), ("GET", self.get), ("PUT", self.put), ("DELETE", self.delete)]
        return " + ".join(f"{count:,} {kind}" for kind, count in kinds if count) or "no request"

    def cost(self, prices: RequestPrices = S3_STANDARD_PRICES) -> float:
        """What these requests cost, in dollars.

        Args:
            prices: Dollars per request of each kind; S3 Standard's by default.

        Returns:
            The sum over every kind of its count times its price.
        """
        return (
            self.put * prices.put
            + self.get * prices.get
            + self.list * prices.list
            + self.delete * prices.delete
        )

    def __sub__(self, other: RequestCounts) -> RequestCounts:
        return RequestCounts(
            put=self.put - other.put,
            get=self.get - other.get,
            list=self.list - other.list,
            delete=self.delete - other.delete,
        )

    def __add__(self, other: RequestCounts) -> RequestCounts:
        return RequestCounts(
            put=self.put + other.put,
            get=self.get + other.get,
            list=self.list + other.list,
            delete=self.delete + other.delete,
        )


class RequestMeter:
    """Requests sent, by any object store, in the context where :func:`measure_requests` runs.

    Made by :func:`measure_requests`; read :attr:`counts` inside the block or after it.
    """

    def __init__(self) -> None:
        self._counter = RequestCounter()

    @property
    def counts(self) -> RequestCounts:
        """Requests counted so far."""
        return self._counter.snapshot()

    def _add(self, kind: str) -> None:
        self._counter.add(kind, meters=False)


_active_meters: contextvars.ContextVar[tuple[RequestMeter, ...]] = contextvars.ContextVar(
    "s3es_request_meters", default=()
)


@contextlib.contextmanager
def measure_requests() -> Iterator[RequestMeter]:
    """Count the object-store requests sent by this thread (this context) inside the block.

    Unlike a store's own counts, which add up every thread's requests, a meter sees only the
    requests its own code caused (and that of threads given a copy of its context, as
    maintenance's concurrent requests are). Meters nest: an outer one counts the inner's too.

    Example::

        with measure_requests() as meter:
            repository.load("c-1")
        assert meter.counts == RequestCounts(list=1, get=1)

    Yields:
        The meter, whose ``counts`` grow as requests are sent and stay once the block ends.
    """
    meter = RequestMeter()
    token = _active_meters.set((*_active_meters.get(), meter))
    try:
        yield meter
    finally:
        _active_meters.reset(token)


class RequestCounter:
    """A thread-safe tally of requests by kind, kept by an adapter.

    Each request counted is also counted by the :func:`measure_requests` meters active in the
    calling context.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(("put", "get", "list", "delete"), 0)

    def add(self, kind: str, *, meters: bool = True) -> None:
        """Count one request of ``kind``, here and in the meters active in this context.

        Args:
            kind: ``put``, ``get``, ``list`` or ``delete``.
            meters: Whether the active :func:`measure_requests` meters count it too.

        Raises:
            KeyError: ``kind`` is none of those.
        """
        with self._lock:
            self._counts[kind] += 1
        if meters:
            for meter in _active_meters.get():
                meter._add(kind)  # noqa: SLF001 - the meter's private door for counters

    def snapshot(self) -> RequestCounts:
        """The counts so far."""
        with self._lock:
            return RequestCounts(**self._counts)
