"""``s3es projection``: a projection's read model and lease, a pass, a rebuild, a loop.

A :class:`~s3es._projections.projection.Projection` (one document, one lease) is handled here;
a :class:`~s3es._projections.documents.DocumentProjection` (shards, a read-model store) by
:func:`s3es._cli.consumers.run_document_projection`.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from s3es._cli.consumers import (
    consumer_arguments,
    lease_option,
    load_consumer,
    run_document_projection,
    run_until_stopped,
    settling_arguments,
)
from s3es._cli.invocation import Invocation
from s3es._cli.progress import ProgressBar
from s3es._projections.documents import DocumentProjection
from s3es._projections.lease import Lease
from s3es._projections.projection import Projection, ProjectionPass, ReadModel
from s3es._projections.projector import Projector
from s3es._storage.metering import measure_requests


def projection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action",
        choices=["status", "catch-up", "rebuild", "run", "parked", "retry", "skip"],
        help="status: the stored model (generations, shards) and leases; catch-up: one pass; "
        "rebuild: from nothing; run: passes until SIGTERM or Ctrl-C; parked: the documents "
        "parked (a DocumentProjection's); retry/skip EVENT_ID: settle one",
    )
    parser.add_argument(
        "--projection",
        required=True,
        metavar="module:Class",
        help="the Projection or DocumentProjection: a class that takes no arguments, or a "
        "callable that takes none and returns the projection (module:make_projection)",
    )
    consumer_arguments(parser, kind="document projection")
    parser.add_argument(
        "--feed",
        action="store_true",
        help="catch-up and run read the change feed (the writers must write it) instead of "
        "scanning every stream; a model (a shard) with no feed cursor yet is scanned",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="rebuild a Projection even while another projector holds the lease (it is fenced)",
    )
    settling_arguments(parser, noun="documents")


#: The options that only a DocumentProjection takes.
_DOCUMENT_OPTIONS = {"store": "--store", "shards": "--shards", "shard": "--shard", "lag": "--lag"}


def run_projection(invocation: Invocation) -> int:
    arguments = invocation.arguments
    try:
        projection: Projection[Any] | DocumentProjection[Any] = load_consumer(
            arguments.projection, "--projection", [Projection, DocumentProjection], "projection"
        )
    except ValueError as error:
        invocation.usage_error(str(error))
    if isinstance(projection, DocumentProjection):
        return run_document_projection(invocation, projection)
    if arguments.action in {"parked", "retry", "skip"}:
        invocation.usage_error(
            f"{arguments.action} is for a DocumentProjection; {arguments.projection} is a "
            "Projection (one model: an event it cannot apply fails its pass)"
        )
    for name, option in _DOCUMENT_OPTIONS.items():
        if getattr(arguments, name):
            invocation.usage_error(
                f"{option} is for a DocumentProjection; {arguments.projection} is a Projection"
            )
    projector = Projector(
        invocation.event_store, projection, feed=arguments.feed, lease=lease_option(invocation)
    )
    if arguments.action == "run":
        title = (
            f"projection {projector.name}: running as {projector.owner!r}, reading "
            f"{'the change feed' if arguments.feed else 'full scans'}, a pass every "
            f"{arguments.interval:g}s"
        )
        return run_until_stopped(invocation, projector, _busy_lines, title=title)
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


def _busy_lines(run: ProjectionPass[Any]) -> list[str]:
    if not run.events:
        return []
    scan = "a full scan" if run.full_scan else "the change feed"
    line = (
        f"{scan}: {run.events:,} events of {run.streams:,} streams applied, {run.commits} "
        f"commits; {run.requests}"
    )
    return [line]
