"""The orders example over HTTP (examples.orders.web), through httpx's ASGI transport.

No socket is opened for the app: ``httpx.ASGITransport`` calls it in the test's event loop, and
its lifespan (which httpx does not run) is entered with ``app.router.lifespan_context``, as a
server would. The projector and reactor passes run when a test calls ``passes.run_once()``,
except in TestLifespan, where the lifespan's thread runs them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from http import HTTPStatus
from typing import Any

import httpx
import pytest
from aiobotocore.session import get_session
from fastapi import FastAPI

from examples.orders.app import Shop
from examples.orders.domain import Order, OrderCommand, OrderEvent, OrderState, OrderStatus
from examples.orders.limits import MAX_CENTS, MAX_LINES, MAX_QUANTITY
from examples.orders.web import (
    MAX_BODY_BYTES,
    PROBLEM_JSON,
    PROBLEM_TYPES,
    REPLAYED,
    Problem,
    create_app,
    s3_objects,
)
from s3es import InMemoryObjectStore, S3ObjectStore
from s3es.readmodels import SQLiteReadModelStore
from s3es.testing import EmbeddedS3

LINES = {"lines": [{"sku": "widget", "quantity": 2, "unit_price_cents": 1250}]}
PAYMENT = {"payment_id": "pay-1", "amount_cents": 2500}
Scenario = Callable[[httpx.AsyncClient], Awaitable[None]]


@pytest.fixture
def shop() -> Iterator[Shop]:
    with SQLiteReadModelStore(":memory:") as read_models:
        yield Shop(InMemoryObjectStore(), read_models=read_models)


@pytest.fixture
def app(shop: Shop) -> FastAPI:
    return create_app(shop, pass_interval=None)


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of ``app``, its lifespan entered for the block."""
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://shop") as client,
    ):
        yield client


def run(app: FastAPI, scenario: Scenario) -> None:
    async def main() -> None:
        async with serving(app) as client:
            await scenario(client)

    asyncio.run(main())


def run_pass(app: FastAPI) -> None:
    app.state.web.passes.run_once()


def version(shop: Shop, order_id: str) -> int:
    return shop.event_store.version(shop.orders.stream(order_id))


def event_types(shop: Shop, order_id: str) -> list[str]:
    return [recorded.type for recorded in shop.orders.read(order_id)]


