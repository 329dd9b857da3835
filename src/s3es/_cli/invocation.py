"""What every subcommand of ``s3es`` gets: its :class:`Invocation`, exit statuses, loaders.

Exit status: 0 done, 1 a problem (a corrupt chunk, a failed check, an error from S3 or the
AWS SDK), 2 a wrong command line (including an ``--aggregate`` that cannot be loaded), 130
interrupted. Every failure is one line on stderr, ``s3es SUBCOMMAND: ...``.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import ipaddress
import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, TextIO, TypeVar, cast

import attrs

from s3es._domain.aggregate import Aggregate
from s3es._eventstore.store import EventStore
from s3es._storage.keys import check_prefix
from s3es._storage.metering import RequestCounts
from s3es._storage.port import ObjectStore
from s3es.errors import InvalidStreamName, S3esError

# The AWS SDK and the consumers' modules are imported when a subcommand needs them, not for
# `s3es --help` (boto3 and botocore alone take longer to import than the rest of s3es).
if TYPE_CHECKING:
    from botocore.client import BaseClient

    from s3es._projections.documents import DocumentProjection
    from s3es._projections.projection import Projection
    from s3es._projections.reactor import Reactor

    #: The errors reported as one line and exit status 1: s3es's, ValueError (what a damaged
    #: chunk's content raises where s3es does not check it itself), and the AWS SDK's.
    PROBLEMS: tuple[type[Exception], ...]

#: Exit status when the command line or the aggregate named in it is wrong.
USAGE_ERROR = 2
#: Exit status when something went wrong: a corrupt chunk, a failed check, an error from S3.
PROBLEM = 1
#: Exit status after Ctrl-C (128 + SIGINT), as shells report it.
INTERRUPTED = 130
#: Exit status when the reader of stdout went away (128 + SIGPIPE), as in ``s3es list | head``.
BROKEN_PIPE = 141

#: How long the CLI waits for a TCP connection to the endpoint, in seconds.
CONNECT_TIMEOUT = 3

_T = TypeVar("_T")


def __getattr__(name: str) -> Any:
    """``PROBLEMS`` on first use: the AWS SDK's errors are among them, and importing it is slow.

    The errors reported as one line and exit status 1: s3es's, ValueError (what a damaged
    chunk's content raises where s3es does not check it itself), and the AWS SDK's.
    """
    if name == "PROBLEMS":
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - lazy

        problems = (S3esError, ValueError, BotoCoreError, ClientError)
        globals()[name] = problems
        return problems
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class UsageError(Exception):
    """The command line is wrong: ``prog`` (``s3es compact``) and what is wrong with it."""

    def __init__(self, prog: str, message: str) -> None:
        super().__init__(f"{prog}: error: {message} (see '{prog} --help')")


def _import(spec: str, option: str, what: str) -> tuple[str, Any]:
    """The module named in ``module:name``, and its attribute ``name`` (None if it has none).

    Raises ValueError, saying what is wrong, if ``spec`` is not ``module:name`` or the module
    does not import.
    """
    module_name, _, name = spec.partition(":")
    if not module_name or not name:
        raise ValueError(f"{option} must be module:{what}, not {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        raise ValueError(f"{option} {spec!r}: cannot import {module_name!r}: {error}") from error
    except Exception as error:
        # The module is the operator's code, not s3es's: name it and what it raised, in one
        # line; importing it (python -c "import MODULE") shows the traceback.
        raise ValueError(
            f"{option} {spec!r}: importing {module_name!r} raised "
            f"{type(error).__name__}: {one_line(error)}"
        ) from error
    return module_name, getattr(module, name, None)


def _load_class(
    spec: str, base: type[_T], option: str, *, also: tuple[type[Any], ...] = ()
) -> type[_T]:
    """The subclass of ``base`` (or of one of ``also``) named ``module:Class``.

    Raises ValueError saying what is wrong.
    """
    module_name, found = _import(spec, option, "Class")
    if not (isinstance(found, type) and issubclass(found, (base, *also))):
        # A wrong command line, reported as a usage error: ValueError, not TypeError.
        class_name = spec.partition(":")[2]
        nor = "".join(f", nor {kind.__name__}" for kind in also)
        raise ValueError(  # noqa: TRY004
            f"{option} {spec!r}: {module_name} has no {base.__name__} {class_name!r}{nor}"
        )
    return cast("type[_T]", found)


def load_aggregate(spec: str) -> type[Aggregate[Any, Any, Any]]:
    """The Aggregate subclass named ``module:Class``; ValueError saying what is wrong."""
    return _load_class(spec, Aggregate, "--aggregate")  # type: ignore[type-abstract]


def load_projection(spec: str) -> type[Projection[Any] | DocumentProjection[Any]]:
    """The Projection or DocumentProjection subclass named ``module:Class``.

    Raises ValueError saying what is wrong.
    """
    from s3es._projections.documents import DocumentProjection  # noqa: PLC0415 - lazy
    from s3es._projections.projection import Projection  # noqa: PLC0415 - lazy

    found: type[Any] = _load_class(
        spec,
        Projection,
        "--projection",
        also=(DocumentProjection,),
    )
    return found


def load_reactor(spec: str) -> type[Reactor]:
    """The Reactor subclass named ``module:Class``; ValueError saying what is wrong."""
    from s3es._projections.reactor import Reactor  # noqa: PLC0415 - lazy

    return _load_class(spec, Reactor, "--reactor")  # type: ignore[type-abstract]


def load_function(spec: str, option: str) -> Callable[..., Any]:
    """The function named ``module:function``; ValueError saying what is wrong."""
    module_name, found = _import(spec, option, "function")
    if not callable(found):
        # A wrong command line, reported as a usage error: ValueError, not TypeError.
        raise ValueError(  # noqa: TRY004
            f"{option} {spec!r}: {module_name} has no function {spec.partition(':')[2]!r}"
        )
    return found  # type: ignore[no-any-return]


class Invocation:
    """One run of a subcommand: its arguments, where it prints, and the bucket (on first use)."""

    def __init__(
        self,
        parser: argparse.ArgumentParser,
        arguments: argparse.Namespace,
        *,
        out: TextIO,
        err: TextIO,
        stdin: TextIO,
        store: ObjectStore | None,
    ) -> None:
        self.parser = parser
        self.arguments = arguments
        self.out = out
        self.err = err
        self.stdin = stdin
        self._store = store
        #: The endpoint of the S3 client, once made; whether it has answered a request yet.
        self.endpoint: str | None = None
        self.endpoint_answered = False

    @property
    def name(self) -> str:
        """``s3es SUBCOMMAND``, as it starts the lines of errors."""
        return self.parser.prog

    @functools.cached_property
    def objects(self) -> ObjectStore:
        """The store given to :func:`main`, or the S3 bucket the arguments name.

        The S3 client waits :data:`CONNECT_TIMEOUT` seconds for a connection, and does not
        retry a connection error until the endpoint has answered once: a wrong
        ``--endpoint-url`` fails at once, as :meth:`unreachable` tells :func:`main`. Raises
        UsageError if the bucket's name is one S3 refuses.
        """
        if self._store is not None:
            return self._store
        from botocore.config import Config  # noqa: PLC0415 - lazy: the AWS SDK is slow to import

        from s3es._storage.s3 import S3ObjectStore  # noqa: PLC0415 - lazy, as botocore

        arguments = self.arguments
        problem = bucket_name_problem(arguments.bucket)
        if problem:
            self.usage_error(f"--bucket {arguments.bucket!r} is not an S3 bucket name: {problem}")
        put_args = {}
        if arguments.sse_kms_key_id:
            put_args = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": arguments.sse_kms_key_id}
        store = S3ObjectStore.connect(
            arguments.bucket,
            endpoint_url=arguments.endpoint_url,
            region_name=arguments.region,
            client_config=Config(connect_timeout=CONNECT_TIMEOUT),
            put_args=put_args,
        )
        self._fail_fast(store.client)
        return store

    def _fail_fast(self, client: BaseClient) -> None:
        """Stop botocore retrying connection errors until the endpoint has answered once."""
        from botocore.exceptions import EndpointConnectionError  # noqa: PLC0415 - lazy

        self.endpoint = client.meta.endpoint_url

        def needs_retry(
            response: object = None, caught_exception: object = None, **_: object
        ) -> None:
            if response is not None:
                self.endpoint_answered = True
            elif (
                isinstance(caught_exception, EndpointConnectionError) and not self.endpoint_answered
            ):
                raise caught_exception

        # First, before botocore's own retry handler, which would wait and try again.
        client.meta.events.register_first("needs-retry.s3", needs_retry)

    def unreachable(self, error: BaseException) -> bool:
        """Whether ``error`` comes of an endpoint that never answered: no connection at all."""
        from botocore.exceptions import EndpointConnectionError  # noqa: PLC0415 - lazy

        return (
            self.endpoint is not None
            and not self.endpoint_answered
            and any(isinstance(cause, EndpointConnectionError) for cause in _causes(error))
        )

    @functools.cached_property
    def event_store(self) -> EventStore:
        """The event store under ``--prefix``."""
        return EventStore(self.objects, prefix=self.arguments.prefix)

    def print(self, *lines: str) -> None:
        """Print ``lines`` to the output."""
        for line in lines:
            print(line, file=self.out)

    def problem(self, message: str) -> None:
        """Print ``s3es SUBCOMMAND: message`` on stderr: one failure, one line."""
        print(f"{self.name}: {message}", file=self.err)

    def requests(self, counts: RequestCounts, *, to_err: bool = False) -> None:
        """The closing ``requests: ...`` line: on stderr when stdout carries data to pipe."""
        print(f"requests: {counts} (${counts.cost():.6f})", file=self.err if to_err else self.out)

    def usage_error(self, message: str) -> NoReturn:
        """Stop with exit status 2: ``s3es SUBCOMMAND: error: message`` on stderr."""
        raise UsageError(self.name, message)

    def where(self) -> str:
        """``prefix 'p' of bucket 'b'``, or ``the root of bucket 'b'``, for messages."""
        arguments = self.arguments
        bucket = f"bucket {arguments.bucket!r}"
        return (
            f"prefix {arguments.prefix!r} of {bucket}"
            if arguments.prefix
            else f"the root of {bucket}"
        )


@attrs.frozen
class Subcommand:
    """A subcommand of ``s3es``: its name, help, and where its arguments and handler are.

    The handler and the function adding the arguments are named, ``module:function``, and
    imported only for the subcommand that runs: ``s3es --help`` imports none of them.
    """

    name: str
    #: One line, in ``s3es --help``.
    help: str
    #: The subcommand's own ``--help`` text, line breaks kept.
    description: str
    #: ``module:function`` of the handler, taking the Invocation, returning the exit status.
    run: str
    #: ``module:function`` adding the subcommand's own arguments to its parser, if it has any.
    arguments: str | None = None
    #: Whether it takes the bucket arguments (--bucket, --prefix, --endpoint-url...).
    on_bucket: bool = True

    def handler(self) -> Callable[[Invocation], int]:
        """The handler, imported."""
        return cast("Callable[[Invocation], int]", _function(self.run))

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add the subcommand's own arguments to ``parser`` (importing their module)."""
        if self.arguments is not None:
            _function(self.arguments)(parser)


