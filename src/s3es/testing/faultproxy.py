"""A fault-injecting HTTP proxy in front of an S3 endpoint on 127.0.0.1 (the embedded moto server).

Point an S3 client at :attr:`FaultProxy.endpoint_url` (path-style addressing) and arm the proxy
with a schedule of :class:`Rule`: each names a fault, the kind of request it hits (``PUT``,
``GET``, ``LIST``, ``DELETE``, ``HEAD`` or ``*``) and which of those requests, counted from 0
since the schedule was armed. Requests no rule hits are forwarded unchanged. The faults are the
ones a network and S3 inflict on a client (see :class:`Fault`); each is decided before the
request is forwarded, so which requests reached the server does not depend on timing. The one
thing that does, a request the server answered only after the client had given up on it (an
overloaded machine outlasting a read timeout), is recorded as :attr:`Seen.late`.

A rule with a ``prefix`` counts and hits only the requests whose key (a LIST's prefix) starts
with it, so one schedule can fault one stream among several clients' streams. A
:attr:`Fault.DELAY` holds an answer until the client goes away: :meth:`FaultProxy.wait_held`
tells when one is held, so a test can kill the client process (SIGKILL) between its request
landing and its answer, and :attr:`Seen.status` says what the server had answered.

The proxy is a ``ThreadingHTTPServer`` speaking HTTP/1.1 with keep-alive, as botocore expects;
each request goes to the server over a connection of its own.
"""

from __future__ import annotations

import collections
import enum
import http.client
import http.server
import select
import socket
import struct
import sys
import threading
import urllib.parse
from types import TracebackType
from typing import Any, Self

import attrs


class Fault(enum.Enum):
    """What the proxy does to a request instead of passing it on and its answer back."""

    #: Forward the request, then close the connection without answering: stored, answer lost.
    DROP_RESPONSE = "drop-response"
    #: Reset the connection (TCP RST) without forwarding: the request never lands.
    RESET = "reset"
    #: Answer 409 ConditionalRequestConflict without forwarding, as S3 does to a conditional
    #: write that raced another write to the key.
    CONFLICT = "409-conflict"
    #: Answer 503 SlowDown without forwarding.
    SLOW_DOWN = "503-slow-down"
    #: Answer 500 InternalError without forwarding.
    INTERNAL_ERROR = "500-internal-error"
    #: Forward the request, then hold the answer until the client gives up (its read timeout
    #: closes the connection, or its process dies) and close: stored, answer too late.
    #: :meth:`FaultProxy.wait_held` tells when an answer is held.
    DELAY = "delay"


#: The S3 error each answering fault sends: status, code and message.
_ERRORS = {
    Fault.CONFLICT: (
        409,
        "ConditionalRequestConflict",
        (
            "A conflicting conditional operation is currently in progress against this "
            "resource. Please try again."
        ),
    ),
    Fault.SLOW_DOWN: (503, "SlowDown", "Please reduce your request rate."),
    Fault.INTERNAL_ERROR: (500, "InternalError", "We encountered an internal error. Try again."),
}
#: Headers that describe one connection, not the message: never passed through.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
    }
)
#: The longest a DELAY holds an answer for a client that never gives up.
_LONGEST_HOLD = 30.0


@attrs.frozen
class Rule:
    """Apply ``fault`` to requests ``first`` .. ``first + times - 1`` of ``operation``.

    Requests are counted per operation (``*``: all of them), from 0, since the schedule was
    armed; botocore's retries are requests of their own. The first rule that matches applies.

    Attributes:
        fault: What to do to the requests hit.
        operation: ``PUT``, ``GET``, ``LIST``, ``DELETE``... or ``*`` for every request.
        first: The number of the first request hit, from 0.
        times: How many requests in a row are hit (at least 1).
        prefix: Only requests whose key (a LIST's prefix) starts with it are counted and hit:
            the rule's numbers count that stream's (or folder's) requests alone.
    """

    fault: Fault
    operation: str
    first: int = attrs.field(validator=attrs.validators.ge(0))
    times: int = attrs.field(default=1, validator=attrs.validators.ge(1))
    prefix: str = ""

    def hits(self, operation: str, key: str, counts: collections.Counter[tuple[str, str]]) -> bool:
        """Whether this rule applies to a request, given the counts of the requests before it.

        Args:
            operation: The request's operation (``PUT``, ``GET``, ``LIST``, ``DELETE``...).
            key: The request's key (a LIST's prefix).
            counts: Maps (operation or ``*``, prefix) to the number of such requests so far.

        Returns:
            True if the request is one of those the rule hits.
        """
        if self.operation not in {"*", operation} or not key.startswith(self.prefix):
            return False
        number = counts[self.operation, self.prefix]
        return self.first <= number < self.first + self.times