def assert_problem(response: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    """The problem ``response`` carries, checked to be RFC 9457's shape; returned."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    problem: dict[str, Any] = response.json()
    assert problem["type"] == (f"/problems/{kind}" if kind else "about:blank")
    assert problem["status"] == status
    assert problem["instance"] == response.request.url.path
    assert isinstance(problem["title"], str)
    assert isinstance(problem["detail"], str)
    return problem


async def place(client: httpx.AsyncClient, order_id: str = "o-1", **headers: str) -> httpx.Response:
    return await client.post(f"/orders/{order_id}", json=LINES, headers=headers)


class TestCommands:
    def test_placing_an_order_creates_it(self, app: FastAPI, shop: Shop) -> None:
        """A new order answers 201 with its location, its version as ETag and its state."""

        async def scenario(client: httpx.AsyncClient) -> None:
            response = await client.post("/orders/o-1", json=LINES, headers={"If-None-Match": "*"})
            assert response.status_code == 201
            assert response.headers["etag"] == '"1"'
            assert response.headers["location"] == "/orders/o-1"
            assert REPLAYED.lower() not in response.headers
            body = response.json()
            assert (body["version"], body["stored"]) == (1, ["OrderPlaced"])
            assert body["order"]["status"] == "placed"
            assert body["order"]["total_cents"] == 2500

        run(app, scenario)
        assert event_types(shop, "o-1") == ["OrderPlaced"]

    def test_the_same_order_placed_again_stores_nothing(self, app: FastAPI, shop: Shop) -> None:
        """Placing an existing order with the same lines (no precondition) answers 200."""

        async def scenario(client: httpx.AsyncClient) -> None:
            await place(client)
            again = await place(client)
            assert again.status_code == 200
            assert again.headers["etag"] == '"1"'
            assert again.json()["stored"] == []

        run(app, scenario)
        assert version(shop, "o-1") == 1

    def test_an_update_with_the_current_etag_is_stored(self, app: FastAPI, shop: Shop) -> None:
        """If-Match with the ETag of the last answer stores the command, and moves the ETag."""

        async def scenario(client: httpx.AsyncClient) -> None:
            etag = (await place(client)).headers["etag"]
            paid = await client.post(
                "/orders/o-1/payments", json=PAYMENT, headers={"If-Match": etag}
            )
            assert paid.status_code == 200
            assert paid.headers["etag"] == '"2"'
            assert paid.json()["order"]["paid_cents"] == 2500

        run(app, scenario)
        assert event_types(shop, "o-1") == ["OrderPlaced", "PaymentRecorded"]

    def test_a_stale_etag_is_refused_with_the_actual_version(
        self, app: FastAPI, shop: Shop
    ) -> None:
        """If-Match with an older version answers 412 naming the stream's version; no event."""

        async def scenario(client: httpx.AsyncClient) -> None:
            await place(client)
            await client.post("/orders/o-1/payments", json=PAYMENT)
            stale = await client.post(
                "/orders/o-1/cancel",
                json={"reason": "changed my mind"},
                headers={"If-Match": '"1"'},
            )
            problem = assert_problem(stale, 412, "wrong-expected-version")
            assert problem["actual_version"] == 2
            assert problem["expected_version"] == 1
            assert problem["stream"] == "order/o-1"

        run(app, scenario)
        assert event_types(shop, "o-1") == ["OrderPlaced", "PaymentRecorded"]

    def test_creating_an_existing_order_is_refused(self, app: FastAPI, shop: Shop) -> None:
        """If-None-Match: * on an order that exists answers 412, even with the same lines."""

        async def scenario(client: httpx.AsyncClient) -> None:
            await place(client)
            again = await place(client, **{"If-None-Match": "*"})
            problem = assert_problem(again, 412, "wrong-expected-version")
            assert (problem["expected_version"], problem["actual_version"]) == ("no_stream", 1)

        run(app, scenario)
        assert version(shop, "o-1") == 1

    def test_if_match_star_needs_the_order_to_exist(self, app: FastAPI, shop: Shop) -> None:
        """If-Match: * answers 412 (actual version 0) for an order never placed."""

        async def scenario(client: httpx.AsyncClient) -> None:
            response = await client.post(
                "/orders/o-9/cancel", json={"reason": "x"}, headers={"If-Match": "*"}
            )
            assert assert_problem(response, 412, "wrong-expected-version")["actual_version"] == 0

        run(app, scenario)
        assert version(shop, "o-9") == 0

    @pytest.mark.parametrize(
        "headers",
        [
            {"If-Match": 'W/"1"'},
            {"If-Match": '"1", "2"'},
            {"If-Match": "1"},
            {"If-Match": '"01"'},
            {"If-Match": '"abc"'},
            {"If-None-Match": '"1"'},
            {"If-Match": '"1"', "If-None-Match": "*"},
            {"Idempotency-Key": "k" * 201},
        ],
    )
    def test_a_malformed_header_is_a_bad_request(
        self, app: FastAPI, shop: Shop, headers: dict[str, str]
    ) -> None:
        """A precondition or key the API cannot read answers 400, and stores nothing."""

        async def scenario(client: httpx.AsyncClient) -> None:
            response = await place(client, **headers)
            kind = "malformed-idempotency-key" if "Idempotency-Key" in headers else None
            assert_problem(response, 400, kind or "malformed-precondition")

        run(app, scenario)
        assert version(shop, "o-1") == 0

    def test_stock_received_at_a_warehouse(self, app: FastAPI) -> None:
        """A receipt answers the warehouse's available stock and its stream's version."""

        async def scenario(client: httpx.AsyncClient) -> None:
            received = await client.post(
                "/warehouses/warehouse-1/receipts",
                json={"items": [{"sku": "widget", "quantity": 5}]},
            )
            assert received.status_code == 200
            assert received.headers["etag"] == '"1"'
            assert received.json()["available"] == {"widget": 5}

        run(app, scenario)


class TestIdempotency:
    def test_a_repeated_key_answers_the_first_result(self, app: FastAPI, shop: Shop) -> None:
        """The same request with the same key is answered as the first was, marked replayed."""

        async def scenario(client: httpx.AsyncClient) -> None:
            headers = {"Idempotency-Key": "place-o-1", "If-None-Match": "*"}
            first = await place(client, **headers)
            again = await place(client, **headers)
            assert (again.status_code, again.json()) == (first.status_code, first.json())
            assert again.headers["etag"] == first.headers["etag"] == '"1"'
            assert again.headers[REPLAYED] == "true"
            assert again.json()["stored"] == ["OrderPlaced"]

        run(app, scenario)
        assert event_types(shop, "o-1") == ["OrderPlaced"]

    def test_a_replay_is_answered_after_the_stream_moved(self, app: FastAPI, shop: Shop) -> None:
        """A retry whose If-Match the first try made stale gets its first answer, not a 412."""

        async def scenario(client: httpx.AsyncClient) -> None:
            await place(client)
            headers = {"Idempotency-Key": "pay-1", "If-Match": '"1"'}
            first = await client.post("/orders/o-1/payments", json=PAYMENT, headers=headers)
            await client.post("/orders/o-1/cancel", json={"reason": "x"})
            again = await client.post("/orders/o-1/payments", json=PAYMENT, headers=headers)
            assert again.status_code == 200
            assert again.json() == first.json()
            assert again.headers["etag"] == '"2"'

        run(app, scenario)
        assert event_types(shop, "o-1") == ["OrderPlaced", "PaymentRecorded", "OrderCancelled"]

    def test_a_key_sent_with_another_request_is_refused(self, app: FastAPI, shop: Shop) -> None:
        """A key reused for a different body (or endpoint) answers 422; nothing is stored."""

        async def scenario(client: httpx.AsyncClient) -> None:
            await place(client, **{"Idempotency-Key": "k-1"})
            other = await client.post(
                "/orders/o-1/cancel", json={"reason": "x"}, headers={"Idempotency-Key": "k-1"}
            )
            problem = assert_problem(other, 422, "idempotency-key-reused")
            assert (problem["stream"], problem["version"]) == ("order/o-1", 1)

        run(app, scenario)
        assert event_types(shop, "o-1") == ["OrderPlaced"]


class TestProblems:
    def test_a_domain_refusal_is_unprocessable(self, app: FastAPI, shop: Shop) -> None:
        """A command the order's rules refuse answers 422 with the rule's words; no event."""

        async def scenario(client: httpx.AsyncClient) -> None:
            await place(client)
            short = await client.post(
                "/orders/o-1/payments", json={"payment_id": "p", "amount_cents": 1}
            )
            problem = assert_problem(short, 422, "order-refused")
            assert problem["title"] == "Order refused"
            assert problem["order_id"] == "o-1"
            assert "does not match the order's total of $25.00" in problem["detail"]

        run(app, scenario)
        assert version(shop, "o-1") == 1

    def test_a_command_on_an_order_never_placed_is_refused(self, app: FastAPI) -> None:
        """Paying for an order never placed answers 422: the rules refuse it."""

        async def scenario(client: httpx.AsyncClient) -> None:
            response = await client.post("/orders/o-404/payments", json=PAYMENT)
            assert "never placed" in assert_problem(response, 422, "order-refused")["detail"]

        run(app, scenario)

    @pytest.mark.parametrize(
        ("body", "location"),
        [
            ({"lines": [{"sku": "w", "quantity": 0, "unit_price_cents": 1}]}, "quantity"),
            ({"lines": [{"sku": "w", "quantity": 1}]}, "unit_price_cents"),
            ({"lines": [], "coupon": "FREE"}, "coupon"),
        ],
    )
    def test_a_malformed_body_is_unprocessable(
        self, app: FastAPI, body: dict[str, Any], location: str
    ) -> None:
        """A body of the wrong shape answers 422 listing what is wrong and where."""

        async def scenario(client: httpx.AsyncClient) -> None:
            response = await client.post("/orders/o-1", json=body)
            problem = assert_problem(response, 422, "malformed-request")
            assert any(error["loc"][-1] == location for error in problem["errors"])

        run(app, scenario)

    def test_an_unknown_path_is_a_problem_too(self, app: FastAPI) -> None:
        """Starlette's own 404 and 405 answer as problems of type about:blank."""

        async def scenario(client: httpx.AsyncClient) -> None:
            assert_problem(await client.get("/nowhere"), 404, "")
            assert_problem(await client.delete("/orders/o-1"), 405, "")

        run(app, scenario)


class TestReads:
    def test_an_order_shows_after_a_projector_pass(self, app: FastAPI) -> None:
        """GET answers 404 until a pass projects the order, then its summary and version."""

        async def scenario(client: httpx.AsyncClient) -> None:
            placed = await place(client)
            before = await client.get("/orders/o-1")
            assert "projector pass" in assert_problem(before, 404, "unknown-order")["detail"]
            await asyncio.to_thread(run_pass, app)
            after = await client.get("/orders/o-1")
            assert after.status_code == 200
            summary = after.json()
            assert (summary["order_id"], summary["total_cents"]) == ("o-1", 2500)
            # The version the summary reflects: at least the POST's (the reactor may add more).
            assert summary["version"] >= placed.json()["version"]
            assert after.headers["etag"] == f'"{summary["version"]}"'

        run(app, scenario)

    def test_the_etag_of_a_read_is_a_precondition(self, app: FastAPI, shop: Shop) -> None:
        """The ETag a GET answers, sent as If-Match, stores the command if nothing moved."""

        async def scenario(client: httpx.AsyncClient) -> None:
            await place(client)
            await asyncio.to_thread(run_pass, app)
            await asyncio.to_thread(run_pass, app)  # the reactor's answers, projected
            read = await client.get("/orders/o-1")
            assert read.headers["etag"] == f'"{version(shop, "o-1")}"'
            cancel = await client.post(
                "/orders/o-1/cancel",
                json={"reason": "x"},
                headers={"If-Match": read.headers["etag"]},
            )
            assert cancel.status_code == 200

        run(app, scenario)
        assert event_types(shop, "o-1")[-1] == "OrderCancelled"

    def test_an_order_is_filled_by_the_reactor(self, app: FastAPI) -> None:
        """With stock received and the order paid, passes reserve, ship and project it."""

        async def scenario(client: httpx.AsyncClient) -> None:
            await client.post(
                "/warehouses/warehouse-1/receipts",
                json={"items": [{"sku": "widget", "quantity": 5}]},
            )
            await place(client)
            await client.post("/orders/o-1/payments", json=PAYMENT)
            statuses = []
            for _ in range(5):
                await asyncio.to_thread(run_pass, app)
                statuses.append((await client.get("/orders/o-1")).json()["status"])
            assert statuses[-1] == "shipped"
            stock = (await client.get("/stock/widget")).json()
            assert stock["total"] == {"received": 5, "reserved": 2, "short": 0, "available": 3}
            assert list(stock["warehouses"]) == ["warehouse-1"]

        run(app, scenario)

    def test_orders_are_listed_by_status(self, app: FastAPI) -> None:
        """GET /orders filters by status and pages by id."""

        async def scenario(client: httpx.AsyncClient) -> None:
            for order_id in ("o-1", "o-2", "o-3"):
                await place(client, order_id)
            await client.post("/orders/o-2/cancel", json={"reason": "x"})
            await asyncio.to_thread(run_pass, app)
            cancelled = (await client.get("/orders", params={"status": "cancelled"})).json()
            assert [order["order_id"] for order in cancelled["orders"]] == ["o-2"]
            page = (await client.get("/orders", params={"after": "o-1", "limit": 1})).json()
            assert [order["order_id"] for order in page["orders"]] == ["o-2"]
            wrong = await client.get("/orders", params={"status": "lost"})
            assert_problem(wrong, 422, "malformed-request")

        run(app, scenario)

    def test_an_unknown_product_is_not_found(self, app: FastAPI) -> None:
        """GET /stock of a SKU no warehouse has answers 404."""

        async def scenario(client: httpx.AsyncClient) -> None:
            assert_problem(await client.get("/stock/nothing"), 404, "unknown-product")

        run(app, scenario)


class TestLifespan:
    def test_the_lifespan_runs_passes_in_the_background(self, shop: Shop) -> None:
        """A POST shows in a GET once a background pass that started after it has finished."""
        app = create_app(shop, pass_interval=0.01)
        passes = app.state.web.passes

        async def scenario(client: httpx.AsyncClient) -> None:
            await place(client)
            await asyncio.to_thread(passes.wait_for_next)
            response = await client.get("/orders/o-1")
            assert response.status_code == HTTPStatus.OK
            # Placed, or already cancelled: the warehouse holds no stock, and the fulfilment
            # reactor may have refused the order in a pass after the one waited for.
            assert response.json()["status"] in {OrderStatus.PLACED, OrderStatus.CANCELLED}

        run(app, scenario)
        assert passes.failures == 0
        assert passes._thread is not None
        assert not passes._thread.is_alive()

    def test_a_failing_step_stops_no_other(
        self, app: FastAPI, shop: Shop, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A reactor that fails leaves the projectors their pass; the error is raised after."""

        def broken(**_: object) -> None:
            raise RuntimeError("the reactor is broken")

        async def scenario(client: httpx.AsyncClient) -> None:
            await place(client)
            monkeypatch.setattr(shop.fulfilment, "catch_up", broken)
            with pytest.raises(ExceptionGroup) as failed:
                await asyncio.to_thread(run_pass, app)
            assert [str(error) for error in failed.value.exceptions] == ["the reactor is broken"]
            assert (await client.get("/orders/o-1")).status_code == 200

        run(app, scenario)

    def test_commands_need_the_lifespan(self, app: FastAPI) -> None:
        """Without its lifespan the app has no object store to send commands to: it says so."""

        async def scenario() -> None:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
                await place(client)

        with pytest.raises(RuntimeError, match="lifespan has not started"):
            asyncio.run(scenario())


class TestOnS3:
    def test_the_app_on_the_embedded_endpoint(
        self, embedded_s3: EmbeddedS3, s3_store: S3ObjectStore
    ) -> None:
        """Over aiobotocore, commands and their replays answer as in memory; reads follow."""
        session = get_session()
        session.set_credentials("testing", "testing")
        objects = s3_objects(
            s3_store.bucket,
            endpoint_url=embedded_s3.endpoint_url,
            region_name="us-east-1",
            session=session,
        )
        with SQLiteReadModelStore(":memory:") as read_models:
            shop = Shop(s3_store, read_models=read_models)
            app = create_app(shop, objects, pass_interval=None)

            async def scenario(client: httpx.AsyncClient) -> None:
                headers = {"Idempotency-Key": "place-o-1", "If-None-Match": "*"}
                first = await place(client, **headers)
                again = await place(client, **headers)
                assert (first.status_code, again.status_code) == (201, 201)
                assert again.headers[REPLAYED] == "true"
                stale = await client.post(
                    "/orders/o-1/payments", json=PAYMENT, headers={"If-Match": '"0"'}
                )
                assert assert_problem(stale, 412, "wrong-expected-version")["actual_version"] == 1
                await asyncio.to_thread(run_pass, app)
                assert (await client.get("/orders/o-1")).status_code == 200

            run(app, scenario)
            assert event_types(shop, "o-1")[0] == "OrderPlaced"


def _lines(count: int, **line: Any) -> dict[str, Any]:
    """A place-order body of ``count`` lines of distinct SKUs, each updated with ``line``."""
    return {
        "lines": [
            {"sku": f"s-{n}", "quantity": 1, "unit_price_cents": 1, **line} for n in range(count)
        ]
    }


@pytest.fixture
def decided(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The commands the Order aggregate decides from here on (decide still runs)."""
    commands: list[object] = []
    decide = Order.decide

    def spy(self: Order, command: OrderCommand, state: OrderState) -> Sequence[OrderEvent]:
        commands.append(command)
        return decide(self, command, state)

    monkeypatch.setattr(Order, "decide", spy)
    return commands


class TestNames:
    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("POST", "/orders/%2E%2E"),
            ("POST", "/orders/%2E"),
            ("POST", "/orders/%2E%2E/payments"),
            ("POST", "/orders/%2E%2E/cancel"),
            ("POST", "/orders/%2E%2E/ship"),
            ("GET", "/orders/%2E%2E"),
            ("GET", "/orders/%2E"),
            ("POST", "/warehouses/%2E%2E/receipts"),
        ],
    )
    def test_dot_ids_are_refused(self, app: FastAPI, method: str, path: str) -> None:
        """An order or warehouse id of . or .. (no stream can have it) answers a 422 problem
        naming the path parameter, on every endpoint, instead of a raw 500."""
        bodies = {"payments": PAYMENT, "cancel": {"reason": "x"}, "receipts": {"items": []}}
        body = next((b for end, b in bodies.items() if path.endswith(end)), LINES)

        async def scenario(client: httpx.AsyncClient) -> None:
            json = body if method == "POST" and not path.endswith("ship") else None
            response = await client.request(method, path, json=json)
            problem = assert_problem(response, 422, "malformed-request")
            assert ["path", "warehouse_id" if "warehouses" in path else "order_id"] in [
                error["loc"] for error in problem["errors"]
            ]

        run(app, scenario)

    def test_ids_with_dots_inside_are_taken(self, app: FastAPI, shop: Shop) -> None:
        """An id holding dots among other characters is a stream id like any other."""

        async def scenario(client: httpx.AsyncClient) -> None:
            assert (await place(client, "o.1..x")).status_code == 201

        run(app, scenario)
        assert version(shop, "o.1..x") == 1

    def test_a_sku_no_product_can_have_is_not_found(self, app: FastAPI) -> None:
        """GET /stock of a SKU with a NUL answers 404 without asking the read model."""

        async def scenario(client: httpx.AsyncClient) -> None:
            problem = assert_problem(await client.get("/stock/a%00b"), 404, "unknown-product")
            assert "U+0000" in problem["detail"]

        run(app, scenario)


