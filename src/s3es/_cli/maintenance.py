"""``s3es compact``, ``delete``, ``erase``, ``repair``: maintenance of streams named or of a type.

Each writes to the bucket, so each asks first on a terminal (``--yes`` skips the question, and
is needed when stdin is not a terminal), and ``--dry-run`` prints each stream's version and
chunk count and writes nothing. The work itself is :mod:`s3es.ops`'s.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

from s3es._cli.invocation import (
    PROBLEM,
    PROBLEMS,
    Invocation,
    described,
    load_aggregate,
    load_function,
    plural,
)
from s3es._cli.progress import ProgressBar
from s3es._domain.repository import Repository
from s3es._storage.keys import StreamName
from s3es._storage.metering import RequestCounts, measure_requests
from s3es.ops import Repair, compact, delete, erase, repair

#: Per subcommand: what it does to each stream, said in the prompt and after a dry run.
_DOES = {
    "compact": "merge the chunks a full read follows into one (deletes nothing)",
    "delete": "store a tombstone as the next version, then delete every chunk below it",
    "erase": "rewrite the events through --redact and erase the chunks they were in",
    "repair": "store a fence at each version missing below an erasure's fences",
}


def _maintenance_arguments(
    *, every: bool = False, redact: bool = False
) -> Callable[[argparse.ArgumentParser], None]:
    def add(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "stream_ids",
            nargs="*" if every else "+",
            metavar="STREAM_ID",
            help="the streams, of the aggregate's STREAM_TYPE",
        )
        parser.add_argument(
            "--aggregate",
            required=True,
            metavar="module:Class",
            help="the aggregate of the streams",
        )
        if every:
            parser.add_argument(
                "--all",
                action="store_true",
                help="every stream of the aggregate's STREAM_TYPE (one LIST per 1,000 streams)",
            )
        if redact:
            parser.add_argument(
                "--redact",
                required=True,
                metavar="module:function",
                help="takes an event, returns it without the data to erase",
            )
        parser.add_argument(
            "-y",
            "--yes",
            action="store_true",
            help="do not ask for confirmation (needed when stdin is not a terminal)",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="print each stream's version and chunk count and write nothing "
            "(1 LIST per 1,000 chunks + 1 GET per stream)",
        )

    return add


def _maintain(
    invocation: Invocation,
    act: Callable[[Repository[Any, Any, Any], str], str],
    dry: Callable[[Repository[Any, Any, Any], str], str] | None = None,
) -> int:
    """compact, delete, erase or repair the streams chosen: after a confirmation, or a dry run.

    A dry run prints each stream's version and chunk count, or ``dry``'s line for each stream.
    """
    arguments = invocation.arguments
    verb = arguments.command
    repository = _repository(invocation)
    every = getattr(arguments, "all", False)
    if every and arguments.stream_ids:
        invocation.usage_error("give STREAM_IDs or --all, not both")
    if not every and not arguments.stream_ids:
        invocation.usage_error("give the STREAM_IDs, or --all for every stream of the type")
    asking = not (arguments.yes or arguments.dry_run)
    if asking and not invocation.stdin.isatty():
        invocation.usage_error(
            f"{verb} writes to the bucket: confirm with --yes (stdin is not a terminal to "
            "ask on), or see what it would do with --dry-run"
        )
    stream_type = repository.aggregate.STREAM_TYPE
    with measure_requests() as listing:
        stream_ids = (
            [stream.id for stream in invocation.event_store.streams(stream_type)]
            if every
            else list(arguments.stream_ids)
        )
    if not stream_ids:
        invocation.print(f"no stream of type {stream_type!r} under {invocation.where()}")
        invocation.requests(listing.counts)
        return 0
    if arguments.dry_run and dry is not None:
        code = _for_each(invocation, stream_ids, lambda s: dry(repository, s), listing.counts)
        invocation.print(f"dry run, nothing written: {verb} would {_DOES[verb]}")
        return code
    if arguments.dry_run:
        return _dry_run(invocation, stream_type, stream_ids, listing.counts)
    if asking and not _confirmed(invocation, stream_type, stream_ids):
        invocation.problem("not confirmed; nothing written")
        return PROBLEM
    return _for_each(invocation, stream_ids, lambda s: act(repository, s), listing.counts)


def _confirmed(invocation: Invocation, stream_type: str, stream_ids: list[str]) -> bool:
    """Ask on stderr, read the answer from stdin: only ``y`` or ``yes`` goes on."""
    shown = ", ".join(stream_ids[:3])
    if len(stream_ids) > 3:  # noqa: PLR2004 - how many ids the question names
        shown += f", ... ({len(stream_ids) - 3:,} more)"
    verb = invocation.arguments.command
    invocation.err.write(
        f"{verb} {plural(len(stream_ids), 'stream')} of type {stream_type!r} ({shown}) under "
        f"{invocation.where()}: {_DOES[verb]}? [y/N] "
    )
    invocation.err.flush()
    return invocation.stdin.readline().strip().lower() in {"y", "yes"}


def _dry_run(
    invocation: Invocation, stream_type: str, stream_ids: list[str], listing: RequestCounts
) -> int:
    """Print each stream's version and chunk count, and what the command would do: no write."""
    event_store = invocation.event_store
    failed = 0
    with measure_requests() as meter:
        for stream_id in stream_ids:
            try:
                stream = StreamName(stream_type, stream_id)
                keys = list(event_store.listing(stream))
                found = event_store.read(keys[0]) if keys else None
            except PROBLEMS as error:
                failed += 1
                invocation.problem(f"{stream_id!r}: {described(error)}")
                continue
            if not keys:
                invocation.print(f"{stream}: no such stream")
                continue
            deleted = found is not None and found[0].deleted
            state = "deleted at version" if deleted else "version"
            invocation.print(f"{stream}: {state} {keys[0].version}, {plural(len(keys), 'chunk')}")
    verb = invocation.arguments.command
    invocation.print(f"dry run, nothing written: {verb} would {_DOES[verb]}")
    invocation.requests(listing + meter.counts)
    return PROBLEM if failed else 0


