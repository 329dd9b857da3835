"""The orders example over HTTP: a FastAPI app whose commands run on the asyncio API.

:func:`create_app` serves a :class:`~examples.orders.app.Shop`: commands are POSTs, handled by
:class:`~s3es.aio.AsyncCommandHandler` instances on the event loop (a thousand in flight cost
a thousand tasks, not threads), and reads are GETs of the shop's read models (a
:class:`~s3es.projections.DocumentReader` per projection), which the shop's projectors keep up
to date. HTTP's own concurrency control maps onto the event store's:

=====================================  ========================================================
HTTP                                   s3es
=====================================  ========================================================
``If-Match: "3"``                      ``expected_version=3``
``If-Match: *``                        ``ExpectedVersion.STREAM_EXISTS``
``If-None-Match: *`` (creating)        ``ExpectedVersion.NO_STREAM``
neither                                ``ExpectedVersion.ANY`` (decided on the latest state)
``ETag: "4"`` on an answer             the stream's version after the command
412 Precondition Failed                :class:`~s3es.errors.WrongExpectedVersion`, with
                                       ``actual_version`` in the problem
``Idempotency-Key: k``                 ``command_id="k"``: a repeat answers the first result
``Idempotent-Replayed: true``          ``CommandResult.duplicate``
422                                    the order's or warehouse's rules refused the command,
                                       or the path or body is malformed
413, 415                               a body larger than MAX_BODY_BYTES, or not JSON
=====================================  ========================================================

Every error is an RFC 9457 problem (``application/problem+json``): ``type``, ``title``,
``status``, ``detail``, ``instance`` (the request's path) and fields of its own
(``actual_version``...). Each ``type`` is a page the app serves (``/problems/{kind}``, see
:data:`PROBLEM_TYPES`), whose title the problem carries; Starlette's own 404 and 405 are of
type ``about:blank``, titled with the reason phrase of the status line.

Requests are bounded before anything is decided: a body of more than :data:`MAX_BODY_BYTES`
is refused as it arrives (413), a body that is not JSON too (415), and the bodies' fields are
held to the domain's bounds (:mod:`examples.orders.limits`), so ``decide`` stays cheap enough
to run on the event loop. The app has no authentication: anyone who reaches it can place,
pay, cancel and ship any order (docs/web.md says what a deployment adds).

The read models lag the commands: a GET shows a POST's effect after the next projector pass
(the app's lifespan runs one every ``pass_interval`` seconds, the fulfilment reactor's with
it). ``GET /orders/{id}`` answers the version of the order its summary reflects, in its body
and ETag, so a client that must see its own write polls until that version reaches the ETag
of its POST. ``make serve`` runs the app with uvicorn on an embedded S3 endpoint
(:func:`main`); docs/web.md walks through it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import re
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from http import HTTPStatus
from pathlib import Path
from typing import Annotated, Any, TypeVar

import attrs
import cattrs
from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from examples.orders.app import Shop
from examples.orders.domain import (
    CancelOrder,
    Order,
    OrderCommand,
    OrderError,
    OrderEvent,
    OrderLine,
    OrderState,
    OrderStatus,
    PlaceOrder,
    RecordPayment,
    ShipOrder,
)
from examples.orders.inventory import (
    Inventory,
    InventoryCommand,
    InventoryError,
    InventoryEvent,
    InventoryState,
    ReceiveStock,
    StockItem,
)
from examples.orders.limits import (
    MAX_CENTS,
    MAX_ID_BYTES,
    MAX_LINES,
    MAX_QUANTITY,
    MAX_REASON_BYTES,
    MAX_SKU_BYTES,
    text_problem,
)
from examples.orders.projections import OrderSummary, ProductLevels, ProductStock
from s3es import CommandResult, ExpectedVersion, InMemoryObjectStore
from s3es.aio import (
    AsyncCommandHandler,
    AsyncEventStore,
    AsyncInMemoryObjectStore,
    AsyncObjectStore,
    AsyncRepository,
)
from s3es.errors import RetriesExhausted, StreamDeleted, WrongExpectedVersion
from s3es.reactors import CORRELATION_ID

S = TypeVar("S")
C = TypeVar("C")
E = TypeVar("E")

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
#: The header that marks the answer to a repeated ``Idempotency-Key``.
REPLAYED = "Idempotent-Replayed"
#: The metadata key, on every event a keyed command stores, of the fingerprint of its request.
FINGERPRINT = "idempotency_fingerprint"
#: The longest ``Idempotency-Key`` taken: the longest command id s3es takes.
MAX_IDEMPOTENCY_KEY = 200
_ENTITY_TAG = re.compile(r'"(0|[1-9][0-9]{0,17})"')
#: The largest request body taken, in bytes. An order of MAX_LINES lines of the longest SKUs and
#: amounts takes 17 KB of JSON (37 KB with non-ASCII SKUs sent as ``\uXXXX`` escapes); a body
#: is refused (413) as soon as it passes this, unread.
MAX_BODY_BYTES = 64 * 1024
#: What a body must be: JSON.
_JSON = "application/json"

#: Opens the object store the commands are sent to, for the app's lifespan.
ObjectsOpener = Callable[[], contextlib.AbstractAsyncContextManager[AsyncObjectStore]]

_converter = cattrs.Converter()


# Problems (RFC 9457)


@attrs.frozen
class ProblemType:
    """A kind of problem the app answers: its status, its title, and what a client can do."""

    status: HTTPStatus
    title: str
    description: str


#: Every kind of problem the app answers, by the last segment of its ``type``
#: (``/problems/{kind}``, a page the app serves).
PROBLEM_TYPES: dict[str, ProblemType] = {
    "wrong-expected-version": ProblemType(
        HTTPStatus.PRECONDITION_FAILED,
        "Wrong expected version",
        "The stream is not at the version If-Match or If-None-Match expected, so nothing was "
        "stored. actual_version says where it is: read it again and decide again.",
    ),
    "order-refused": ProblemType(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "Order refused",
        "The order's rules refused the command; nothing was stored. detail says why, and "
        "field names the field out of bounds, if that is why.",
    ),
    "stock-refused": ProblemType(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "Stock refused",
        "The warehouse's rules refused the command; nothing was stored. detail says why, and "
        "field names the field out of bounds, if that is why.",
    ),
    "malformed-request": ProblemType(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "Malformed request",
        "The path, the query or the body does not have the shape the endpoint takes, or a "
        "value is out of bounds; nothing was decided. errors lists each problem and where it "
        "is (loc).",
    ),
    "malformed-precondition": ProblemType(
        HTTPStatus.BAD_REQUEST,
        "Malformed precondition",
        'If-Match takes * or one ETag of this API (a quoted version, "3"); If-None-Match takes '
        "only *; a request sends one of them at most.",
    ),
    "malformed-idempotency-key": ProblemType(
        HTTPStatus.BAD_REQUEST,
        "Malformed idempotency key",
        f"An Idempotency-Key is 1 to {MAX_IDEMPOTENCY_KEY} characters long.",
    ),
    "idempotency-key-reused": ProblemType(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "Idempotency key reused",
        "The Idempotency-Key was sent before with another request, which the stream stored at "
        "version; this one was not stored. Use a new key for a new request.",
    ),
    "busy-stream": ProblemType(
        HTTPStatus.SERVICE_UNAVAILABLE,
        "Busy stream",
        "Every attempt lost a race for the stream; nothing was stored. Send the request again "
        "(with its Idempotency-Key) after Retry-After seconds.",
    ),
    "deleted-stream": ProblemType(
        HTTPStatus.GONE,
        "Deleted stream",
        "The stream was deleted: it can be neither read nor written again.",
    ),
    "unknown-order": ProblemType(
        HTTPStatus.NOT_FOUND,
        "Unknown order",
        "The order summaries hold no such order: it was never placed, or placed since the "
        "last projector pass (poll again).",
    ),
    "unknown-product": ProblemType(
        HTTPStatus.NOT_FOUND,
        "Unknown product",
        "No warehouse's stock read model holds the SKU (or it is not projected yet).",
    ),
    "body-too-large": ProblemType(
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        "Body too large",
        f"A request body is at most {MAX_BODY_BYTES} bytes; this one was refused unread, and "
        f"nothing was decided. An order has at most {MAX_LINES} lines.",
    ),
    "unsupported-media-type": ProblemType(
        HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
        "Unsupported media type",
        f"A request body is JSON, sent with Content-Type: {_JSON}; nothing was decided.",
    ),
}


class Problem(Exception):  # noqa: N818 - an HTTP problem, not a failure of the app
    """An error answered as an RFC 9457 problem of one of :data:`PROBLEM_TYPES`.

    ``kind`` names the type (KeyError if it is none of them): the problem's ``type`` is
    ``/problems/{kind}``, its status and title the type's. ``fields`` are the problem's own
    members (``actual_version``...); ``headers`` go with the answer. :meth:`blank` makes a
    problem of no type (``about:blank``).
    """

    def __init__(
        self,
        kind: str,
        detail: str,
        *,
        fields: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        status: HTTPStatus | None = None,
    ) -> None:
        super().__init__(detail)
        if kind:
            problem_type = PROBLEM_TYPES[kind]
            status, self.title = problem_type.status, problem_type.title
        elif status is None:
            raise ValueError("a problem of no type (about:blank) needs its status")
        else:
            # Python's reason phrase, which uvicorn sends on the status line: the two agree.
            self.title = status.phrase
        self.kind = kind
        self.status = status
        self.detail = detail
        self.fields = dict(fields or {})
        self.headers = dict(headers or {})

    @classmethod
    def blank(
        cls, status: HTTPStatus, detail: str, *, headers: Mapping[str, str] | None = None
    ) -> Problem:
        """A problem of type ``about:blank``, titled with ``status``'s reason phrase."""
        return cls("", detail, headers=headers, status=status)

    def response(self, instance: str) -> JSONResponse:
        """The problem as an ``application/problem+json`` answer about ``instance``."""
        body = {
            "type": f"/problems/{self.kind}" if self.kind else "about:blank",
            "title": self.title,
            "status": int(self.status),
            "detail": self.detail,
            "instance": instance,
            **self.fields,
        }
        return JSONResponse(
            body, status_code=self.status, media_type=PROBLEM_JSON, headers=self.headers
        )