class TestBounds:
    def test_a_huge_body_is_refused_before_it_is_read(
        self, app: FastAPI, decided: list[object]
    ) -> None:
        """An order of 20,000 lines (a body of about 1 MB; one blocked the event loop for 35 s)
        answers 413 from its Content-Length, and nothing is decided."""

        async def scenario(client: httpx.AsyncClient) -> None:
            response = await client.post("/orders/o-1", json=_lines(20_000))
            problem = assert_problem(response, 413, "body-too-large")
            assert str(MAX_BODY_BYTES) in problem["detail"]

        run(app, scenario)
        assert decided == []

    def test_a_streamed_body_is_cut_at_the_limit(self, app: FastAPI, decided: list[object]) -> None:
        """A body sent in chunks, without a Content-Length, is refused (413) once it passes the
        limit: the chunks after that are never read."""
        chunk = b" " * 16_384
        sent: list[int] = []

        async def body() -> AsyncIterator[bytes]:
            yield b'{"lines": ['
            for number in range(200):  # 3.2 MB
                sent.append(number)
                yield chunk
            yield b"]}"

        async def scenario(client: httpx.AsyncClient) -> None:
            headers = {"Content-Type": "application/json"}
            response = await client.post("/orders/o-1", content=body(), headers=headers)
            assert "content-length" not in response.request.headers
            assert_problem(response, 413, "body-too-large")

        run(app, scenario)
        assert len(sent) <= MAX_BODY_BYTES // len(chunk) + 1
        assert decided == []

    def test_too_many_lines_are_refused_undecided(
        self, app: FastAPI, decided: list[object]
    ) -> None:
        """A body within the size limit but of more than MAX_LINES lines answers 422 naming
        ``lines``, and nothing is decided."""

        async def scenario(client: httpx.AsyncClient) -> None:
            response = await client.post("/orders/o-1", json=_lines(MAX_LINES + 1))
            problem = assert_problem(response, 422, "malformed-request")
            assert [error["loc"] for error in problem["errors"]] == [["body", "lines"]]

        run(app, scenario)
        assert decided == []

    @pytest.mark.parametrize(
        ("path", "body", "location"),
        [
            ("/orders/o-1", _lines(1, unit_price_cents=2**64), "unit_price_cents"),
            ("/orders/o-1", _lines(1, quantity=MAX_QUANTITY + 1), "quantity"),
            ("/orders/o-1", _lines(1, sku="a\u0000b"), "sku"),
            (
                "/orders/o-1",
                b'{"lines": [{"sku": "a\\ud800", "quantity": 1, "unit_price_cents": 1}]}',
                "sku",
            ),
            ("/orders/o-1/payments", {"payment_id": "p", "amount_cents": 2**64}, "amount_cents"),
            ("/orders/o-1/payments", {"payment_id": "p\u0000", "amount_cents": 1}, "payment_id"),
            ("/orders/o-1/cancel", {"reason": "x\u0000"}, "reason"),
            ("/warehouses/w-1/receipts", {"items": [{"sku": "\u0000", "quantity": 1}]}, "sku"),
        ],
    )
    def test_values_out_of_bounds_are_malformed(
        self, app: FastAPI, decided: list[object], path: str, body: Any, location: str
    ) -> None:
        """An amount, quantity or text out of the domain's bounds answers 422 naming the field;
        nothing is decided."""

        async def scenario(client: httpx.AsyncClient) -> None:
            if isinstance(body, bytes):  # a lone surrogate, which httpx cannot encode itself
                headers = {"Content-Type": "application/json"}
                response = await client.post(path, content=body, headers=headers)
            else:
                response = await client.post(path, json=body)
            problem = assert_problem(response, 422, "malformed-request")
            assert [error["loc"][-1] for error in problem["errors"]] == [location]

        run(app, scenario)
        assert decided == []

    def test_the_domain_refuses_a_total_out_of_bounds(self, app: FastAPI, shop: Shop) -> None:
        """Lines each within bounds whose total is not are refused by the order's rules,
        naming the field."""
        half = MAX_CENTS // 2 + 1
        body = {
            "lines": [
                {"sku": "a", "quantity": 1, "unit_price_cents": half},
                {"sku": "b", "quantity": 1, "unit_price_cents": half},
            ]
        }

        async def scenario(client: httpx.AsyncClient) -> None:
            response = await client.post("/orders/o-1", json=body)
            assert assert_problem(response, 422, "order-refused")["field"] == "total_cents"

        run(app, scenario)
        assert version(shop, "o-1") == 0

    def test_a_refused_huge_order_stalls_no_read_model(self, app: FastAPI, shop: Shop) -> None:
        """A huge price is refused, so the orders placed after it are projected (a stored one
        stalled the SQL summaries: every later GET answered 404)."""

        async def scenario(client: httpx.AsyncClient) -> None:
            huge = await client.post("/orders/o-1", json=_lines(1, unit_price_cents=2**64))
            assert huge.status_code == 422
            await place(client, "o-2")
            await asyncio.to_thread(run_pass, app)
            assert (await client.get("/orders/o-2")).status_code == 200

        run(app, scenario)
        assert version(shop, "o-1") == 0


