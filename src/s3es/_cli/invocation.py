"""What every subcommand of ``s3es`` gets: its :class:`Invocation`, exit statuses, loaders.

Exit status: 0 done, 1 a problem (a corrupt chunk, a failed check, an error from S3 or the
AWS SDK), 2 a wrong command line (including an ``--aggregate`` that cannot be loaded), 130
interrupted. Every failure is one line on stderr, ``s3es SUBCOMMAND: ...``.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import os
from collections.abc import Callable
from typing import Any, NoReturn, TextIO, TypeVar, cast

import attrs
from botocore.exceptions import BotoCoreError, ClientError

from s3es._domain.aggregate import Aggregate
from s3es._eventstore.store import EventStore
from s3es._projections.documents import DocumentProjection
from s3es._projections.projection import Projection
from s3es._projections.reactor import Reactor
from s3es._storage.keys import check_prefix
from s3es._storage.metering import RequestCounts
from s3es._storage.port import ObjectStore
from s3es._storage.s3 import S3ObjectStore
from s3es.errors import InvalidStreamName, S3esError

#: Exit status when the command line or the aggregate named in it is wrong.
USAGE_ERROR = 2
#: Exit status when something went wrong: a corrupt chunk, a failed check, an error from S3.
PROBLEM = 1
#: Exit status after Ctrl-C (128 + SIGINT), as shells report it.
INTERRUPTED = 130
#: Exit status when the reader of stdout went away (128 + SIGPIPE), as in ``s3es list | head``.
BROKEN_PIPE = 141

#: The errors reported as one line and exit status 1: s3es's, ValueError (what a damaged
#: chunk's content raises where s3es does not check it itself), and the AWS SDK's.
PROBLEMS: tuple[type[Exception], ...] = (S3esError, ValueError, BotoCoreError, ClientError)

_T = TypeVar("_T")


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
    found: type[Any] = _load_class(
        spec,
        Projection,
        "--projection",
        also=(DocumentProjection,),
    )
    return found


def load_reactor(spec: str) -> type[Reactor]:
    """The Reactor subclass named ``module:Class``; ValueError saying what is wrong."""
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

    @property
    def name(self) -> str:
        """``s3es SUBCOMMAND``, as it starts the lines of errors."""
        return self.parser.prog

    @functools.cached_property
    def objects(self) -> ObjectStore:
        """The store given to :func:`main`, or the S3 bucket the arguments name."""
        if self._store is not None:
            return self._store
        arguments = self.arguments
        put_args = {}
        if arguments.sse_kms_key_id:
            put_args = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": arguments.sse_kms_key_id}
        return S3ObjectStore.connect(
            arguments.bucket,
            endpoint_url=arguments.endpoint_url,
            region_name=arguments.region,
            put_args=put_args,
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
    """A subcommand of ``s3es``: its name, help, arguments and handler."""

    name: str
    #: One line, in ``s3es --help``.
    help: str
    #: The subcommand's own ``--help`` text, line breaks kept.
    description: str
    run: Callable[[Invocation], int]
    arguments: Callable[[argparse.ArgumentParser], None] = lambda _: None
    #: Whether it takes the bucket arguments (--bucket, --prefix, --endpoint-url...).
    on_bucket: bool = True


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
