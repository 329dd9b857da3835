"""The S3 adapter against moto's server: the ObjectStore contract, retries, put_args, errors.

Failures S3 answers but moto never does (409 ConditionalRequestConflict, 503 SlowDown) are
injected with a botocore ``before-send`` hook that answers in the server's place. The adapter's
backoff goes to a recorder, never to ``time.sleep``. The contract runs on the suite's
``s3_store``; the adapter's own tests make stores with clients from one shared session.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, cast

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.compat import HTTPHeaders
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError
from moto.backends import get_backend
from moto.core.models import DEFAULT_ACCOUNT_ID

from s3es import Backoff, ObjectStoreError, S3ObjectStore
from s3es.errors import ObjectAlreadyExists
from s3es.storage import ObjectStore
from s3es.testing.embedded_s3 import EmbeddedS3
from s3es.testing.objectstore_contract import ObjectStoreContract

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

#: Writing this many keys or more goes straight into moto's backend (see put_many).
_BULK = 100


class TestS3ObjectStore(ObjectStoreContract):
    """S3ObjectStore, over HTTP to moto's server, keeps every promise of the port."""

    @pytest.fixture
    def store(self, s3_store: S3ObjectStore) -> ObjectStore:
        """An S3ObjectStore on a fresh bucket of the embedded endpoint."""
        return s3_store

    def put_many(self, store: ObjectStore, keys: Iterable[str]) -> None:
        """Few keys through the store; many straight into moto's in-process backend.

        1,005 PUTs over HTTP take about seven seconds here; the paging tests are about LIST.
        """
        keys = list(keys)
        if len(keys) < _BULK:
            super().put_many(store, keys)
            return
        assert isinstance(store, S3ObjectStore)
        backend = get_backend("s3")[DEFAULT_ACCOUNT_ID]["aws"]
        for key in keys:
            backend.put_object(store.bucket, key, b"{}")


# Injected answers


class _Body:
    """The raw body of a fake HTTP response, as botocore reads it."""

    def __init__(self, content: bytes) -> None:
        self._content = content

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._content


def _error_response(request: AWSPreparedRequest, status: int, code: str) -> AWSResponse:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Error><Code>{code}</Code><Message>injected {code}</Message>"
        "<RequestId>injected</RequestId><HostId>injected</HostId></Error>"
    ).encode()
    headers = HTTPHeaders()
    headers["Content-Type"] = "application/xml"
    headers["Content-Length"] = str(len(body))
    return AWSResponse(request.url, status, headers, _Body(body))


class Answer:
    """A before-send hook that answers the first ``times`` requests itself with an S3 error.

    Later requests go to the server. ``requests`` counts every request the hook saw.
    """

    def __init__(self, status: int, code: str, *, times: int) -> None:
        self.status = status
        self.code = code
        self.times = times
        self.requests = 0

    def __call__(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        self.requests += 1
        if self.requests <= self.times:
            return _error_response(request, self.status, self.code)
        return None


def _hook(store: S3ObjectStore, operation: str, handler: Callable[..., Any]) -> None:
    """Register ``handler`` for ``operation``'s before-send event of the store's client.

    botocore-stubs types event handlers as returning None; a before-send handler may return
    the response to use instead of sending the request.
    """
    store.client.meta.events.register(
        f"before-send.s3.{operation}", cast("Callable[..., None]", handler)
    )


_adapter_buckets = itertools.count()


@pytest.fixture(scope="module")
def boto_session() -> boto3.Session:
    """One boto3 session for this module's clients: a client made from a session that has one
    already takes milliseconds; the first client of a new session, a sixth of a second."""
    return boto3.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto accepts any
        region_name="us-east-1",
    )


def _client(embedded_s3: EmbeddedS3, boto_session: boto3.Session) -> S3Client:
    """A client of the embedded endpoint that never retries: only the adapter does."""
    config = Config(
        s3={"addressing_style": "path"}, retries={"mode": "standard", "total_max_attempts": 1}
    )
    return boto_session.client("s3", endpoint_url=embedded_s3.endpoint_url, config=config)


@pytest.fixture
def bucket(embedded_s3: EmbeddedS3, boto_session: boto3.Session) -> str:
    """A fresh, empty bucket of the embedded endpoint."""
    name = f"adapter-{next(_adapter_buckets)}"
    _client(embedded_s3, boto_session).create_bucket(Bucket=name)
    return name


MakeStore = Callable[..., tuple[S3ObjectStore, list[float]]]