def _problem_of(error: Exception) -> Problem:  # noqa: PLR0911 - one answer per kind of error
    """The problem that answers ``error``, one of those the app's handlers are registered for."""
    match error:
        case Problem():
            return error
        case WrongExpectedVersion():
            expected = error.expected_version
            return Problem(
                "wrong-expected-version",
                str(error),
                fields={
                    "stream": str(error.stream),
                    "expected_version": (
                        expected if isinstance(expected, int) else expected.name.lower()
                    ),
                    "actual_version": error.actual_version,
                },
            )
        case OrderError():
            field = {"field": error.field} if error.field else {}
            return Problem(
                "order-refused", error.problem, fields={"order_id": error.order_id, **field}
            )
        case InventoryError():
            field = {"field": error.field} if error.field else {}
            return Problem(
                "stock-refused",
                error.problem,
                fields={"warehouse_id": error.warehouse_id, **field},
            )
        case RequestValidationError():
            return Problem(
                "malformed-request",
                "the request does not have the shape this endpoint takes: see errors",
                fields={"errors": _validation_errors(error)},
            )
        case RetriesExhausted():
            return Problem(
                "busy-stream",
                f"{error}: send the request again (with its Idempotency-Key)",
                fields={"stream": str(error.stream)},
                headers={"Retry-After": "1"},
            )
        case StreamDeleted():
            return Problem("deleted-stream", str(error), fields={"stream": str(error.stream)})
        case BodyTooLarge():
            return Problem("body-too-large", str(error.detail))
        case HTTPException():
            detail = (
                error.detail if isinstance(error.detail, str) else HTTPStatus(error.status_code)
            )
            return Problem.blank(
                HTTPStatus(error.status_code), str(detail), headers=error.headers or {}
            )
        case _:
            raise TypeError(f"no problem answers {type(error).__qualname__}") from error


