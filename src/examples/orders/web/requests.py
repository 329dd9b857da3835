"""What a request says, parsed and held to bounds before anything is decided.

The bodies of the commands are pydantic models whose fields meet the domain's bounds
(:mod:`examples.orders.limits`: a 422 naming the field otherwise); the path's ids and the
headers are typed parameters. :func:`expected_version` reads ``If-Match`` and
``If-None-Match`` as the event store's expected version, :func:`checked_key` an
``Idempotency-Key`` as a command id, and :func:`fingerprint` tells two requests sent with one
key apart. (The body's size and media type are :mod:`~examples.orders.web.gate`'s.)
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated

from fastapi import Header
from fastapi import Path as PathParam
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from examples.orders.limits import (
    MAX_CENTS,
    MAX_ID_BYTES,
    MAX_LINES,
    MAX_QUANTITY,
    MAX_REASON_BYTES,
    MAX_SKU_BYTES,
    text_problem,
)
from examples.orders.web.bounds import MAX_IDEMPOTENCY_KEY
from examples.orders.web.problems import Problem
from s3es import ExpectedVersion

#: The metadata key, on every event a keyed command stores, of the fingerprint of its request.
FINGERPRINT = "idempotency_fingerprint"
_ENTITY_TAG = re.compile(r'"(0|[1-9][0-9]{0,17})"')


# Bodies


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


# Paths and headers

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


# Preconditions and idempotency keys


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
