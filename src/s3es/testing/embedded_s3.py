"""An S3 endpoint on 127.0.0.1 in this process (moto's server), for tests and demos.

moto checks a PUT's condition and stores the object in two steps with no lock between them, so
two concurrent ``If-None-Match: *`` PUTs of one key can both succeed; S3's conditional writes
are atomic. While an EmbeddedS3 runs, moto's PUT, DELETE and LIST handlers are serialised by
one lock, which makes its conditional writes atomic as S3's are, and keeps a LIST from
meeting a key half-deleted. GETs stay concurrent. A PUT (or COPY) to a key longer than S3's
1,024 bytes of UTF-8 is refused with S3's KeyTooLongError, which moto alone would store.

moto keeps its buckets in process-wide memory: servers in one process share them. Needs
``moto[s3]`` and Flask (the ``testing`` extra of s3es).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import boto3
from botocore.config import Config

from s3es._storage.s3 import S3ObjectStore

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

try:
    from moto.s3.exceptions import S3ClientError
    from moto.s3.responses import S3Response
    from moto.server import ThreadedMotoServer
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "s3es.testing.embedded_s3 needs moto's server, in s3es's testing extra: "
        "pip install -e '.[testing]' in the clone of s3es (see its README)"
    ) from error

REGION = "us-east-1"


def _session() -> boto3.Session:
    """A session with the credentials the embedded endpoint accepts (any would do)."""
    return boto3.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto accepts any
        region_name=REGION,
    )


_write_lock = threading.RLock()
_patch_lock = threading.Lock()
_patch_users = 0
_originals: dict[str, Callable[..., Any]] = {}
#: moto's handlers that run one at a time: the writes, whose condition check and store are two
#: steps, and the listings, which iterate a bucket's keys while a DELETE may remove one (moto
#: then raises KeyError inside the LIST and answers 500; found by make soak). GETs stay concurrent.
_SERIALISED_HANDLERS = (
    "put_object",
    "copy_object",
    "delete_object",
    "list_objects",
    "list_objects_v2",
)


def _serialised(handler: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(handler)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _write_lock:
            return handler(*args, **kwargs)

    return locked


#: S3's limit on the length of an object key, in bytes of UTF-8. moto does not enforce it.
MAX_KEY_BYTES = 1024
#: moto's handlers that write to a key: refused, as S3 refuses them, for a key past the limit.
_KEY_WRITING_HANDLERS = ("put_object", "copy_object")


def _refusing_long_keys(handler: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(handler)
    def checked(response: S3Response, *args: Any, **kwargs: Any) -> Any:
        if len(response.parse_key_name().encode()) > MAX_KEY_BYTES:
            raise S3ClientError("KeyTooLongError", "Your key is too long")
        return handler(response, *args, **kwargs)

    return checked


def _serialise_moto_writes() -> None:
    global _patch_users  # noqa: PLW0603 - one patch for the whole process, counted
    with _patch_lock:
        if _patch_users == 0:
            for name in _SERIALISED_HANDLERS:
                _originals[name] = getattr(S3Response, name)
                patched = _serialised(_originals[name])
                if name in _KEY_WRITING_HANDLERS:
                    patched = _refusing_long_keys(patched)
                setattr(S3Response, name, patched)
        _patch_users += 1


def _restore_moto_writes() -> None:
    global _patch_users  # noqa: PLW0603
    with _patch_lock:
        _patch_users -= 1
        if _patch_users == 0:
            for name, original in _originals.items():
                setattr(S3Response, name, original)
            _originals.clear()


class EmbeddedS3:
    """moto's S3 server on 127.0.0.1 (a free port), with atomic conditional writes.

    Use it as a context manager::

        with EmbeddedS3() as s3:
            s3.create_bucket("events")
            store = s3.object_store("events")

    Args:
        host: The address to listen on.
        port: The port to listen on; 0: a free one.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
        self._endpoint_url: str | None = None
        # One session: making a boto3 session costs about 0.16 s. Sessions are not thread-safe.
        self._session = _session()
        self._session_lock = threading.Lock()

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:PORT`` of the running server.

        Raises:
            RuntimeError: The server is not running.
        """
        if self._endpoint_url is None:
            raise RuntimeError("EmbeddedS3 is not running: call start() or use it in a with block")
        return self._endpoint_url

    def start(self) -> str:
        """Start the server (nothing if it runs already).

        Returns:
            Its endpoint URL.
        """
        if self._endpoint_url is not None:
            return self._endpoint_url
        # werkzeug logs every request at INFO: thousands of lines in a test run.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        _serialise_moto_writes()
        try:
            self._server.start()
        except BaseException:
            _restore_moto_writes()
            raise
        host, port = self._server.get_host_and_port()
        self._endpoint_url = f"http://{host}:{port}"
        return self._endpoint_url

    def stop(self) -> None:
        """Stop the server and restore moto's own handlers."""
        if self._endpoint_url is None:
            return
        self._server.stop()
        self._endpoint_url = None
        _restore_moto_writes()

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

    def client(self, config: Config | None = None) -> S3Client:
        """A boto3 S3 client for this endpoint (path-style, standard retries).

        Args:
            config: botocore options merged over those; None: those alone.

        Returns:
            A new client.

        Raises:
            RuntimeError: The server is not running.
        """
        base = Config(s3={"addressing_style": "path"}, retries={"mode": "standard"})
        with self._session_lock:
            return self._session.client(
                "s3",
                endpoint_url=self.endpoint_url,
                config=base.merge(config) if config is not None else base,
            )

    def create_bucket(self, bucket: str) -> None:
        """Create ``bucket`` on this endpoint.

        Args:
            bucket: The bucket's name.

        Raises:
            RuntimeError: The server is not running.
            botocore.exceptions.ClientError: The server refused (the bucket exists, say).
        """
        self.client().create_bucket(Bucket=bucket)

    def object_store(
        self, bucket: str, *, endpoint_url: str | None = None, **options: Any
    ) -> S3ObjectStore:
        """An S3ObjectStore on ``bucket`` of this endpoint, with a client of its own.

        Args:
            bucket: The bucket (create it first).
            endpoint_url: Reaches this endpoint through something in front of it (a
                :class:`~s3es.testing.FaultProxy`), with the credentials it accepts; None: this
                endpoint.
            **options: Passed to :meth:`S3ObjectStore.connect <s3es.S3ObjectStore.connect>`.

        Returns:
            The object store.

        Raises:
            RuntimeError: The server is not running (and no ``endpoint_url`` was given).
        """
        with self._session_lock:
            return S3ObjectStore.connect(
                bucket,
                endpoint_url=endpoint_url or self.endpoint_url,
                session=self._session,
                **options,
            )


def main(argv: list[str] | None = None) -> None:
    """Serve an EmbeddedS3 until interrupted: an endpoint that outlives one program.

    ``python -m s3es.testing.embedded_s3 --port 5077`` prints ``http://127.0.0.1:5077`` once
    it listens, then serves until Ctrl-C or SIGTERM. Unlike a plain ``moto_server``, its
    conditional writes are atomic (see the module's docstring), so ``s3es self-test`` approves
    it and racing writers behave as on S3.
    """
    import argparse  # noqa: PLC0415 - only when run as a program
    import signal  # noqa: PLC0415

    parser = argparse.ArgumentParser(
        prog="python -m s3es.testing.embedded_s3",
        description="An S3 endpoint for local runs: moto, with atomic conditional writes.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=5077, help="port (0: a free one)")
    parser.add_argument("--bucket", action="append", default=[], help="create this bucket")
    arguments = parser.parse_args(argv)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    with EmbeddedS3(host=arguments.host, port=arguments.port) as server:
        for bucket in arguments.bucket:
            server.create_bucket(bucket)
        print(server.endpoint_url, flush=True)  # noqa: T201 - the program's output
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: stop as SIGTERM does
            stopped.wait()


if __name__ == "__main__":
    main()