def _validation_errors(error: RequestValidationError) -> list[dict[str, Any]]:
    """Pydantic's errors, each as where (``loc``), what (``type``) and why (``msg``)."""
    return [
        {"loc": list(item["loc"]), "type": item["type"], "msg": item["msg"]}
        for item in error.errors()
    ]


async def _answer_problem(request: Request, error: Exception) -> JSONResponse:
    return _problem_of(error).response(request.url.path)


# Request bodies: their size and media type, then their shape and bounds


class BodyTooLarge(HTTPException):
    """A request body passed MAX_BODY_BYTES as it arrived (raised by the receive channel).

    An HTTPException, so that FastAPI passes it on from where it reads the body, to the
    app's problem handler (413).
    """

    def __init__(self, limit: int) -> None:
        super().__init__(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            f"the request body passed {limit} bytes: it was refused unread (an order has at "
            f"most {MAX_LINES} lines)",
        )


def _is_json(content_type: str | None) -> bool:
    """Whether ``content_type`` (a Content-Type header) is JSON: application/json or +json."""
    if content_type is None:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == _JSON or (media.startswith("application/") and media.endswith("+json"))


class BodyGate:
    """ASGI middleware: a request's body must be JSON and at most ``max_bytes`` long.

    A body (a Content-Length above 0, or chunks) sent without a JSON Content-Type is answered
    415 before it is read: FastAPI would read it as bytes and answer a 422 about its shape. A
    Content-Length above ``max_bytes`` is answered 413 at once; a body sent in chunks is counted
    as they arrive, and the chunk that passes the limit raises :class:`BodyTooLarge` from the
    receive channel, so nothing reads, parses or decides more than ``max_bytes``.
    """

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse the request's body, or pass it on counted."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        length = headers.get("content-length")
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        if (chunked or length not in {None, "0"}) and not _is_json(headers.get("content-type")):
            sent = headers.get("content-type")
            problem = Problem(
                "unsupported-media-type",
                f"send the body as JSON, with Content-Type: {_JSON}"
                + (f", not {sent!r}" if sent else " (none was sent)"),
                headers={"Accept": _JSON},
            )
            await problem.response(scope["path"])(scope, receive, send)
            return
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            problem = Problem("body-too-large", str(BodyTooLarge(self.max_bytes).detail))
            await problem.response(scope["path"])(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, counted, send)


