"""The ``s3es`` command: operations on the streams of a bucket.

Each subcommand is a :class:`Subcommand` in :data:`SUBCOMMANDS`: its help, a function adding
its own arguments, and a handler that gets an :class:`Invocation` and returns the exit status.
Adding a subcommand is adding an entry there.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import logging
import sys
import textwrap
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn, TextIO, TypeVar

import attrs

from s3es._base.logging import log_level
from s3es._cli.progress import ProgressBar
from s3es._domain.aggregate import Aggregate
from s3es._domain.repository import Repository
from s3es._eventstore.chunk import Chunk, EventRecord
from s3es._eventstore.store import EventStore
from s3es._ops.policies import policies
from s3es._ops.tiering import apply_tiering_rule, tiering_rule
from s3es._ops.verify import StoredChunk, VerifyProblem, chain, read_stored_chunks, verify_prefix
from s3es._projections.lease import Lease
from s3es._projections.projection import Projection, ReadModel
from s3es._projections.projector import Projector
from s3es._storage.keys import StreamName
from s3es._storage.metering import RequestCounts, measure_requests
from s3es._storage.port import ObjectStore
from s3es._storage.s3 import S3ObjectStore
from s3es._storage.selftest import self_test
from s3es.errors import S3esError, StreamDeleted
from s3es.ops import compact, delete

#: Exit status when the command line or the aggregate named in it is wrong.
USAGE_ERROR = 2

_T = TypeVar("_T")


def _load_class(spec: str, base: type[_T], option: str) -> type[_T]:
    """The subclass of ``base`` named ``module:Class``; ValueError saying what is wrong."""
    module_name, _, class_name = spec.partition(":")
    if not module_name or not class_name:
        raise ValueError(f"{option} must be module:Class, not {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"{option} {spec!r}: cannot import {module_name!r}: {error}") from error
    found = getattr(module, class_name, None)
    if not (isinstance(found, type) and issubclass(found, base)):
        # A wrong command line, reported as a usage error: ValueError, not TypeError.
        raise ValueError(  # noqa: TRY004
            f"{option} {spec!r}: {module_name} has no {base.__name__} {class_name!r}"
        )
    return found


def load_aggregate(spec: str) -> type[Aggregate[Any, Any, Any]]:
    """The Aggregate subclass named ``module:Class``; ValueError saying what is wrong."""
    return _load_class(spec, Aggregate, "--aggregate")  # type: ignore[type-abstract]


def load_projection(spec: str) -> type[Projection[Any]]:
    """The Projection subclass named ``module:Class``; ValueError saying what is wrong."""
    return _load_class(spec, Projection, "--projection")  # type: ignore[type-abstract]


class Invocation:
    """One run of a subcommand: its arguments, where it prints, and the bucket (on first use)."""

    def __init__(
        self,
        parser: argparse.ArgumentParser,
        arguments: argparse.Namespace,
        *,
        out: TextIO,
        err: TextIO,
        store: ObjectStore | None,
    ) -> None:
        self.parser = parser
        self.arguments = arguments
        self.out = out
        self.err = err
        self._store = store

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

    def requests(self, counts: RequestCounts, *, to_err: bool = False) -> None:
        """The closing ``requests: ...`` line: on stderr when stdout carries data to pipe."""
        print(f"requests: {counts} (${counts.cost():.6f})", file=self.err if to_err else self.out)

    def usage_error(self, message: str) -> NoReturn:
        """Exit with status 2 and ``message`` after the subcommand's usage."""
        self.parser.error(message)


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