def _function(spec: str) -> Callable[..., Any]:
    """The function named ``module:function`` (s3es's own: an error here is a bug)."""
    module, _, name = spec.partition(":")
    found: Callable[..., Any] = getattr(importlib.import_module(module), name)
    return found


def _causes(error: BaseException) -> list[BaseException]:
    """``error`` and the exceptions it was raised from, outermost first."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def refused_bucket_name(error: BaseException) -> str | None:
    """S3's message if ``error`` comes of its answer InvalidBucketName; None otherwise."""
    from botocore.exceptions import ClientError  # noqa: PLC0415 - lazy

    for cause in _causes(error):
        if (
            isinstance(cause, ClientError)
            and cause.response.get("Error", {}).get("Code") == "InvalidBucketName"
        ):
            return str(cause.response["Error"].get("Message") or "InvalidBucketName")
    return None


_BUCKET_CHARACTERS = re.compile(r"[a-z0-9.-]+")
_RESERVED_PREFIXES = ("xn--", "sthree-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3")


def bucket_name_problem(bucket: str) -> str | None:
    """The rule of S3's general purpose bucket names that ``bucket`` breaks; None if none.

    Names of buckets made in us-east-1 before March 2018 may break them: s3es does not take
    those (nor does its bucket policy, see :mod:`s3es._ops.policies`).
    """
    rule: str | None = None
    if not 3 <= len(bucket) <= 63:  # noqa: PLR2004 - S3's bounds
        rule = f"3 to 63 characters, not {len(bucket)}"
    elif not _BUCKET_CHARACTERS.fullmatch(bucket):
        rule = "only lower-case letters, digits, dots and hyphens"
    elif not (bucket[0].isalnum() and bucket[-1].isalnum()):
        rule = "begins and ends with a letter or digit"
    elif ".." in bucket:
        rule = "no two dots in a row"
    elif _is_ip_address(bucket):
        rule = "not an IP address"
    elif bucket.startswith(_RESERVED_PREFIXES) or bucket.endswith(_RESERVED_SUFFIXES):
        reserved = ", ".join((*_RESERVED_PREFIXES, *(f"...{s}" for s in _RESERVED_SUFFIXES)))
        rule = f"no reserved prefix or suffix ({reserved})"
    return rule