def _text(max_bytes: int) -> AfterValidator:
    """A validator of a text field held to the domain's bounds (no control character...)."""

    def checked(value: str) -> str:
        problem = text_problem("the value", value, max_bytes)
        if problem is not None:
            raise ValueError(problem)
        return value

    return AfterValidator(checked)


Sku = Annotated[str, Field(min_length=1, max_length=MAX_SKU_BYTES), _text(MAX_SKU_BYTES)]
Quantity = Annotated[int, Field(ge=1, le=MAX_QUANTITY)]
Cents = Annotated[int, Field(ge=0, le=MAX_CENTS)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LineBody(_Body):
    """One line of an order."""

    sku: Sku
    quantity: Quantity
    unit_price_cents: Cents


class PlaceOrderBody(_Body):
    """The body of ``POST /orders/{order_id}``."""

    lines: list[LineBody] = Field(max_length=MAX_LINES)


class PaymentBody(_Body):
    """The body of ``POST /orders/{order_id}/payments``."""

    payment_id: Annotated[str, Field(min_length=1, max_length=MAX_ID_BYTES), _text(MAX_ID_BYTES)]
    amount_cents: Cents


class CancelBody(_Body):
    """The body of ``POST /orders/{order_id}/cancel``."""

    reason: Annotated[
        str, Field(min_length=1, max_length=MAX_REASON_BYTES), _text(MAX_REASON_BYTES)
    ]


class StockItemBody(_Body):
    """So many units of one SKU."""

    sku: Sku
    quantity: Quantity


class ReceiptBody(_Body):
    """The body of ``POST /warehouses/{warehouse_id}/receipts``."""

    items: list[StockItemBody] = Field(min_length=1, max_length=MAX_LINES)


# Preconditions


def expected_version(if_match: str | None, if_none_match: str | None) -> int | ExpectedVersion:
    """What ``If-Match`` and ``If-None-Match`` expect of the stream's version.

    ``If-Match`` takes ``*`` (the stream exists) or one ETag this app issued (``"3"``: the
    stream is at version 3); ``If-None-Match`` takes ``*`` (no stream yet); neither means any
    version. Raises a 400 :class:`Problem` for anything else (a list, a weak tag, both
    headers), rather than a 412 that no version could have avoided.
    """
    if if_match is not None and if_none_match is not None:
        raise Problem(
            "malformed-precondition",
            "send If-Match or If-None-Match, not both",
        )
    if if_none_match is not None:
        if if_none_match.strip() != "*":
            raise Problem(
                "malformed-precondition",
                f"If-None-Match takes only * (create the order), not {if_none_match!r}",
            )
        return ExpectedVersion.NO_STREAM
    if if_match is None:
        return ExpectedVersion.ANY
    tag = if_match.strip()
    if tag == "*":
        return ExpectedVersion.STREAM_EXISTS
    matched = _ENTITY_TAG.fullmatch(tag)
    if matched is None:
        raise Problem(
            "malformed-precondition",
            f'If-Match takes * or one ETag of this API, a quoted version like "3", not {tag!r}',
        )
    return int(matched.group(1))


def checked_key(key: str | None) -> str | None:
    """``key`` if it is a usable ``Idempotency-Key`` (1 to 200 characters), else a 400."""
    if key is not None and not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY:
        raise Problem(
            "malformed-idempotency-key",
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters long, not {len(key)}",
        )
    return key


def fingerprint(route: str, body: BaseModel | None) -> str:
    """What a keyed request asked for: its route and body, hashed (SHA-256, hex)."""
    payload = json.dumps(
        [route, body.model_dump(mode="json") if body is not None else None],
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode()).hexdigest()


IfMatch = Annotated[str | None, Header(alias="If-Match")]
IfNoneMatch = Annotated[str | None, Header(alias="If-None-Match")]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]
#: An order's or a warehouse's id: letters, digits, ``.``, ``_`` and ``-``, not only dots (``.``
#: and ``..`` are no stream's id).
OrderId = Annotated[
    str,
    PathParam(
        min_length=1,
        max_length=MAX_ID_BYTES,
        pattern=r"^[A-Za-z0-9._-]*[A-Za-z0-9_-][A-Za-z0-9._-]*$",
    ),
]


# The app's state