@pytest.fixture
def make_store(embedded_s3: EmbeddedS3, boto_session: boto3.Session, bucket: str) -> MakeStore:
    """Makes S3ObjectStores on ``bucket`` (options passed on), each with a client of its own
    that does not retry, and a list where its backoff pauses are recorded instead of slept."""

    def make(**options: Any) -> tuple[S3ObjectStore, list[float]]:
        slept: list[float] = []
        client = _client(embedded_s3, boto_session)
        return S3ObjectStore(client, bucket, sleep=slept.append, **options), slept

    return make


#: The request kind each operation counts as; in upper case, its name in errors.
_KINDS = {"PutObject": "put", "GetObject": "get", "ListObjectsV2": "list", "DeleteObject": "delete"}


def _call(store: S3ObjectStore, operation: str, key: str) -> Any:
    if operation == "PutObject":
        return store.put_if_absent(key, b"body")
    if operation == "GetObject":
        return store.get(key)
    if operation == "ListObjectsV2":
        return list(store.list_keys(key))
    store.delete(key)
    return None


#: The answers S3 asks a client to repeat after a pause.
RETRYABLE = [
    pytest.param("PutObject", 409, "ConditionalRequestConflict", id="put-409-conflict"),
    pytest.param("PutObject", 503, "SlowDown", id="put-503-slowdown"),
    pytest.param("GetObject", 503, "SlowDown", id="get-503-slowdown"),
    pytest.param("ListObjectsV2", 503, "SlowDown", id="list-503-slowdown"),
    pytest.param("DeleteObject", 503, "SlowDown", id="delete-503-slowdown"),
    pytest.param("PutObject", 503, "ServiceUnavailable", id="put-503-unavailable"),
]


class TestRetries:
    @pytest.mark.parametrize(("operation", "status", "code"), RETRYABLE)
    def test_retried_then_succeeds(
        self, make_store: MakeStore, operation: str, status: int, code: str
    ) -> None:
        """A 409 or 503 is sent again after a pause, and the request then succeeds."""
        store, slept = make_store(max_attempts=3)
        store.put_if_absent("r/existing", b"there")
        answer = Answer(status, code, times=2)
        _hook(store, operation, answer)
        key = "r/" if operation == "ListObjectsV2" else "r/key"
        before = store.requests
        result = _call(store, operation, key)
        assert answer.requests == 3
        assert len(slept) == 2
        sent = store.requests - before
        assert (getattr(sent, _KINDS[operation]), sent.total) == (3, 3)
        if operation == "PutObject":
            assert isinstance(result, str)
            assert store.get(key) is not None
        if operation == "ListObjectsV2":
            assert result == ["r/existing"]
        if operation == "DeleteObject":
            assert store.get("r/existing") is not None

    @pytest.mark.parametrize(("operation", "status", "code"), RETRYABLE)
    def test_gives_up_after_max_attempts(
        self, make_store: MakeStore, operation: str, status: int, code: str
    ) -> None:
        """After max_attempts answers of 409 or 503, ObjectStoreError names the operation and
        the key."""
        store, slept = make_store(max_attempts=4)
        answer = Answer(status, code, times=10)
        _hook(store, operation, answer)
        key = "r/" if operation == "ListObjectsV2" else "r/key"
        with pytest.raises(ObjectStoreError) as raised:
            _call(store, operation, key)
        error = raised.value
        assert (error.operation, error.key) == (_KINDS[operation].upper(), key)
        assert code in error.detail
        assert repr(key) in str(error)
        assert (answer.requests, len(slept), store.requests.total) == (4, 3, 4)
        if operation == "PutObject":
            answer.times = 0
            assert store.get(key) is None

    def test_backoff_within_bounds(self, make_store: MakeStore) -> None:
        """Each pause is drawn from zero up to the backoff's growing, capped bound."""
        backoff = Backoff(initial=0.01, maximum=0.03, multiplier=2.0)
        store, slept = make_store(max_attempts=6, backoff=backoff)
        _hook(store, "PutObject", Answer(503, "SlowDown", times=10))
        with pytest.raises(ObjectStoreError):
            store.put_if_absent("r/key", b"body")
        bounds = [min(0.03, 0.01 * 2**retry) for retry in range(5)]
        assert len(slept) == len(bounds)
        for pause, bound in zip(slept, bounds, strict=True):
            assert 0 <= pause <= bound

    def test_max_attempts_one_never_retries(self, make_store: MakeStore) -> None:
        """With max_attempts=1 a 503 is not sent again."""
        store, slept = make_store(max_attempts=1)
        answer = Answer(503, "SlowDown", times=1)
        _hook(store, "PutObject", answer)
        with pytest.raises(ObjectStoreError, match="SlowDown"):
            store.put_if_absent("r/key", b"body")
        assert (answer.requests, slept) == (1, [])

    @pytest.mark.parametrize(("status", "code"), [(403, "AccessDenied"), (400, "InvalidRequest")])
    def test_other_errors_not_retried(self, make_store: MakeStore, status: int, code: str) -> None:
        """Any other error answer raises ObjectStoreError at once, naming the key and the code."""
        store, slept = make_store(max_attempts=5)
        answer = Answer(status, code, times=10)
        _hook(store, "PutObject", answer)
        with pytest.raises(ObjectStoreError) as raised:
            store.put_if_absent("r/key", b"body")
        assert (raised.value.operation, raised.value.key) == ("PUT", "r/key")
        assert code in str(raised.value)
        assert (answer.requests, slept) == (1, [])

    def test_precondition_failed_not_retried(self, make_store: MakeStore) -> None:
        """A 412 is the answer, not a failure: ObjectAlreadyExists after one PUT, no pause."""
        store, slept = make_store(max_attempts=5)
        store.put_if_absent("r/key", b"first")
        with pytest.raises(ObjectAlreadyExists):
            store.put_if_absent("r/key", b"second")
        assert (store.requests.put, slept) == (2, [])

    def test_transport_error(self, make_store: MakeStore) -> None:
        """A connection error that outlives botocore's retries is an ObjectStoreError naming
        the operation and the key."""
        store, slept = make_store()

        def refuse(request: AWSPreparedRequest, **_: Any) -> None:
            raise EndpointConnectionError(endpoint_url=request.url)

        _hook(store, "GetObject", refuse)
        with pytest.raises(ObjectStoreError) as raised:
            store.get("r/key")
        assert (raised.value.operation, raised.value.key) == ("GET", "r/key")
        assert "Could not connect" in raised.value.detail
        assert slept == []