@attrs.frozen
class Seen:
    """One request the proxy received, as :meth:`FaultProxy.disarm` hands them back.

    Attributes:
        operation: The request's operation (``PUT``, ``GET``, ``LIST``, ``DELETE``...).
        key: The object key (a LIST's prefix).
        fault: The fault applied; None: forwarded untouched.
        late: The request was forwarded and the server answered only after the client had
            closed the connection (a timeout): it may have landed after the client looked.
        status: The HTTP status the server answered a forwarded request with (whether or not
            the client got it); None for a request not forwarded, or not yet answered.
    """

    operation: str
    key: str
    fault: Fault | None
    late: bool = False
    status: int | None = None


def operation_of(method: str, target: str) -> str:
    """The kind of S3 request: ``LIST`` for ListObjectsV2, else the HTTP method.

    Args:
        method: The request's HTTP method.
        target: The request target (path and query).

    Returns:
        ``LIST``, or ``method``.
    """
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(target).query)
    if method == "GET" and "list-type" in query:
        return "LIST"
    return method


def key_of(target: str) -> str:
    """The object key of a path-style request target, decoded; a LIST's ``prefix``.

    Args:
        target: The request target (``/bucket/key?query``).

    Returns:
        The key; the empty key for a request on the bucket itself (other than a LIST).
    """
    parts = urllib.parse.urlsplit(target)
    query = urllib.parse.parse_qs(parts.query)
    if "list-type" in query:
        return query.get("prefix", [""])[0]
    _, _, key = parts.path.lstrip("/").partition("/")
    return urllib.parse.unquote(key)


