"""``s3es reactor``: a reactor's shards and leases, its passes, and its parked events.

The shards, store and loop are :mod:`s3es._cli.consumers`'; here are what only a reactor has:
``parked`` lists the events whose reaction kept failing, ``retry EVENT_ID`` reacts to one
again (no longer parked once its commands went through), ``skip EVENT_ID`` marks one skipped
(kept for the record), after a confirmation.
"""

from __future__ import annotations

import argparse

from s3es._cli.consumers import (
    ParkedColumns,
    catch_up_each,
    check_settling,
    confirmed,
    consumer_arguments,
    has_run,
    lease_option,
    load_consumer,
    open_store,
    parked_count,
    parked_table,
    run_consumer,
    settling_arguments,
    shards_option,
    status_lines,
)
from s3es._cli.invocation import PROBLEM, Invocation, described, plural
from s3es._projections.consumer import shard_of
from s3es._projections.options import Shards
from s3es._projections.reactor import Parked, Reactor, ReactorRunner
from s3es._storage.keys import StreamName
from s3es._storage.metering import measure_requests
from s3es.errors import InvalidConfiguration, ObjectStoreError, ReadModelStoreError

#: Failures of S3 or of the store: not a reaction's, so ``retry`` does not report them as one.
_STORE_FAILURES = (ObjectStoreError, ReadModelStoreError)


def reactor_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action",
        choices=["status", "catch-up", "run", "parked", "retry", "skip"],
        help="status: generations, leases, shards, parked count; catch-up: one pass; run: "
        "passes until SIGTERM; parked: the parked events; retry/skip EVENT_ID: settle one",
    )
    parser.add_argument(
        "--reactor",
        required=True,
        metavar="module:Class",
        help="the Reactor: a class that takes no arguments, or a callable that takes none and "
        "returns the reactor (module:make_reactor)",
    )
    consumer_arguments(parser, kind="reactor")
    parser.add_argument(
        "--feed",
        action="store_true",
        help="passes read the change feed (the writers must write it) instead of scanning "
        "every stream; a shard with no feed cursor yet is scanned",
    )
    settling_arguments(parser, noun="events")


def run_reactor(invocation: Invocation) -> int:
    """``s3es reactor ACTION``."""
    arguments = invocation.arguments
    try:
        reactor: Reactor = load_consumer(arguments.reactor, "--reactor", [Reactor], "reactor")
    except ValueError as error:
        invocation.usage_error(str(error))
    check_settling(invocation, "reactor")
    shards, lease = shards_option(invocation), lease_option(invocation)
    with open_store(invocation) as store:

        def make(chosen: Shards) -> ReactorRunner:
            return ReactorRunner(
                invocation.event_store,
                reactor,
                store,
                shards=chosen,
                feed=arguments.feed,
                lease=lease,
            )

        action = arguments.action
        if action == "catch-up":
            return catch_up_each(invocation, make, shards, rebuild=False)
        if action == "run":
            return run_consumer(invocation, make(shards), "reactor")
        with measure_requests() as meter:
            runner = make(shards)
            if action == "status":
                status = _reactor_status(runner, type(reactor).__qualname__, lag=arguments.lag)
            elif action == "parked":
                status = parked_table(runner, runner.parked, _PARKED_EVENTS, every=arguments.all)
            else:
                status = _settle(invocation, runner, action, arguments.event_id)
        lines, failed = status
        invocation.print(*lines)
        invocation.requests(meter.counts)
        return PROBLEM if failed else 0


def _reactor_status(runner: ReactorRunner, class_name: str, *, lag: bool) -> tuple[list[str], bool]:
    title = f"reactor {runner.name} ({class_name}) in {runner.store!r}"
    lines = [
        f"{title}, {plural(runner.shards, 'shard')}",
        *status_lines(runner, type(runner.reactor).SOURCES, lag=lag),
        *parked_count(runner, noun="event", command="reactor"),
    ]
    return lines, False


def _parked_event(record: Parked) -> list[str]:
    return [
        record.event_id,
        record.stream,
        str(record.version),
        record.type,
        str(record.attempts),
        record.parked_at.isoformat(timespec="seconds"),
    ]


_PARKED_EVENTS = ParkedColumns(
    kind="reactor",
    noun="event",
    columns=("EVENT_ID", "STREAM", "VERSION", "TYPE", "ATTEMPTS", "PARKED_AT"),
    cells=_parked_event,
)


def _settle(
    invocation: Invocation, runner: ReactorRunner, action: str, event_id: str
) -> tuple[list[str], bool]:
    """Retry or skip parked event ``event_id``: the lines to print, and whether it failed."""
    record = (
        next((r for r in runner.parked() if r.event_id == event_id), None)
        if has_run(runner)
        else None
    )
    if record is None:
        raise InvalidConfiguration(f"reactor {runner.name}: no event {event_id!r} is parked")
    stream_type, _, stream_id = record.stream.partition("/")
    shard = shard_of(StreamName(stream_type, stream_id), runner.shards)
    generation = runner.store.generations(runner.name)
    current = generation.live or generation.building
    if current is None or runner.store.shard_state(current, shard, runner.shards) is None:
        invocation.usage_error(
            f"{record.stream} is in shard {shard} of --shards {runner.shards}, which has no "
            "state: give the --shards the reactor runs with"
        )
    what = f"event {event_id} ({record.type}, {record.stream} version {record.version})"
    if action == "skip":
        question = f"skip {what}: it will not be reacted to again (it is kept, marked skipped)?"
        if not invocation.arguments.yes and not confirmed(invocation, question):
            invocation.problem("not confirmed; nothing written")
            return [], True
        runner.skip(event_id)
        return [f"skipped {what}: it stays recorded, as skipped (see parked --all)"], False
    try:
        results = runner.retry(event_id)
    except (InvalidConfiguration, *_STORE_FAILURES):
        raise  # the event gone from its stream (the message says to skip it), or the store
    except Exception as error:  # noqa: BLE001 - the reaction's failure is what is reported
        invocation.problem(f"{what} failed again, and stays parked: {described(error)}")
        return [], True
    duplicates = sum(result.duplicate for result in results)
    line = (
        f"retried {what}: {plural(len(results), 'command')} sent ({duplicates:,} already "
        "stored); no longer parked"
    )
    return [line], False