class BackgroundPasses:
    """Runs the shop's reactor and projector passes every ``interval`` seconds, in a thread.

    A pass is the fulfilment reactor's ``catch_up`` (which may store events), then each
    projector's. A pass that fails is logged with its error and counted in ``failures``; the
    next pass tries again (a projector resumes from its stored positions). :meth:`run_once`
    runs a pass in the calling thread: a test or a script that runs no thread calls it.
    """

    def __init__(self, shop: Shop, interval: float) -> None:
        if not interval > 0:
            raise ValueError(f"the interval between passes must be > 0 seconds, not {interval}")
        self.shop = shop
        self.interval = interval
        self.started = 0
        self.completed = 0
        self.failures = 0
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # The reactor and the projectors are one thread's at a time.
        self._running = threading.Lock()

    def run_once(self) -> None:
        """One pass of the reactor and of every projector, in this thread.

        Each runs even if one before it failed (a reactor that fails must not stop the read
        models); their errors are raised together afterwards, as an ExceptionGroup.
        """
        with self._running:
            with self._changed:
                self.started += 1
            errors: list[Exception] = []
            try:
                for step in (self.shop.fulfilment, *self.shop.projectors):
                    try:
                        step.catch_up()
                    except Exception as error:  # noqa: BLE001 - raised below, with the others
                        errors.append(error)
            finally:
                with self._changed:
                    self.completed += 1
                    self._changed.notify_all()
            if errors:
                raise ExceptionGroup("a pass of the orders' reactor and projectors failed", errors)

    def wait_for_next(self, timeout: float = 30.0) -> None:
        """Wait until a pass that starts after this call has finished (TimeoutError if not)."""
        with self._changed:
            target = self.started + 1
            if not self._changed.wait_for(lambda: self.completed >= target, timeout):
                raise TimeoutError(f"no pass finished within {timeout} s (pass {target} awaited)")

    def start(self) -> None:
        """Start the thread that runs a pass every ``interval`` seconds."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="orders-passes", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread after its current pass, and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:
                self.failures += 1
                logger.exception("pass %d of the orders' reactor and projectors", self.started)
            self._stop.wait(self.interval)


@attrs.define
class Commands:
    """The async command handlers of one shop, on an async view of its object store."""

    orders: AsyncCommandHandler[OrderState, OrderCommand, OrderEvent]
    warehouses: AsyncCommandHandler[InventoryState, InventoryCommand, InventoryEvent]

    @classmethod
    def of(cls, shop: Shop, objects: AsyncObjectStore) -> Commands:
        """Handlers writing what ``shop`` reads: its prefix, with feed entries."""
        sync = shop.event_store
        events = AsyncEventStore(objects, prefix=sync.keys.prefix, feed=sync.feed)
        return cls(
            AsyncCommandHandler(AsyncRepository(events, Order)),
            AsyncCommandHandler(AsyncRepository(events, Inventory)),
        )


@attrs.define
class WebShop:
    """What the endpoints use: ``shop``, and once the lifespan has started, ``commands``."""

    shop: Shop
    passes: BackgroundPasses
    opener: ObjectsOpener
    _commands: Commands | None = None

    @property
    def commands(self) -> Commands:
        """The command handlers; RuntimeError before the app's lifespan has started."""
        if self._commands is None:
            raise RuntimeError(
                "the orders app's lifespan has not started: serve it (uvicorn runs the "
                "lifespan) or enter app.router.lifespan_context(app)"
            )
        return self._commands

    @contextlib.asynccontextmanager
    async def running(self, *, background: bool) -> AsyncIterator[None]:
        """Open the object store and, if ``background``, run the passes until the block ends."""
        async with self.opener() as objects:
            self._commands = Commands.of(self.shop, objects)
            if background:
                self.passes.start()
            try:
                yield
            finally:
                if background:
                    await asyncio.to_thread(self.passes.stop)
                self._commands = None


def _web(request: Request) -> WebShop:
    web = request.app.state.web
    if not isinstance(web, WebShop):
        raise TypeError(f"app.state.web is a {type(web).__qualname__}, not a WebShop")
    return web


def in_memory_objects(shop: Shop) -> ObjectsOpener:
    """An opener of ``shop``'s in-memory store seen through the async port (the same objects)."""
    if not isinstance(shop.store, InMemoryObjectStore):
        raise TypeError(
            f"the shop's store is a {type(shop.store).__qualname__}: pass create_app an opener "
            "of its async twin (s3_objects for S3)"
        )
    objects = AsyncInMemoryObjectStore(shop.store)

    @contextlib.asynccontextmanager
    async def opened() -> AsyncIterator[AsyncObjectStore]:
        yield objects

    return opened


def s3_objects(bucket: str, **connect: Any) -> ObjectsOpener:
    """An opener of :class:`~s3es.aio.AsyncS3ObjectStore` on ``bucket`` (the ``async`` extra).

    ``connect`` goes to :meth:`AsyncS3ObjectStore.connect` (``endpoint_url``, ``session``...).
    """
    from s3es.aio import AsyncS3ObjectStore  # noqa: PLC0415 - imports aiobotocore

    return functools.partial(AsyncS3ObjectStore.connect, bucket, **connect)