class FaultProxy:
    """An HTTP proxy on 127.0.0.1 in front of ``upstream`` that injects faults on schedule.

    Use it as a context manager; :meth:`arm` sets a schedule, :meth:`disarm` ends it and
    returns what was seen. Thread-safe: requests are numbered in the order they arrive.
    docs/testing.md, "Resilience: FaultProxy", shows it at work.

    Args:
        upstream: The endpoint to forward to: ``http://host:port``.

    Raises:
        ValueError: ``upstream`` is not ``http://host:port``.
    """

    def __init__(self, upstream: str) -> None:
        parts = urllib.parse.urlsplit(upstream)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise ValueError(f"upstream must be http://host:port, not {upstream!r}")
        self.upstream = (parts.hostname, parts.port)
        self._lock = threading.Lock()
        self._rules: tuple[Rule, ...] = ()
        self._counts: collections.Counter[tuple[str, str]] = collections.Counter()
        self._seen: list[Seen] = []
        #: Indexes in ``_seen`` of requests whose answer is being held, and their condition.
        self._held: list[int] = []
        self._held_changed = threading.Condition(self._lock)
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:PORT`` of the running proxy.

        Raises:
            RuntimeError: The proxy is not running.
        """
        if self._server is None:
            raise RuntimeError("the fault proxy is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> str:
        """Listen on a free port of 127.0.0.1 (nothing if it listens already).

        Returns:
            The endpoint URL.
        """
        if self._server is None:
            self._stopping.clear()
            self._server = _Server(self)
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="fault-proxy",
                daemon=True,
            )
            self._thread.start()
        return self.endpoint_url

    def stop(self) -> None:
        """Stop serving, end held answers and open connections, and wait for every handler."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._stopping.set()
        server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:  # idle keep-alive connections end their handlers here
            _shut(connection)
        server.server_close()  # joins the handler threads
        thread.join()
        self._server = self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def arm(self, rules: tuple[Rule, ...] | list[Rule]) -> None:
        """Start a schedule: count requests from 0 again and apply ``rules`` to them.

        Args:
            rules: The rules, the first that matches a request applying.
        """
        with self._lock:
            self._rules = tuple(rules)
            self._counts.clear()
            self._seen = []
            self._held = []

    def disarm(self) -> list[Seen]:
        """End the schedule (forward everything from now on).

        Returns:
            The requests the schedule saw, in the order they arrived.
        """
        with self._lock:
            seen, self._seen, self._rules = self._seen, [], ()
            self._counts.clear()
            self._held = []
            return seen

    def wait_held(self, timeout: float) -> Seen | None:
        """Wait until an answer is held (a DELAY, forwarded and answered by the server).

        The hold lasts until the client closes its connection (gives up, or its process dies) or
        the proxy stops: the moment to kill a client process whose request has landed but which
        has not learnt so.

        Args:
            timeout: Seconds to wait.

        Returns:
            The held request as seen (its key, and in ``status`` what the server answered); None
            if none was held within ``timeout``. Each held request is returned once.
        """
        with self._held_changed:
            if not self._held_changed.wait_for(lambda: bool(self._held), timeout):
                return None
            return self._seen[self._held.pop(0)]

    def _fault_for(self, operation: str, key: str) -> tuple[Fault | None, _Record]:
        """Number the request and record it: the fault to apply (None: forward), and more.

        The second value records what became of the request once forwarded.
        """
        with self._lock:
            fault = next(
                (rule.fault for rule in self._rules if rule.hits(operation, key, self._counts)),
                None,
            )
            for prefix in {rule.prefix for rule in self._rules} | {""}:
                if key.startswith(prefix):
                    self._counts[operation, prefix] += 1
                    self._counts["*", prefix] += 1
            seen, index = self._seen, len(self._seen)
            seen.append(Seen(operation, key, fault))
        return fault, _Record(self, seen, index)

    def _opened(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.add(connection)
        if self._stopping.is_set():  # accepted while stopping: stop() may have missed it
            _shut(connection)

    def _closed(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)

    def _hold(self, connection: socket.socket) -> None:
        """Wait until the client closes ``connection`` (it gave up) or the proxy stops.

        Stopping shuts every open connection down, which ends the wait too.
        """
        select.select([connection], [], [], _LONGEST_HOLD)


class _Record:
    """Updates one request's :class:`Seen` entry as it is forwarded, answered, held."""

    def __init__(self, proxy: FaultProxy, seen: list[Seen], index: int) -> None:
        self._proxy, self._seen, self._index = proxy, seen, index

    def answered(self, status: int) -> None:
        """The server answered ``status``."""
        with self._proxy._lock:
            self._seen[self._index] = attrs.evolve(self._seen[self._index], status=status)

    def landed_late(self) -> None:
        """The server answered after the client had gone."""
        with self._proxy._lock:
            self._seen[self._index] = attrs.evolve(self._seen[self._index], late=True)

    def held(self) -> None:
        """The answer is being held: wake :meth:`FaultProxy.wait_held` (if still armed)."""
        with self._proxy._held_changed:
            if self._proxy._seen is self._seen:
                self._proxy._held.append(self._index)
                self._proxy._held_changed.notify_all()


def _client_gone(connection: socket.socket) -> bool:
    """Whether the client has closed ``connection`` (read end at EOF, or reset)."""
    readable, _, _ = select.select([connection], [], [], 0)
    if not readable:
        return False
    try:
        return connection.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def _shut(connection: socket.socket) -> None:
    try:
        connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        return  # closed already


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins every handler
    block_on_close = True

    def __init__(self, proxy: FaultProxy) -> None:
        self.proxy = proxy
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-answer is normal here; report anything else."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without this, Nagle's algorithm and the
        # client's delayed ACK hold the body back for 40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.proxy._opened(self.connection)

    def finish(self) -> None:
        self.server.proxy._closed(self.connection)
        try:
            super().finish()
        except OSError:
            return  # the connection was reset or shut down: nothing left to flush

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's name
        """Quiet: the test reads :meth:`FaultProxy.disarm` instead."""

    def do_GET(self) -> None:
        """Proxy a GET (GetObject, ListObjectsV2...)."""
        self._proxy()

    def do_PUT(self) -> None:
        """Proxy a PUT."""
        self._proxy()

    def do_POST(self) -> None:
        """Proxy a POST."""
        self._proxy()

    def do_DELETE(self) -> None:
        """Proxy a DELETE."""
        self._proxy()

    def do_HEAD(self) -> None:
        """Proxy a HEAD."""
        self._proxy()

    def _proxy(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            self.send_error(501, "the fault proxy reads Content-Length bodies only")
            return
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        proxy = self.server.proxy
        fault, record = proxy._fault_for(operation_of(self.command, self.path), key_of(self.path))
        if fault is Fault.RESET:
            self._reset()
            return
        if fault in _ERRORS:
            self._answer_error(*_ERRORS[fault])
            return
        status, headers, payload = self._forward(body)
        record.answered(status)
        if _client_gone(self.connection):
            record.landed_late()
            self.close_connection = True
            return
        if fault is Fault.DELAY:
            record.held()
            proxy._hold(self.connection)
        if fault in {Fault.DROP_RESPONSE, Fault.DELAY}:
            self.close_connection = True
            _shut(self.connection)
            return
        self._answer(status, headers, payload)

    def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        """Send the request to the upstream server; return its status, headers and body."""
        upstream = http.client.HTTPConnection(*self.server.proxy.upstream, timeout=30)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            upstream.request(self.command, self.path, body=body, headers=headers)
            response = upstream.getresponse()
            payload = response.read()
            return response.status, response.getheaders(), payload
        finally:
            upstream.close()

    def _answer(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
        self.send_response_only(status)
        for name, value in headers:
            lowered = name.lower()
            if lowered in _HOP_BY_HOP or (lowered == "content-length" and self.command != "HEAD"):
                continue
            self.send_header(name, value)
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _answer_error(self, status: int, code: str, message: str) -> None:
        """Answer as S3 does: an XML error body naming the code."""
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{message}</Message>"
            f"<Resource>{urllib.parse.urlsplit(self.path).path}</Resource>"
            "<RequestId>FAULTPROXY</RequestId></Error>"
        ).encode()
        self.send_response_only(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _reset(self) -> None:
        """Close the connection with a TCP RST (SO_LINGER 0), answering nothing."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.server.proxy._closed(self.connection)
        self.connection.close()