def _repository(invocation: Invocation) -> Repository[Any, Any, Any]:
    try:
        aggregate = load_aggregate(invocation.arguments.aggregate)
    except ValueError as error:
        invocation.usage_error(str(error))
    return Repository(invocation.event_store, aggregate)


def _for_each(
    invocation: Invocation,
    stream_ids: Sequence[str],
    act: Callable[[str], str],
    listing: RequestCounts,
) -> int:
    """Run ``act`` on each stream, printing its line (its error on stderr), then the requests.

    On a terminal a progress bar counts the streams; elsewhere a line every 10 s of work.
    """
    failed = 0
    bar = ProgressBar(invocation.arguments.command, out=invocation.err)
    with measure_requests() as meter:
        for done, stream_id in enumerate(stream_ids, start=1):
            try:
                line = act(stream_id)
            except PROBLEMS as error:
                failed += 1
                bar.clear()
                invocation.problem(f"{stream_id!r}: {described(error)}")
            else:
                bar.clear()
                invocation.print(line)
            bar(done, len(stream_ids))
    bar.close()
    invocation.requests(listing + meter.counts)
    return PROBLEM if failed else 0


def _compacted(repository: Repository[Any, Any, Any], stream_id: str) -> str:
    result = compact(repository, stream_id)
    if result.key is None:
        what = "nothing to merge" if result.version else "no such stream"
    else:
        what = f"merged {result.merged} chunks ({result.events} events) into {result.key}"
    return f"{result.stream}: {what}; {result.requests}"


def _deleted(repository: Repository[Any, Any, Any], stream_id: str) -> str:
    result = delete(repository, stream_id)
    what = (
        f"tombstone at version {result.version}, {result.deleted} chunks deleted"
        if result.version
        else "no such stream"
    )
    return f"{result.stream}: {what}; {result.requests}"


def run_erase(invocation: Invocation) -> int:
    try:
        redact = load_function(invocation.arguments.redact, "--redact")
    except ValueError as error:
        invocation.usage_error(str(error))

    def erased(repository: Repository[Any, Any, Any], stream_id: str) -> str:
        result = erase(repository, stream_id, redact)
        if result.key is not None:
            what = f"redacted into {result.key}, {result.erased} chunks erased"
        elif result.version:
            what = "another writer took the merged chunk's key first: run it again"
        else:
            what = "no such stream"
        return f"{result.stream}: {what}; {result.requests}"

    return _maintain(invocation, erased)


def _repair_line(result: Repair, *, dry_run: bool) -> str:
    if not result.missing:
        what = "no version missing below an erasure's fence"
    elif dry_run:
        what = "versions missing below an erasure's fences: " + ", ".join(map(str, result.missing))
    else:
        taken = sorted(set(result.missing) - set(result.plugged))
        what = "stored a fence at version" + ("s " if len(result.plugged) > 1 else " ")
        what += ", ".join(map(str, result.plugged)) if result.plugged else "none"
        if taken:
            what += f" ({', '.join(map(str, taken))} taken by a writer first)"
    return f"{result.stream}: {what}; {result.requests}"


def run_repair(invocation: Invocation) -> int:
    """``s3es repair``: a fence at each version missing below an erasure's fences."""
    return _maintain(
        invocation,
        lambda repository, stream_id: _repair_line(repair(repository, stream_id), dry_run=False),
        lambda repository, stream_id: _repair_line(
            repair(repository, stream_id, dry_run=True), dry_run=True
        ),
    )


def run_compact(invocation: Invocation) -> int:
    """``s3es compact``: merge each stream's chunks into one."""
    return _maintain(invocation, _compacted)


def run_delete(invocation: Invocation) -> int:
    """``s3es delete``: a tombstone for each stream, then its chunks deleted."""
    return _maintain(invocation, _deleted)


#: The arguments of each: compact and repair can take every stream of a type; erase needs
#: --redact.
compact_arguments = _maintenance_arguments(every=True)
delete_arguments = _maintenance_arguments()
erase_arguments = _maintenance_arguments(redact=True)
repair_arguments = _maintenance_arguments(every=True)