class TestPutArgs:
    def test_passed_to_every_put(self, make_store: MakeStore) -> None:
        """put_args (metadata, storage class) go with every PutObject."""
        store, _ = make_store(
            put_args={"Metadata": {"written-by": "s3es-tests"}, "StorageClass": "STANDARD_IA"}
        )
        for key in ("a/1", "a/2"):
            store.put_if_absent(key, b"{}")
            head = store.client.head_object(Bucket=store.bucket, Key=key)
            assert head["Metadata"] == {"written-by": "s3es-tests"}
            assert head["StorageClass"] == "STANDARD_IA"

    def test_put_is_conditional_json(self, make_store: MakeStore) -> None:
        """Every PutObject carries If-None-Match: * and is stored as application/json."""
        store, _ = make_store()
        seen: list[Any] = []

        def capture(request: AWSPreparedRequest, **_: Any) -> None:
            value: Any = request.headers.get("If-None-Match")
            seen.append(value.decode() if isinstance(value, bytes) else value)

        _hook(store, "PutObject", capture)
        store.put_if_absent("a/1", b"{}")
        assert seen == ["*"]
        head = store.client.head_object(Bucket=store.bucket, Key="a/1")
        assert head["ContentType"] == "application/json"


class TestMissingBucket:
    @pytest.fixture
    def missing(self, embedded_s3: EmbeddedS3, boto_session: boto3.Session) -> S3ObjectStore:
        """A store on a bucket that does not exist."""
        return S3ObjectStore(_client(embedded_s3, boto_session), "no-such-bucket-s3es")

    @pytest.mark.parametrize("operation", list(_KINDS))
    def test_error_names_operation_and_key(self, missing: S3ObjectStore, operation: str) -> None:
        """Every request on a missing bucket, a get too, raises ObjectStoreError naming the
        operation, the key and NoSuchBucket: a missing bucket is not a missing key."""
        key = "m/" if operation == "ListObjectsV2" else "m/key"
        name = _KINDS[operation].upper()
        with pytest.raises(ObjectStoreError) as raised:
            _call(missing, operation, key)
        assert (raised.value.operation, raised.value.key) == (name, key)
        assert str(raised.value).startswith(f"{name} {key!r} failed")
        assert "NoSuchBucket" in raised.value.detail


class TestConfiguration:
    @pytest.mark.parametrize("attempts", [0, -1])
    def test_max_attempts_at_least_one(self, make_store: MakeStore, attempts: int) -> None:
        """max_attempts below 1 is refused with a ValueError naming it."""
        with pytest.raises(ValueError, match="max_attempts must be at least 1"):
            make_store(max_attempts=attempts)