def _is_ip_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def described(error: BaseException) -> str:
    """``error`` in one line: s3es's errors as they are, others after their type's name."""
    if isinstance(error, S3esError):
        return one_line(error)
    return f"{type(error).__name__}: {one_line(error)}"


def one_line(error: BaseException) -> str:
    """The message of ``error`` on one line (the AWS SDK's can have several)."""
    return " ".join(line.strip() for line in str(error).splitlines() if line.strip()) or repr(error)


def plural(count: int, noun: str) -> str:
    """``1 chunk``, ``2 chunks``, ``1,000 streams``."""
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def _prefix(value: str) -> str:
    """``value`` if an event store can live under it; argparse's error otherwise."""
    try:
        return check_prefix(value.removesuffix("/"))  # "p/", as the S3 console shows it
    except InvalidStreamName as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def from_environment(name: str) -> str | None:
    """The environment variable ``name``; None when it is unset or empty."""
    return os.environ.get(name) or None


def bucket_and_prefix(group: argparse._ActionsContainer) -> None:
    """Add ``--bucket`` and ``--prefix``, their defaults from $S3ES_BUCKET and $S3ES_PREFIX."""
    group.add_argument(
        "--bucket",
        default=from_environment("S3ES_BUCKET"),
        help="the bucket of the event store (default: $S3ES_BUCKET)",
    )
    group.add_argument(
        "--prefix",
        type=_prefix,
        default=from_environment("S3ES_PREFIX") or "",
        help="the event store's prefix (default: $S3ES_PREFIX, else none)",
    )
