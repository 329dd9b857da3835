"""``s3es list``, ``show`` and ``verify``: what is in the bucket, read and checked, not changed."""

from __future__ import annotations

import argparse
import json
from typing import Any

import attrs

from s3es._cli.invocation import PROBLEM, PROBLEMS, Invocation, described, load_aggregate
from s3es._cli.progress import ProgressBar
from s3es._domain.aggregate import Aggregate
from s3es._eventstore.chunk import Chunk, EventRecord
from s3es._eventstore.store import EventStore
from s3es._ops.verify import StoredChunk, VerifyProblem, chain, read_stored_chunks, verify_prefix
from s3es._projections.reactor import CAUSATION_ID, CORRELATION_ID
from s3es._storage.keys import StreamName
from s3es._storage.metering import measure_requests
from s3es.errors import CorruptChunk, InvalidStreamName, StreamDeleted


def list_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "stream_type", nargs="?", metavar="STREAM_TYPE", help="list the streams of this type"
    )
    parser.add_argument(
        "--versions",
        action="store_true",
        help="also each stream's latest version: 1 LIST + 1 GET more per stream",
    )


def run_list(invocation: Invocation) -> int:
    """``s3es list``: the stream types, or the streams of one type."""
    event_store = invocation.event_store
    arguments = invocation.arguments
    failed = 0
    with measure_requests() as meter:
        if arguments.stream_type is None:
            for folder in event_store.stream_types():
                if _holds_streams(event_store, folder):
                    invocation.print(folder)
                else:
                    inner = f"{arguments.prefix}/{folder}" if arguments.prefix else folder
                    invocation.problem(
                        f"{folder!r} is not a stream type (its first folder holds no chunk): "
                        f"an event store under --prefix {inner}?"
                    )
        else:
            for stream in event_store.streams(arguments.stream_type):
                if not arguments.versions:
                    invocation.print(stream.id)
                    continue
                try:
                    latest = event_store.latest(stream)
                except PROBLEMS as error:
                    failed += 1
                    invocation.problem(f"{stream}: {described(error)}")
                    continue
                version = 0 if latest is None else latest.version
                deleted = " (deleted)" if latest is not None and latest.deleted else ""
                invocation.print(f"{stream.id}\t{version}{deleted}")
    invocation.requests(meter.counts, to_err=True)
    return PROBLEM if failed else 0


def _holds_streams(event_store: EventStore, stream_type: str) -> bool:
    """Whether the folder ``stream_type`` holds streams: its first folder holds a chunk key.

    An event store under a longer prefix (``p/`` beside ``p/order/o-1/...``) has a folder
    here too, whose folders (``p/order/``) hold folders, not chunks. Two LISTs of one page.
    """
    type_prefix = event_store.keys.type_prefix(stream_type)
    first = next(iter(event_store.objects.list_prefixes(type_prefix)), None)
    if first is None:
        return False
    try:
        stream = StreamName(stream_type, first[len(type_prefix) : -1])
    except InvalidStreamName:
        return False
    key = next(iter(event_store.objects.list_keys(first, limit=1)), None)
    if key is None:
        return False
    try:
        event_store.keys.parse(stream, key)
    except CorruptChunk:
        return False
    return True


# show -----------------------------------------------------------------------------------------


def show_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stream_type", metavar="STREAM_TYPE")
    parser.add_argument("stream_id", metavar="STREAM_ID")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument(
        "--all-chunks",
        action="store_true",
        help="every chunk of the stream (re-snapshots, merged, erased, tombstone), not only "
        "those a full read follows: 1 GET per chunk",
    )


def _flags(chunk: Chunk, deleted_at: int | None) -> list[str]:
    flags = []
    if chunk.deleted:
        # Below a deleted stream's tombstone, a tombstone is a version's fence.
        flags.append(
            "fence" if deleted_at is not None and chunk.version < deleted_at else "tombstone"
        )
    if chunk.erased:
        flags.append("erased")
    if chunk.rebased:
        # An erasure's fence: a writer catching up through it takes its state (or replays).
        flags.append("erasure fence" if chunk.snapshot is not None else "erasure fence, no state")
    if chunk.version - chunk.base_version > 1:
        flags.append(f"merged {chunk.base_version + 1}-{chunk.version}")
    elif chunk.number > 0:
        flags.append("re-snapshot")
    return flags


def _chunk_row(item: StoredChunk, *, read: bool, deleted_at: int | None) -> dict[str, Any]:
    chunk = item.chunk
    flags = ([] if chunk is None else _flags(chunk, deleted_at)) + (["read"] if read else [])
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


def run_show(invocation: Invocation) -> int:
    arguments = invocation.arguments
    event_store = invocation.event_store
    stream = StreamName(arguments.stream_type, arguments.stream_id)
    with measure_requests() as meter:
        shown = _read_stream(event_store, stream, all_chunks=arguments.all_chunks)
    stored, links, deleted, problems = shown.stored, shown.links, shown.deleted, shown.problems
    if not stored and deleted is None:
        prefix = event_store.keys.stream_prefix(stream)
        invocation.problem(f"{stream}: no such stream (nothing under {prefix})")
        return PROBLEM
    in_chain = {item.key for item in links}
    chunks = [
        _chunk_row(item, read=arguments.all_chunks and item.key in in_chain, deleted_at=deleted)
        for item in stored
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
    return PROBLEM if problems else 0


def table(rows: list[list[str]]) -> list[str]:
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
        invocation.print(*table([header, *rows]))
    if events:
        invocation.print("", *table(_event_rows(events)))
    for problem in problems:
        invocation.print(f"problem: {problem}")


#: The metadata a reactor's commands stamp on the events they cause (s3es.reactors), shown in
#: columns of their own: ``s3es flow`` follows them across streams.
FLOW_KEYS = (CORRELATION_ID, CAUSATION_ID)


def _event_rows(events: list[dict[str, Any]]) -> list[list[str]]:
    """The events table, its header first.

    CORRELATION_ID and CAUSATION_ID columns if an event has either (a reactor's), a METADATA
    column (compact JSON) if an event has other metadata.
    """
    flow = any(key in e["metadata"] for e in events for key in FLOW_KEYS)
    other = [{k: v for k, v in e["metadata"].items() if k not in FLOW_KEYS} for e in events]
    header = ["VERSION", "TYPE", "ID", "SCHEMA", "RECORDED_AT"]
    header += [key.upper() for key in FLOW_KEYS] if flow else []
    header += ["METADATA"] if any(other) else []
    rows = [header]
    for event, rest in zip(events, other, strict=True):
        row = [
            str(event["version"]),
            event["type"],
            event["id"],
            str(event["schema"]),
            event["recorded_at"],
        ]
        if flow:
            row += [str(event["metadata"].get(key, "-")) for key in FLOW_KEYS]
        if any(other):
            row.append(_compact(rest) if rest else "-")
        rows.append([*row, _compact(event["data"])])
    header.append("DATA")
    return rows


def _compact(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _text(value: object, *, none: str = "?") -> str:
    return none if value is None else str(value)


# verify ---------------------------------------------------------------------------------------


def verify_arguments(parser: argparse.ArgumentParser) -> None:
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


def run_verify(invocation: Invocation) -> int:
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
