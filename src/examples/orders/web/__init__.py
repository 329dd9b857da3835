"""The orders example over HTTP: a FastAPI app whose commands run on the asyncio API.

:func:`create_app` serves a :class:`~examples.orders.app.Shop`: commands are POSTs, handled by
the shop's handlers on the asyncio API (a thousand in flight cost a thousand tasks, not
threads), and reads are GETs of the shop's read models, which its projectors keep up to date.
HTTP's own concurrency control maps onto the event store's (If-Match is the expected version,
the ETag the stream's version, an Idempotency-Key the command id:
:mod:`~examples.orders.web.handling` has the table); every error is an RFC 9457 problem
(``application/problem+json``) whose ``type`` is a page the app serves. Requests are bounded
before anything is decided, so that ``decide`` stays cheap enough to run on the event loop.
The app has no authentication: anyone who reaches it can place, pay, cancel and ship any order
(docs/web.md says what a deployment adds). ``make serve`` runs it with uvicorn on an embedded
S3 endpoint (``python -m examples.orders.web``).

One job a module, each built on those before it:

- :mod:`~examples.orders.web.bounds`: a request's HTTP bounds (body size and type, key length);
- :mod:`~examples.orders.web.problems`: problem details, the problem types and their pages;
- :mod:`~examples.orders.web.gate`: the middleware that refuses a body too large, or not JSON;
- :mod:`~examples.orders.web.requests`: the bodies, paths and headers, parsed and bounded;
- :mod:`~examples.orders.web.errors`: which problem answers which error;
- :mod:`~examples.orders.web.passes`: the reactor's and projectors' passes, in a thread;
- :mod:`~examples.orders.web.state`: what the endpoints share (the shop, its async handlers);
- :mod:`~examples.orders.web.handling`: a request as a command, its result as an answer;
- :mod:`~examples.orders.web.commands` and :mod:`~examples.orders.web.reads`: the endpoints;
- :mod:`~examples.orders.web.app`: :func:`create_app`, the wiring;
- ``__main__``: ``make serve``.
"""

from __future__ import annotations

from examples.orders.web.app import create_app
from examples.orders.web.bounds import MAX_BODY_BYTES, MAX_IDEMPOTENCY_KEY
from examples.orders.web.handling import REPLAYED
from examples.orders.web.passes import BackgroundPasses
from examples.orders.web.problems import PROBLEM_JSON, PROBLEM_TYPES, Problem, ProblemType
from examples.orders.web.requests import expected_version
from examples.orders.web.state import ObjectsOpener, WebShop, in_memory_objects, s3_objects

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_IDEMPOTENCY_KEY",
    "PROBLEM_JSON",
    "PROBLEM_TYPES",
    "REPLAYED",
    "BackgroundPasses",
    "ObjectsOpener",
    "Problem",
    "ProblemType",
    "WebShop",
    "create_app",
    "expected_version",
    "in_memory_objects",
    "s3_objects",
]