def _bucket_arguments() -> argparse.ArgumentParser:
    bucket = argparse.ArgumentParser(add_help=False)
    group = bucket.add_argument_group("bucket")
    group.add_argument("--bucket", required=True, help="the bucket of the event store")
    group.add_argument("--prefix", default="", help="the event store's prefix (default: none)")
    group.add_argument("--endpoint-url", help="an S3-compatible endpoint (default: AWS)")
    group.add_argument("--region", help="the bucket's region (default: the AWS config's)")
    group.add_argument(
        "--sse-kms-key-id",
        metavar="KEY",
        help="encrypt the objects it writes with this KMS key (SSE-KMS; default: the "
        "bucket's default encryption)",
    )
    group.add_argument("--verbose", action="store_true", help="print s3es's info log lines")
    return bucket


def _stream_ids_and_aggregate(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stream_ids", nargs="+", metavar="STREAM_ID")
    parser.add_argument(
        "--aggregate", required=True, help="the aggregate of the streams, as module:Class"
    )


def _parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    bucket = _bucket_arguments()
    parser = argparse.ArgumentParser(
        prog="s3es",
        description="Operations on the event streams s3es keeps in an S3 bucket. "
        "Each subcommand prints the requests it sent; `s3es SUBCOMMAND --help` says more.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")
    parsers = {}
    for command in SUBCOMMANDS:
        sub = commands.add_parser(
            command.name,
            parents=[bucket] if command.on_bucket else [],
            help=command.help,
            description=textwrap.dedent(command.description).strip(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.arguments(sub)
        parsers[command.name] = sub
    return parser, parsers


def main(
    argv: Sequence[str] | None = None,
    *,
    store: ObjectStore | None = None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """Run the ``s3es`` command; return its exit status. ``store`` replaces the S3 bucket."""
    parser, parsers = _parser()
    arguments = parser.parse_args(argv)
    command = next(c for c in SUBCOMMANDS if c.name == arguments.command)
    invocation = Invocation(parsers[command.name], arguments, out=out, err=err, store=store)
    verbose = getattr(arguments, "verbose", False)
    with log_level(logging.INFO if verbose else logging.WARNING):
        try:
            return command.run(invocation)
        except S3esError as error:
            print(f"s3es {command.name}: {error}", file=err)
            return 1


# compact, delete ------------------------------------------------------------------------------


def _repository(invocation: Invocation) -> Repository[Any, Any, Any]:
    try:
        aggregate = load_aggregate(invocation.arguments.aggregate)
    except ValueError as error:
        invocation.usage_error(str(error))
    return Repository(invocation.event_store, aggregate)


def _for_each(stream_ids: Sequence[str], act: Callable[[str], str], out: TextIO) -> int:
    """Run ``act`` on each stream, printing its line or its error; then the requests sent."""
    failed = 0
    with measure_requests() as meter:
        for stream_id in stream_ids:
            try:
                print(act(stream_id), file=out)
            except S3esError as error:
                failed += 1
                print(f"{stream_id!r}: {error}", file=out)
    print(f"requests: {meter.counts} (${meter.counts.cost():.6f})", file=out)
    return 1 if failed else 0


def _compact(invocation: Invocation) -> int:
    repository = _repository(invocation)
    stream_ids = invocation.arguments.stream_ids
    return _for_each(stream_ids, lambda s: _compacted(repository, s), invocation.out)


def _compacted(repository: Repository[Any, Any, Any], stream_id: str) -> str:
    result = compact(repository, stream_id)
    if result.key is None:
        what = "nothing to merge" if result.version else "no such stream"
    else:
        what = f"merged {result.merged} chunks ({result.events} events) into {result.key}"
    return f"{result.stream}: {what}; {result.requests}"


def _delete(invocation: Invocation) -> int:
    repository = _repository(invocation)
    stream_ids = invocation.arguments.stream_ids
    return _for_each(stream_ids, lambda s: _deleted(repository, s), invocation.out)


def _deleted(repository: Repository[Any, Any, Any], stream_id: str) -> str:
    result = delete(repository, stream_id)
    what = (
        f"tombstone at version {result.version}, {result.deleted} chunks deleted"
        if result.version
        else "no such stream"
    )
    return f"{result.stream}: {what}; {result.requests}"


# tiering --------------------------------------------------------------------------------------


def _tiering_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--apply", action="store_true", help="apply the rule to the bucket")


def _tiering(invocation: Invocation) -> int:
    arguments = invocation.arguments
    if not arguments.apply:
        invocation.print(json.dumps(tiering_rule(arguments.prefix), indent=2))
        return 0
    objects = invocation.objects
    if not isinstance(objects, S3ObjectStore):
        invocation.usage_error("tiering --apply needs an S3 bucket")
    try:
        rules = apply_tiering_rule(objects.client, arguments.bucket, arguments.prefix)
    except S3esError as error:
        invocation.print(f"{arguments.bucket}: {error}")
        return 1
    invocation.print(
        f"{arguments.bucket}: {len(rules)} lifecycle rules, among them:",
        json.dumps(rules[-1], indent=2),
    )
    return 0


# list -----------------------------------------------------------------------------------------


def _list_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "stream_type", nargs="?", metavar="STREAM_TYPE", help="list the streams of this type"
    )
    parser.add_argument(
        "--versions",
        action="store_true",
        help="also each stream's latest version: 1 LIST + 1 GET more per stream",
    )


def _list(invocation: Invocation) -> int:
    event_store = invocation.event_store
    arguments = invocation.arguments
    failed = 0
    with measure_requests() as meter:
        if arguments.stream_type is None:
            for stream_type in event_store.stream_types():
                invocation.print(stream_type)
        else:
            for stream in event_store.streams(arguments.stream_type):
                if not arguments.versions:
                    invocation.print(stream.id)
                    continue
                try:
                    latest = event_store.latest(stream)
                except S3esError as error:
                    failed += 1
                    print(f"{stream}: {error}", file=invocation.err)
                    continue
                version = 0 if latest is None else latest.version
                deleted = " (deleted)" if latest is not None and latest.deleted else ""
                invocation.print(f"{stream.id}\t{version}{deleted}")
    invocation.requests(meter.counts, to_err=True)
    return 1 if failed else 0


# show -----------------------------------------------------------------------------------------


def _show_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stream_type", metavar="STREAM_TYPE")
    parser.add_argument("stream_id", metavar="STREAM_ID")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument(
        "--all-chunks",
        action="store_true",
        help="every chunk of the stream (re-snapshots, merged, erased, tombstone), not only "
        "those a full read follows: 1 GET per chunk",
    )


def _flags(chunk: Chunk) -> list[str]:
    flags = []
    if chunk.deleted:
        flags.append("tombstone")
    if chunk.erased:
        flags.append("erased")
    if chunk.version - chunk.base_version > 1:
        flags.append(f"merged {chunk.base_version + 1}-{chunk.version}")
    elif chunk.number > 0:
        flags.append("re-snapshot")
    return flags


def _chunk_row(item: StoredChunk, *, read: bool) -> dict[str, Any]:
    chunk = item.chunk
    flags = ([] if chunk is None else _flags(chunk)) + (["read"] if read else [])
    return {
        "key": item.key,
        "version": item.version,
        "chunk": item.number,
        "base_version": None if chunk is None else chunk.base_version,
        "events": None if chunk is None else len(chunk.events),
        "snapshot_schema": None
        if chunk is None or chunk.snapshot is None
        else chunk.snapshot.schema,
        "flags": flags,
        "problem": None if item.problem is None else item.problem.reason,
    }


def _event_row(chunk: Chunk, event: EventRecord) -> dict[str, Any]:
    return {
        "version": event.version or chunk.version,
        "type": event.type,
        "id": event.id,
        "schema": event.schema,
        "recorded_at": event.recorded_at.isoformat(),
        "data": event.data,
        "metadata": event.metadata,
    }


def _stored(event_store: EventStore, stream: StreamName, chunk: Chunk) -> StoredChunk:
    key = event_store.keys.chunk_key(stream, chunk.version, chunk.number)
    return StoredChunk(key, chunk.version, chunk.number, chunk)


@attrs.frozen
class _Shown:
    """What ``show`` read: the chunks listed, those a full read follows, the tombstone's version."""

    stored: list[StoredChunk]
    links: list[StoredChunk]
    deleted: int | None
    problems: list[VerifyProblem]


def _read_stream(event_store: EventStore, stream: StreamName, *, all_chunks: bool) -> _Shown:
    """Every chunk, read for ``--all-chunks``; else the chunks a full read follows."""
    if not all_chunks:
        try:
            chunks = list(event_store.chunks(stream))
        except StreamDeleted as gone:
            return _Shown([], [], gone.version, [])
        links = [_stored(event_store, stream, chunk) for chunk in chunks]
        return _Shown(list(reversed(links)), links, None, [])
    stored = read_stored_chunks(event_store, stream)
    problems = [item.problem for item in stored if item.problem is not None]
    latest = stored[0].chunk if stored else None
    if latest is not None and latest.deleted:
        return _Shown(stored, [], latest.version, problems)
    links, chain_problems = chain(stream, stored)
    return _Shown(stored, links, None, problems + chain_problems)


def _show(invocation: Invocation) -> int:
    arguments = invocation.arguments
    event_store = invocation.event_store
    stream = StreamName(arguments.stream_type, arguments.stream_id)
    with measure_requests() as meter:
        shown = _read_stream(event_store, stream, all_chunks=arguments.all_chunks)
    stored, links, deleted, problems = shown.stored, shown.links, shown.deleted, shown.problems
    in_chain = {item.key for item in links}
    chunks = [
        _chunk_row(item, read=arguments.all_chunks and item.key in in_chain) for item in stored
    ]
    events = [_event_row(i.chunk, e) for i in links if i.chunk is not None for e in i.chunk.events]
    if arguments.json:
        document = {
            "stream": str(stream),
            "prefix": event_store.keys.stream_prefix(stream),
            "deleted_at": deleted,
            "chunks": chunks,
            "events": events,
            "problems": [str(problem) for problem in problems],
            "requests": attrs.asdict(meter.counts),
        }
        invocation.print(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        _print_stream(
            invocation, stream, deleted=deleted, chunks=chunks, events=events, problems=problems
        )
        invocation.requests(meter.counts)
    return 1 if problems else 0


def _table(rows: list[list[str]]) -> list[str]:
    """``rows`` (the first is the header) as lines of left-aligned columns."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]


def _print_stream(
    invocation: Invocation,
    stream: StreamName,
    *,
    deleted: int | None,
    chunks: list[dict[str, Any]],
    events: list[dict[str, Any]],
    problems: list[VerifyProblem],
) -> None:
    prefix = invocation.event_store.keys.stream_prefix(stream)
    if not chunks and deleted is None:
        invocation.print(f"{stream}: no such stream (nothing under {prefix})")
        return
    state = f"deleted (tombstone at version {deleted})" if deleted is not None else "chunks"
    invocation.print(f"{stream}: {state}, under {prefix}")
    if chunks:
        header = ["KEY", "VERSION", "CHUNK", "BASE", "EVENTS", "SNAPSHOT", "FLAGS"]
        rows = [
            [
                row["key"].removeprefix(prefix),
                str(row["version"]),
                str(row["chunk"]),
                _text(row["base_version"]),
                _text(row["events"]),
                _text(row["snapshot_schema"], none="-"),
                ", ".join(row["flags"]) or ("unreadable" if row["problem"] else ""),
            ]
            for row in chunks
        ]
        invocation.print(*_table([header, *rows]))
    if events:
        header = ["VERSION", "TYPE", "ID", "SCHEMA", "RECORDED_AT", "DATA"]
        rows = [
            [
                str(e["version"]),
                e["type"],
                e["id"],
                str(e["schema"]),
                e["recorded_at"],
                json.dumps(e["data"], ensure_ascii=False, separators=(",", ":")),
            ]
            for e in events
        ]
        invocation.print("", *_table([header, *rows]))
    for problem in problems:
        invocation.print(f"problem: {problem}")


def _text(value: object, *, none: str = "?") -> str:
    return none if value is None else str(value)


# verify ---------------------------------------------------------------------------------------


def _verify_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "stream_type", nargs="?", metavar="STREAM_TYPE", help="verify only streams of this type"
    )
    parser.add_argument(
        "stream_ids", nargs="*", metavar="STREAM_ID", help="verify only these streams"
    )
    parser.add_argument(
        "--aggregate",
        action="append",
        default=[],
        metavar="module:Class",
        help="check the latest snapshot of its type's streams against a full replay; may be "
        "given once per stream type",
    )


def _verify(invocation: Invocation) -> int:
    arguments = invocation.arguments
    aggregates: dict[str, type[Aggregate[Any, Any, Any]]] = {}
    for spec in arguments.aggregate:
        try:
            aggregate = load_aggregate(spec)
        except ValueError as error:
            invocation.usage_error(str(error))
        aggregates[aggregate.STREAM_TYPE] = aggregate
    wanted = arguments.stream_type
    if wanted is not None and aggregates and wanted not in aggregates:
        invocation.usage_error(
            f"--aggregate gives stream types {sorted(aggregates)}, but STREAM_TYPE is {wanted!r}"
        )
    bar = ProgressBar("verify", out=invocation.err)
    try:
        report = verify_prefix(
            invocation.event_store,
            stream_types=None if wanted is None else [wanted],
            stream_ids=arguments.stream_ids,
            aggregates=aggregates,
            progress=bar,
        )
    finally:
        bar.close()
    invocation.print(*(f"problem: {problem}" for problem in report.problems), report.summary())
    invocation.requests(report.requests)
    return 0 if report.ok else 1


# self-test ------------------------------------------------------------------------------------


def _self_test(invocation: Invocation) -> int:
    arguments = invocation.arguments
    report = self_test(invocation.objects, arguments.prefix)
    invocation.print(f"self-test of bucket {arguments.bucket!r}, scratch key {report.key}:")
    invocation.print(*(f"  {check}" for check in report.checks))
    invocation.print(f"  deleted {', '.join(report.deleted)}")
    invocation.print(f"bucket {arguments.bucket!r} {report.summary()}")
    invocation.requests(report.requests)
    return 0 if report.ok else 1


# policy ---------------------------------------------------------------------------------------


def _policy_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bucket", required=True, help="the bucket of the event store")
    parser.add_argument("--prefix", default="", help="the event store's prefix (default: none)")
    parser.add_argument(
        "--operator-arn",
        action="append",
        default=[],
        metavar="ARN",
        help="a role allowed to delete and replace chunks; the bucket policy denies it to "
        "every other principal (may be repeated)",
    )
    parser.add_argument(
        "--kms-key-arn", metavar="ARN", help="the KMS key of SSE-KMS: the roles may use it"
    )
    parser.add_argument(
        "--only",
        choices=["bucket-policy", "application-role", "operator-role"],
        help="print only this policy (as put-bucket-policy or put-role-policy take it)",
    )


def _policy(invocation: Invocation) -> int:
    arguments = invocation.arguments
    try:
        documents = policies(
            arguments.bucket,
            arguments.prefix,
            operator_arns=arguments.operator_arn,
            kms_key_arn=arguments.kms_key_arn,
        )
    except ValueError as error:
        invocation.usage_error(str(error))
    chosen = documents[arguments.only] if arguments.only else documents
    invocation.print(json.dumps(chosen, indent=2))
    return 0


# projection -----------------------------------------------------------------------------------


def _projection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action",
        choices=["status", "catch-up", "rebuild"],
        help="status: the stored model and lease; catch-up: one pass; rebuild: from nothing",
    )
    parser.add_argument(
        "--projection", required=True, metavar="module:Class", help="the projection"
    )
    parser.add_argument(
        "--feed",
        action="store_true",
        help="catch-up reads the change feed (the writers must write it) instead of scanning "
        "every stream; a model with no feed cursor yet is scanned",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="rebuild even while another projector holds the lease (it is fenced)",
    )


def _projection(invocation: Invocation) -> int:
    arguments = invocation.arguments
    try:
        projection = load_projection(arguments.projection)
    except ValueError as error:
        invocation.usage_error(str(error))
    projector = Projector(invocation.event_store, projection, feed=arguments.feed)
    with measure_requests() as meter:
        if arguments.action == "status":
            stored = projector.read()
            lease = projector.read_lease()
            invocation.print(*_status_lines(projector.name, stored, lease))
        else:
            bar = ProgressBar(arguments.action, out=invocation.err)
            try:
                if arguments.action == "rebuild":
                    run = projector.rebuild(force=arguments.force, progress=bar)
                else:
                    # Asked for the feed, read the feed: a process's first pass would scan.
                    run = projector.catch_up(full_scan=not arguments.feed, progress=bar)
            finally:
                bar.close()
                projector.release(quietly=True)
            scan = "a full scan" if run.full_scan else "the change feed"
            invocation.print(
                f"{projector.name}: {arguments.action} by {scan}: {run.events:,} events of "
                f"{run.streams:,} streams applied, {run.commits} commits; "
                f"{len(run.read_model.checkpoints):,} streams in the model, epoch "
                f"{run.read_model.epoch}"
            )
    invocation.requests(meter.counts)
    return 0


def _status_lines(name: str, stored: ReadModel[Any], lease: Lease | None) -> list[str]:
    updated = stored.updated_at.isoformat(timespec="seconds") if stored.updated_at else "never"
    if lease is None:
        holder = "none"
    elif not lease.expires_at:
        holder = f"released by {lease.owner!r} (epoch {lease.epoch})"
    else:
        until = datetime.fromtimestamp(lease.expires_at, UTC).isoformat(timespec="seconds")
        holder = f"{lease.owner!r}, epoch {lease.epoch}, until {until}"
    return [
        (
            f"projection {name}: schema {stored.schema}, epoch {stored.epoch}, "
            f"{'complete' if stored.complete else 'NOT complete'}, updated {updated}"
        ),
        (
            f"  streams in the model: {len(stored.checkpoints):,}, "
            f"versions applied: {sum(stored.checkpoints.values()):,}"
        ),
        f"  lease: {holder}",
    ]


SUBCOMMANDS: tuple[Subcommand, ...] = (
    Subcommand(
        "list",
        "list the stream types under the prefix, or the streams of one type",
        """
        List the stream types under the prefix (one LIST per 1,000 types), or with
        STREAM_TYPE the ids of its streams, deleted ones included (one LIST per 1,000
        streams). With --versions, each id is followed by a tab and the stream's latest
        version, which costs 1 LIST + 1 GET more per stream. The ids go to stdout, one a
        line, for pipes; the requests line goes to stderr.
        """,
        _list,
        _list_arguments,
    ),
    Subcommand(
        "show",
        "show a stream's chunks and events, as a table or JSON",
        """
        Show the chunks of a stream (key, version, chunk number, base version, event count,
        snapshot schema, flags) and its events (version, type, id, schema, recorded_at,
        data), as stored: no aggregate class is needed. By default, the chunks a full read
        follows (1 LIST + 1 GET per chunk read); with --all-chunks, every chunk, including
        re-snapshots, merged and erased chunks, and the tombstone of a deleted stream; the
        ones a full read follows are flagged "read". Exit status 1 if a chunk cannot be read.
        """,
        _show,
        _show_arguments,
    ),
    Subcommand(
        "verify",
        "check streams: readable chunks, gapless versions, snapshots equal to a replay",
        """
        Verify every stream under the prefix, the streams of STREAM_TYPE, or the streams
        named: every key is a chunk key and every chunk decodes; the versions a full read
        follows have no gap; every version keeps its chunk 0 (its lock); re-snapshots and
        merged chunks hold the events of the versions they stand for. With --aggregate, each
        event of a stream of its type must decode and the latest snapshot, if written under
        its SNAPSHOT_SCHEMA, must equal the state a full replay gives. Prints one line per
        problem (naming the stream and the key), a summary, and the requests: one LIST per
        1,000 streams, then per stream one LIST per 1,000 chunks and one GET per chunk. A
        progress bar is drawn on stderr when it is a terminal. Writes nothing. Exit status 1
        if anything is wrong.
        """,
        _verify,
        _verify_arguments,
    ),
    Subcommand(
        "self-test",
        "check that the bucket honours If-None-Match and If-Match; s3es needs both",
        """
        Prove that the bucket honours the conditional writes s3es relies on, on a scratch
        key under PREFIX/_selftest/: a second PUT of a key with If-None-Match: * must be
        refused (412) and the first body kept; a PUT with If-Match and a wrong ETag must be
        refused, one with the right ETag accepted, one on a missing key refused. Deletes its
        keys afterwards. Prints each check and the requests (5 PUT + 3 GET + 1 DELETE on a
        bucket that passes). Exit status 1 if the bucket fails a check: s3es must not run on
        it, as concurrent appends would overwrite each other.
        """,
        _self_test,
    ),
    Subcommand(
        "policy",
        "print the bucket policy and the IAM policies that keep the event store safe",
        """
        Print, as JSON, the bucket policy that denies every PUT under the prefix without
        If-None-Match or If-Match (and plain HTTP), and the least-privilege IAM policies of
        an application role (list, read, append; no deletion) and of an operator role (plus
        deletion and the lifecycle rule of `s3es tiering`). Sends no request. See
        docs/security.md.
        """,
        _policy,
        _policy_arguments,
        on_bucket=False,
    ),
    Subcommand(
        "projection",
        "show a projection's read model and lease, bring it up to date, or rebuild it",
        """
        status: print the stored read model's schema, epoch, completeness and streams, and
        who holds its lease (2 GET). catch-up: take the lease, run one pass (a full scan: one
        LIST per stream; with --feed, the change feed: one LIST per stream type) and release
        the lease. rebuild: take the lease under a new epoch (with --force even from a live
        projector, which is then fenced), throw the model away and apply every event of
        every stream again, with a progress bar on stderr when it is a terminal. Exit status
        1 if another projector holds the lease or a chunk cannot be read. See
        docs/projections.md.
        """,
        _projection,
        _projection_arguments,
    ),
    Subcommand(
        "compact",
        "merge each stream's chunks into one (safe while others append; deletes nothing)",
        """
        Merge each named stream's chunks into one chunk holding every event and a fresh
        snapshot, so a full read is one GET. Safe to run while writers append, and to run
        again. Deletes nothing.
        """,
        _compact,
        _stream_ids_and_aggregate,
    ),
    Subcommand(
        "delete",
        "delete streams: a tombstone at the next version, then every chunk below it",
        """
        Delete each named stream: store a tombstone as its next version (from then on it
        can be neither read nor appended to), then delete every chunk below it. Safe to run
        while writers append, and to run again.
        """,
        _delete,
        _stream_ids_and_aggregate,
    ),
    Subcommand(
        "tiering",
        "print, or apply, the lifecycle rule moving large chunks to Intelligent-Tiering",
        """
        Print the S3 lifecycle rule that moves the event store's chunks of 128 KB or more to
        S3 Intelligent-Tiering; with --apply, put it into the bucket's lifecycle
        configuration (other rules are kept; safe to run again).
        """,
        _tiering,
        _tiering_arguments,
    ),
)