def create_app(
    shop: Shop,
    objects: ObjectsOpener | None = None,
    *,
    pass_interval: float | None = 1.0,
) -> FastAPI:
    """A FastAPI app serving ``shop``'s orders and stock (see the module's docstring).

    ``objects`` opens, for the app's lifespan, the async view of the object store ``shop`` is
    on (:func:`s3_objects` for S3); None for a shop on an
    :class:`~s3es.InMemoryObjectStore` (:func:`in_memory_objects`). The lifespan runs a pass
    of the fulfilment reactor and the projectors every ``pass_interval`` seconds (> 0) in a
    thread, or none if it is None (the caller then runs ``app.state.web.passes.run_once()``).
    ``app.state.web`` is the :class:`WebShop` behind the endpoints.
    """
    web = WebShop(
        shop,
        BackgroundPasses(shop, 1.0 if pass_interval is None else pass_interval),
        objects or in_memory_objects(shop),
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with web.running(background=pass_interval is not None):
            yield

    app = FastAPI(
        title="s3es orders",
        summary="The orders example of s3es over HTTP: commands on the asyncio API.",
        lifespan=lifespan,
    )
    app.state.web = web
    for error in (
        Problem,
        WrongExpectedVersion,
        OrderError,
        InventoryError,
        RequestValidationError,
        RetriesExhausted,
        StreamDeleted,
        HTTPException,
    ):
        app.add_exception_handler(error, _answer_problem)
    app.include_router(router)
    app.add_middleware(BodyGate, max_bytes=MAX_BODY_BYTES)
    return app


# Endpoints

router = APIRouter()
Web = Annotated[WebShop, Depends(_web)]


async def _handle(
    handler: AsyncCommandHandler[S, C, E],
    stream_id: str,
    command: C,
    *,
    route: str,
    body: BaseModel | None,
    correlation_id: str,
    if_match: str | None,
    if_none_match: str | None,
    idempotency_key: str | None,
) -> CommandResult[S, E]:
    """Handle ``command`` under the request's preconditions and idempotency key.

    A keyed command's events carry the request's :func:`fingerprint`, so that a key sent again
    with another request is told apart from a retry (422) instead of answered with the first
    request's result.
    """
    expected = expected_version(if_match, if_none_match)
    key = checked_key(idempotency_key)
    metadata: dict[str, Any] = {CORRELATION_ID: correlation_id, "service": "web"}
    if key is not None:
        metadata[FINGERPRINT] = fingerprint(route, body)
    result = await handler.handle(
        stream_id, command, metadata=metadata, expected_version=expected, command_id=key
    )
    if result.duplicate and result.recorded:
        first = result.recorded[0].metadata.get(FINGERPRINT)
        if first != metadata[FINGERPRINT]:
            raise Problem(
                "idempotency-key-reused",
                f"Idempotency-Key {key!r} was sent with another request to stream "
                f"{result.stream}, which stored it at version {result.version}: use a new key "
                "for a new request",
                fields={"stream": str(result.stream), "version": result.version},
            )
    return result


def _answer(
    result: CommandResult[Any, Any],
    body: Mapping[str, Any],
    *,
    location: str | None = None,
) -> JSONResponse:
    """201 (with ``location``, if events were stored) or 200, with the stream's version.

    The body is ``body``, the version, and in ``stored`` the types of the events the command
    stored; the answer to a repeated Idempotency-Key is the first answer again, marked by a
    header.
    """
    created = location is not None and bool(result.recorded)
    headers = {"ETag": f'"{result.version}"'}
    if created and location is not None:
        headers["Location"] = location
    if result.duplicate:
        headers[REPLAYED] = "true"
    content = {
        **body,
        "version": result.version,
        "stored": [recorded.type for recorded in result.recorded],
    }
    status = HTTPStatus.CREATED if created else HTTPStatus.OK
    return JSONResponse(content, status_code=status, headers=headers)


def _order_answer(
    order_id: str,
    result: CommandResult[OrderState, OrderEvent],
    *,
    location: str | None = None,
) -> JSONResponse:
    return _answer(
        result,
        {"order_id": order_id, "order": _converter.unstructure(result.state)},
        location=location,
    )


@router.post("/orders/{order_id}", status_code=HTTPStatus.CREATED)
async def place_order(
    *,
    web: Web,
    order_id: OrderId,
    body: PlaceOrderBody,
    if_match: IfMatch = None,
    if_none_match: IfNoneMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Place an order (201, Location); the same order placed again stores nothing (200).

    ``If-None-Match: *`` creates only: 412 if the order exists.
    """
    lines = tuple(
        OrderLine(sku=line.sku, quantity=line.quantity, unit_price_cents=line.unit_price_cents)
        for line in body.lines
    )
    result = await _handle(
        web.commands.orders,
        order_id,
        PlaceOrder(order_id=order_id, lines=lines),
        route="place",
        body=body,
        correlation_id=order_id,
        if_match=if_match,
        if_none_match=if_none_match,
        idempotency_key=idempotency_key,
    )
    return _order_answer(order_id, result, location=f"/orders/{order_id}")


@router.post("/orders/{order_id}/payments")
async def record_payment(
    *,
    web: Web,
    order_id: OrderId,
    body: PaymentBody,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Record a payment of the order's total; the same payment again stores nothing."""
    command = RecordPayment(
        order_id=order_id, payment_id=body.payment_id, amount_cents=body.amount_cents
    )
    return await _on_order(
        web,
        order_id,
        command,
        route="payment",
        body=body,
        if_match=if_match,
        idempotency_key=idempotency_key,
    )


async def _on_order(
    web: WebShop,
    order_id: str,
    command: OrderCommand,
    *,
    route: str,
    body: BaseModel | None,
    if_match: str | None,
    idempotency_key: str | None,
) -> JSONResponse:
    """A command on an existing order (its id as the flow's correlation id), answered."""
    result = await _handle(
        web.commands.orders,
        order_id,
        command,
        route=route,
        body=body,
        correlation_id=order_id,
        if_match=if_match,
        if_none_match=None,
        idempotency_key=idempotency_key,
    )
    return _order_answer(order_id, result)


@router.post("/orders/{order_id}/cancel")
async def cancel_order(
    *,
    web: Web,
    order_id: OrderId,
    body: CancelBody,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Cancel the order (not once shipped); a payment taken becomes a refund due."""
    command = CancelOrder(order_id=order_id, reason=body.reason)
    return await _on_order(
        web,
        order_id,
        command,
        route="cancel",
        body=body,
        if_match=if_match,
        idempotency_key=idempotency_key,
    )


@router.post("/orders/{order_id}/ship")
async def ship_order(
    *,
    web: Web,
    order_id: OrderId,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Ship the order, which must be paid and its stock reserved.

    The fulfilment reactor ships an order as soon as it is both: this is for a shop that
    ships by hand.
    """
    command = ShipOrder(order_id=order_id)
    return await _on_order(
        web,
        order_id,
        command,
        route="ship",
        body=None,
        if_match=if_match,
        idempotency_key=idempotency_key,
    )


@router.post("/warehouses/{warehouse_id}/receipts")
async def receive_stock(
    *,
    web: Web,
    warehouse_id: OrderId,
    body: ReceiptBody,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Goods arrived at the warehouse: add them to its available stock."""
    items = tuple(StockItem(sku=item.sku, quantity=item.quantity) for item in body.items)
    result = await _handle(
        web.commands.warehouses,
        warehouse_id,
        ReceiveStock(warehouse_id=warehouse_id, items=items),
        route="receipt",
        body=body,
        correlation_id=warehouse_id,
        if_match=if_match,
        if_none_match=None,
        idempotency_key=idempotency_key,
    )
    available = dict(result.state.available)
    return _answer(result, {"warehouse_id": warehouse_id, "available": available})


@router.get("/problems/{kind}", response_class=PlainTextResponse)
def problem_type(kind: str) -> PlainTextResponse:
    """What a problem ``type`` means: its title, its status and what a client can do."""
    described = PROBLEM_TYPES.get(kind)
    if described is None:
        raise Problem.blank(HTTPStatus.NOT_FOUND, f"no problem type {kind!r}")
    status = described.status
    return PlainTextResponse(
        f"{described.title}\n\n{int(status)} {status.phrase}\n\n{described.description}\n"
    )


def _summary_json(order_id: str, summary: OrderSummary) -> dict[str, Any]:
    return {"order_id": order_id, **_converter.unstructure(summary)}


def _stock_json(stock: ProductStock) -> dict[str, int]:
    return {**_converter.unstructure(stock), "available": stock.available}


@router.get("/orders/{order_id}")
def get_order(*, web: Web, order_id: OrderId) -> JSONResponse:
    """The order's summary as the read model holds it, with the version it reflects (ETag).

    A plain ``def``: FastAPI runs it in a worker thread, where the sync reader may block. The
    version is read before the summary, which is therefore at least as new: an ETag sent back
    as ``If-Match`` is never newer than what the client saw (at worst, a 412 to read again).
    404 for an order the read model does not hold: never placed, or not projected yet.
    """
    reader = web.shop.summaries.reader()
    stream = str(web.shop.orders.stream(order_id))
    generation = reader.generation
    position = None
    summary = None
    if generation is not None:
        position = reader.store.positions(generation, [stream]).get(stream)
        summary = reader.get(order_id)
    if summary is None or position is None or reader.generation != generation:
        raise Problem(
            "unknown-order",
            f"order {order_id} is not in the order summaries: never placed, or placed since "
            "the last projector pass",
            fields={"order_id": order_id},
        )
    return JSONResponse(
        {**_summary_json(order_id, summary), "version": position},
        headers={"ETag": f'"{position}"'},
    )


@router.get("/orders")
def list_orders(
    *,
    web: Web,
    status: Annotated[OrderStatus | None, Query()] = None,
    after: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JSONResponse:
    """Up to ``limit`` order summaries by id, after ``after``, of ``status`` if given.

    The reader walks every summary in id order: fine for a sample, where a SQL read-model
    store would rather query its view (``WHERE body ->> '$.status' = ?``).
    """
    listed: list[dict[str, Any]] = []
    for order_id, summary in web.shop.summaries.reader().documents():
        if after is not None and order_id <= after:
            continue
        if status is not None and summary.status is not status:
            continue
        listed.append(_summary_json(order_id, summary))
        if len(listed) == limit:
            break
    return JSONResponse({"orders": listed})


@router.get("/stock/{sku}")
def get_stock(
    web: Web, sku: Annotated[str, PathParam(min_length=1, max_length=100)]
) -> JSONResponse:
    """One product's units received, reserved and available, per warehouse and in all.

    A SKU out of the domain's bounds (a control character...) is no product's: 404 without a
    read.
    """
    invalid = text_problem("the SKU", sku, MAX_SKU_BYTES)
    if invalid is not None:
        raise Problem("unknown-product", f"no product has this SKU: {invalid}")
    levels: ProductLevels | None = web.shop.stock_levels.reader().get(sku)
    if levels is None:
        raise Problem(
            "unknown-product",
            f"product {sku} is in no warehouse's stock read model (or not projected yet)",
            fields={"sku": sku},
        )
    return JSONResponse(
        {
            "sku": sku,
            "warehouses": {
                warehouse: _stock_json(stock)
                for warehouse, stock in sorted(levels.warehouses.items())
            },
            "total": _stock_json(levels.total),
        }
    )


# make serve

#: What ``make serve`` stocks the warehouse with, so that the orders of the examples ship.
SEED_STOCK = (StockItem(sku="widget", quantity=100), StockItem(sku="gadget", quantity=20))


def main(argv: Sequence[str] | None = None) -> int:
    """``make serve``: the app with uvicorn on 127.0.0.1, over an embedded S3 endpoint.

    The read models go to an SQLite file in a temporary folder, removed at the end; the
    warehouse starts with :data:`SEED_STOCK`.
    """
    import uvicorn  # noqa: PLC0415 - the web extra
    from aiobotocore.session import get_session  # noqa: PLC0415 - the async extra

    from s3es.readmodels import SQLiteReadModelStore  # noqa: PLC0415
    from s3es.testing import EmbeddedS3  # noqa: PLC0415 - the testing extra (moto)

    parser = argparse.ArgumentParser(prog="make serve", description=main.__doc__)
    parser.add_argument("--port", type=int, default=8000, help="the port (default: 8000)")
    parser.add_argument("--bucket", default="orders", help="the embedded endpoint's bucket")
    arguments = parser.parse_args(argv)
    # s3es logs each pass at INFO, every second: warnings and errors only (uvicorn logs its own).
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with (
        EmbeddedS3() as s3,
        tempfile.TemporaryDirectory(prefix="s3es-serve-") as folder,
        SQLiteReadModelStore(Path(folder) / "read-models.sqlite") as read_models,
    ):
        s3.create_bucket(arguments.bucket)
        shop = Shop(s3.object_store(arguments.bucket), read_models=read_models)
        shop.warehouse_handler.handle(
            shop.warehouse_id, ReceiveStock(warehouse_id=shop.warehouse_id, items=SEED_STOCK)
        )
        session = get_session()
        session.set_credentials("testing", "testing")  # the embedded endpoint takes any
        objects = s3_objects(
            arguments.bucket, endpoint_url=s3.endpoint_url, region_name="us-east-1", session=session
        )
        app = create_app(shop, objects)
        url = f"http://127.0.0.1:{arguments.port}"
        stocked = ", ".join(f"{item.quantity} {item.sku}" for item in SEED_STOCK)
        print(f"s3es orders on {url} (S3: {s3.endpoint_url}, read models: {folder})")
        print(f"{shop.warehouse_id} holds {stocked}. Try:")
        print(
            f"  curl -i -X POST {url}/orders/o-1 -H 'If-None-Match: *' "
            "-H 'Idempotency-Key: place-o-1' -H 'Content-Type: application/json' "
            """-d '{"lines": [{"sku": "widget", "quantity": 2, "unit_price_cents": 1250}]}'"""
        )
        print(f"  curl -i {url}/orders/o-1")
        print(f"  API documentation: {url}/docs")
        uvicorn.run(app, host="127.0.0.1", port=arguments.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