class TestContentType:
    @pytest.mark.parametrize(
        "content_type", [None, "text/plain", "application/x-www-form-urlencoded"]
    )
    def test_a_body_that_is_not_json_is_unsupported(
        self, app: FastAPI, shop: Shop, content_type: str | None
    ) -> None:
        """A body sent without Content-Type: application/json answers 415 saying what to send,
        not a 422 about the body's shape."""
        headers = {"Content-Type": content_type} if content_type else {}

        async def scenario(client: httpx.AsyncClient) -> None:
            content = b'{"lines": [{"sku": "w", "quantity": 1, "unit_price_cents": 1}]}'
            response = await client.post("/orders/o-1", content=content, headers=headers)
            problem = assert_problem(response, 415, "unsupported-media-type")
            assert "application/json" in problem["detail"]
            assert response.headers["accept"] == "application/json"

        run(app, scenario)
        assert version(shop, "o-1") == 0

    @pytest.mark.parametrize(
        "content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON"]
    )
    def test_json_is_taken(self, app: FastAPI, content_type: str) -> None:
        """application/json, with parameters or in capitals, is taken."""

        async def scenario(client: httpx.AsyncClient) -> None:
            content = b'{"lines": [{"sku": "w", "quantity": 1, "unit_price_cents": 1}]}'
            headers = {"Content-Type": content_type}
            response = await client.post("/orders/o-1", content=content, headers=headers)
            assert response.status_code == 201, response.text

        run(app, scenario)

    def test_a_command_without_a_body_needs_no_type(self, app: FastAPI) -> None:
        """POST /ship takes no body: sent without one, it needs no Content-Type."""

        async def scenario(client: httpx.AsyncClient) -> None:
            await place(client)
            response = await client.post("/orders/o-1/ship")
            assert "not paid" in assert_problem(response, 422, "order-refused")["detail"]

        run(app, scenario)


