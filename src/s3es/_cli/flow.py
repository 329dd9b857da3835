"""``s3es flow``: the events of one flow, followed across the streams of some types.

A reactor's commands stamp ``correlation_id`` (the id of the flow's first event, or the
correlation id that event carried) and ``causation_id`` (the event that caused them) on the
events they store (see :mod:`s3es.reactors`). ``flow`` reads every stream of the types named
and lists, in recorded time order, the events of one correlation id, the first event included:
what happened, where, and what caused each step. It is a scan, one LIST per 1,000 streams of
each type and, per stream, one LIST and one GET per chunk read, fit for an operator's
question, not for a service's.
"""

from __future__ import annotations

import argparse
from datetime import datetime

import attrs

from s3es._cli.invocation import PROBLEM, PROBLEMS, Invocation, described, plural
from s3es._cli.progress import ProgressBar
from s3es._cli.streams import table
from s3es._eventstore.chunk import EventRecord
from s3es._projections.reactor import CAUSATION_ID, CORRELATION_ID
from s3es._storage.keys import StreamName
from s3es._storage.metering import measure_requests
from s3es.errors import StreamDeleted


def flow_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "correlation_id",
        metavar="CORRELATION_ID",
        help="the flow: the id of its first event, or the correlation id it was given",
    )
    parser.add_argument(
        "--type",
        dest="types",
        action="append",
        required=True,
        metavar="STREAM_TYPE",
        help="read the streams of this type; repeatable (each type costs its streams' reads)",
    )


@attrs.frozen
class _Step:
    """One event of the flow, and where it is."""

    recorded_at: datetime
    stream: str
    version: int
    event: EventRecord


def run_flow(invocation: Invocation) -> int:
    """``s3es flow CORRELATION_ID --type TYPE...``."""
    arguments = invocation.arguments
    event_store = invocation.event_store
    wanted: str = arguments.correlation_id
    types: list[str] = list(dict.fromkeys(arguments.types))
    steps: list[_Step] = []
    failed = deleted = 0
    with measure_requests() as meter:
        streams = [stream for t in types for stream in event_store.streams(t)]
        bar = ProgressBar("flow", out=invocation.err)
        try:
            for done, stream in enumerate(streams, start=1):
                try:
                    steps += _steps(invocation, stream, wanted)
                except StreamDeleted:
                    deleted += 1
                except PROBLEMS as error:
                    failed += 1
                    bar.clear()
                    invocation.problem(f"{stream}: {described(error)}")
                bar(done, len(streams))
        finally:
            bar.close()
    steps.sort(key=lambda step: (step.recorded_at, step.stream, step.version))
    unread = f", {plural(deleted, 'deleted stream')} not read" if deleted else ""
    read = f"{plural(len(streams), 'stream')} of {', '.join(types)} read{unread}"
    holding = len({step.stream for step in steps})
    found = f" in {plural(holding, 'stream')}" if steps else ""
    invocation.print(f"flow {wanted!r}: {plural(len(steps), 'event')}{found} ({read})")
    if steps:
        header = ["RECORDED_AT", "STREAM", "VERSION", "TYPE", "ID", "CAUSATION_ID"]
        rows = [
            [
                step.recorded_at.isoformat(),
                step.stream,
                str(step.version),
                step.event.type,
                step.event.id,
                str(step.event.metadata.get(CAUSATION_ID, "-")),
            ]
            for step in steps
        ]
        invocation.print(*table([header, *rows]))
    invocation.requests(meter.counts)
    return PROBLEM if failed else 0


def _steps(invocation: Invocation, stream: StreamName, wanted: str) -> list[_Step]:
    """The events of ``stream`` in flow ``wanted``: carrying it, or the one it is named after."""
    return [
        _Step(event.recorded_at, str(stream), event.version or chunk.version, event)
        for chunk in invocation.event_store.chunks(stream)
        for event in chunk.events
        if event.id == wanted or event.metadata.get(CORRELATION_ID) == wanted
    ]