class TestProblemTypes:
    def test_every_type_is_served(self, app: FastAPI) -> None:
        """The ``type`` of every problem the app answers is a page it serves (it answered
        404), saying the problem's title, status and what to do."""

        async def scenario(client: httpx.AsyncClient) -> None:
            assert PROBLEM_TYPES
            for kind, problem_type in PROBLEM_TYPES.items():
                page = await client.get(f"/problems/{kind}")
                assert page.status_code == 200, kind
                assert problem_type.title in page.text
                assert str(int(problem_type.status)) in page.text
            refused = await client.post("/orders/o-404/payments", json=PAYMENT)
            assert (await client.get(refused.json()["type"])).status_code == 200
            assert_problem(await client.get("/problems/nothing"), 404, "")

        run(app, scenario)

    def test_titles_agree_with_the_status_line(self, app: FastAPI) -> None:
        """A typed problem's title is its type's; an untyped one's is the status line's reason
        phrase (Python's http module's, which uvicorn sends): never 'Unprocessable Content'
        under a status line of 'Unprocessable Entity'."""

        async def scenario(client: httpx.AsyncClient) -> None:
            refused = await client.post("/orders/o-404/payments", json=PAYMENT)
            problem = assert_problem(refused, 422, "order-refused")
            assert problem["title"] == PROBLEM_TYPES["order-refused"].title
            for response in (await client.get("/nowhere"), await client.delete("/orders/o-1")):
                untyped = assert_problem(response, response.status_code, "")
                assert untyped["title"] == HTTPStatus(response.status_code).phrase

        run(app, scenario)

    def test_a_problem_of_no_type_cannot_be_made(self) -> None:
        """A problem's kind must be a registered type: its page would answer 404."""
        with pytest.raises(KeyError, match="no-such-kind"):
            Problem("no-such-kind", "detail")
