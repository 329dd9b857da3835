"""The ``s3es`` command: operations on the streams of a bucket.

Each subcommand is a :class:`~s3es._cli.invocation.Subcommand` in :data:`SUBCOMMANDS`: its
help, and the names of a function adding its own arguments and of a handler (in
:mod:`s3es._cli.streams`, :mod:`~s3es._cli.maintenance`, :mod:`~s3es._cli.bucket`,
:mod:`~s3es._cli.projection`, :mod:`~s3es._cli.reactor` or :mod:`~s3es._cli.flow`) that gets
an :class:`~s3es._cli.invocation.Invocation` and returns the exit status. Adding a subcommand
is adding an entry there. Only the module of the subcommand that runs is imported, and the AWS
SDK only once a bucket is used: ``s3es --help`` imports neither. This module parses the
command line, sets up logging and turns every failure into one line and an exit status (see
:func:`main`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn, TextIO
from urllib.parse import urlsplit

from s3es import __version__
from s3es._base.logging import log_to_stderr
from s3es._cli import invocation as _invocation
from s3es._cli.invocation import (
    BROKEN_PIPE,
    INTERRUPTED,
    PROBLEM,
    USAGE_ERROR,
    Invocation,
    Subcommand,
    UsageError,
    bucket_and_prefix,
    described,
    from_environment,
    refused_bucket_name,
)

if TYPE_CHECKING:
    from s3es._storage.port import ObjectStore

__all__ = ["SUBCOMMANDS", "main"]


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, raised as UsageError for :func:`main`."""

    def error(self, message: str) -> NoReturn:
        """Raise UsageError: :func:`main` prints it as one line and returns 2."""
        raise UsageError(self.prog, message)


def _endpoint_url(value: str) -> str:
    """``value`` if it is an http(s) URL with a host; argparse's error otherwise."""
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        message = f"must be an http:// or https:// URL, as http://127.0.0.1:5077, not {value!r}"
        raise argparse.ArgumentTypeError(message)
    return value


def _bucket_arguments() -> _Parser:
    bucket = _Parser(add_help=False)
    group = bucket.add_argument_group("bucket")
    bucket_and_prefix(group)
    group.add_argument(
        "--endpoint-url",
        metavar="URL",
        type=_endpoint_url,
        default=from_environment("AWS_ENDPOINT_URL"),
        help="an S3-compatible endpoint (default: $AWS_ENDPOINT_URL, else AWS)",
    )
    group.add_argument("--region", help="the bucket's region (default: the AWS config's)")
    group.add_argument(
        "--sse-kms-key-id",
        metavar="KEY",
        help="encrypt the objects it writes with this KMS key (SSE-KMS; default: the "
        "bucket's default encryption)",
    )
    group.add_argument(
        "-v", "--verbose", action="store_true", help="log s3es's info lines on stderr"
    )
    return bucket


def _chosen(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv``: its first word that is not an option.

    The top-level parser's only options (--help, --version) take no value, so that word is the
    subcommand, if it is one.
    """
    return next((word for word in argv if not word.startswith("-")), None)


def _parser(
    argv: Sequence[str],
) -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The parser of ``s3es``, and of each subcommand.

    Only the subcommand ``argv`` names gets its own arguments (importing the module that
    defines them): the others are parsed only for ``s3es --help``, which lists their help.
    """
    chosen = _chosen(argv)
    bucket = _bucket_arguments()
    parser: argparse.ArgumentParser = _Parser(
        prog="s3es",
        description="Operations on the event streams s3es keeps in an S3 bucket. "
        "Each subcommand prints the requests it sent; `s3es SUBCOMMAND --help` says more.",
    )
    parser.add_argument("--version", action="version", version=f"s3es {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")
    parsers: dict[str, argparse.ArgumentParser] = {}
    for command in SUBCOMMANDS:
        sub = commands.add_parser(
            command.name,
            parents=[bucket] if command.on_bucket else [],
            help=command.help,
            description=textwrap.dedent(command.description).strip(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if command.name == chosen:
            command.add_arguments(sub)
        parsers[command.name] = sub
    return parser, parsers


def main(
    argv: Sequence[str] | None = None,
    *,
    store: ObjectStore | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    stdin: TextIO | None = None,
) -> int:
    """Run the ``s3es`` command; return its exit status. ``store`` replaces the S3 bucket.

    ``out``, ``err`` and ``stdin`` default to the process's. Every failure is one line on
    ``err`` and a status: 2 for a wrong command line (argparse's errors, an ``--aggregate`` or
    ``--projection`` that cannot be loaded, an endpoint URL without a scheme, an endpoint that
    never answered (connection refused, after one attempt), a bucket name S3 refuses, a
    command that would write without ``--yes`` and no terminal to ask on), 1 for
    :data:`~s3es._cli.invocation.PROBLEMS`: s3es's errors (a corrupt chunk, a deleted
    stream...), ValueError (what a damaged chunk's content raises where s3es does not know it
    yet), and the AWS SDK's errors (no credentials, no such bucket, a connection lost after
    the endpoint answered). Other exceptions (AttributeError, TypeError, KeyError...)
    are bugs, in s3es or in the operator's aggregate, and are let through with their
    traceback: one line would hide where they are, and the traceback is what a report needs.
    ``--help`` and ``--version`` exit (SystemExit 0) as argparse does.
    """
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    stdin = sys.stdin if stdin is None else stdin
    argv = sys.argv[1:] if argv is None else list(argv)
    parser, parsers = _parser(argv)
    name = "s3es"
    invocation: Invocation | None = None
    try:
        arguments = parser.parse_args(argv)
        command = next(c for c in SUBCOMMANDS if c.name == arguments.command)
        sub = parsers[command.name]
        name = sub.prog
        if arguments.bucket is None:
            sub.error("--bucket is required (or set S3ES_BUCKET)")
        invocation = Invocation(sub, arguments, out=out, err=err, stdin=stdin, store=store)
        verbose = getattr(arguments, "verbose", False)
        with log_to_stderr(logging.INFO if verbose else logging.WARNING, stream=err):
            return command.handler()(invocation)
    except UsageError as error:
        print(error, file=err)
        return USAGE_ERROR
    except KeyboardInterrupt:
        print(f"\n{name}: interrupted", file=err)
        return INTERRUPTED
    except BrokenPipeError:
        if out is sys.stdout:
            # Python would report the failed flush of stdout at exit; point it at nothing.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return BROKEN_PIPE
    except Exception as error:
        # PROBLEMS is looked up only now: it imports botocore, which --help does not need.
        if not isinstance(error, _invocation.PROBLEMS):
            raise
        return _problem(name, error, invocation, err)


def _problem(name: str, error: BaseException, invocation: Invocation | None, err: TextIO) -> int:
    """Print ``error`` as one line; return the exit status.

    2 if the endpoint never answered (a wrong --endpoint-url, a server that is not up) or S3
    refused the bucket's name, which the command line can fix; 1 otherwise.
    """
    if invocation is not None and invocation.unreachable(error):
        print(
            f"{name}: cannot connect to the endpoint {invocation.endpoint} (is --endpoint-url "
            f"right, and the server up?): {_invocation.one_line(error.__cause__ or error)}",
            file=err,
        )
        return USAGE_ERROR
    refused = refused_bucket_name(error)
    if refused is not None and invocation is not None:
        bucket = invocation.arguments.bucket
        print(UsageError(name, f"S3 refuses the bucket name {bucket!r}: {refused}"), file=err)
        return USAGE_ERROR
    print(f"{name}: {described(error)}", file=err)
    return PROBLEM


SUBCOMMANDS: tuple[Subcommand, ...] = (
    Subcommand(
        "list",
        "list the stream types under the prefix, or the streams of one type",
        """
        List the stream types under the prefix (one LIST per 1,000 types, and two LISTs
        per type to tell it from the folder of an event store under a longer prefix, which
        is named on stderr instead), or with STREAM_TYPE the ids of its streams, deleted
        ones included (one LIST per 1,000 streams). With --versions, each id is followed by
        a tab and the stream's latest version, which costs 1 LIST + 1 GET more per stream.
        The ids go to stdout, one a line, for pipes; the requests line goes to stderr.
        """,
        "s3es._cli.streams:run_list",
        "s3es._cli.streams:list_arguments",
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
        ones a full read follows are flagged "read". Exit status 1 if the stream has no
        chunk, or if a chunk cannot be read.
        """,
        "s3es._cli.streams:run_show",
        "s3es._cli.streams:show_arguments",
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
        "s3es._cli.streams:run_verify",
        "s3es._cli.streams:verify_arguments",
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
        "s3es._cli.bucket:run_self_test",
        "s3es._cli.bucket:self_test_arguments",
    ),
    Subcommand(
        "policy",
        "print the bucket policy and the IAM policies that keep the event store safe",
        """
        Print, as JSON, the bucket policy that denies every PUT under the prefix without
        If-None-Match or If-Match (and plain HTTP), and the least-privilege IAM policies of
        an application role (list, read, append; no deletion) and of an operator role (plus
        deletion and the lifecycle rule of `s3es tiering`). With --queue-arn, also the
        bucket's notification configuration and the SQS queue's policy of the change feed
        of S3 event notifications (docs/change-feeds.md). Sends no request. See
        docs/security.md.
        """,
        "s3es._cli.bucket:run_policy",
        "s3es._cli.bucket:policy_arguments",
        on_bucket=False,
    ),
    Subcommand(
        "projection",
        "show a projection's generations, shards and leases; run passes, a rebuild, a loop",
        """
        For a Projection (one document): status prints the stored read model's schema,
        epoch, completeness and streams, and who holds its lease (2 GET). catch-up: take the
        lease, run one pass (a full scan: one LIST per stream; with --feed, the change feed:
        one LIST per stream type) and release the lease. rebuild: take the lease under a new
        epoch (with --force even from a live projector, which is then fenced) and build a new
        model from every event of every stream beside the live one, which readers keep until
        the new one is complete. run: passes every
        --interval seconds until SIGTERM or Ctrl-C, then the lease released.

        For a DocumentProjection, in the read-model store --store names (s3 by default,
        beside the event store; sqlite:PATH; postgresql://...), as --shards N shards, of
        which this process takes those --shard names (all by default): status prints the
        generations (live, building, their SCHEMA), then per shard who holds its lease (until
        when, or released, or expired) and its state in each generation (epoch, whether its
        full scan is done, how far its feed cursors are behind now: an upper bound of its
        lag, which an idle event store also makes grow); it reads 1 GET per shard for the
        lease, and the states. With --lag it counts, per shard, the streams behind their
        positions and by how many versions: a scan, 1 LIST per 1,000 streams, 1 LIST per
        stream and the positions' reads (1 GET per stream on the s3 store). catch-up and
        rebuild run one pass per shard in turn, each under its lease taken and released,
        and print per shard the events, commits and requests; rebuild first starts a new
        generation, which readers switch to once every shard has scanned into it. run is
        the process to deploy, one per shard under systemd, Kubernetes or ECS: passes every
        --interval seconds until SIGTERM or Ctrl-C (the first lets the pass under way end,
        then releases the leases; a second stops at once). A progress bar on stderr when it
        is a terminal. parked lists the documents an event could not be applied to (apply
        raised, or no store keeps the document), each holding its stream (--all: the skipped
        too); retry EVENT_ID applies the held stream again now, skip EVENT_ID applies it
        without that event for that document (asks, or --yes); status counts them. Exit
        status 1 if a shard's lease is held by another process (named), a chunk cannot be
        read, or a retried event fails again. See docs/projections.md and docs/operations.md.
        """,
        "s3es._cli.projection:run_projection",
        "s3es._cli.projection:projection_arguments",
    ),
    Subcommand(
        "reactor",
        "show a reactor's shards and parked events; run passes; retry or skip a parked event",
        """
        A Reactor (--reactor module:Class) turns events into commands; its positions,
        shard states and parked events live in the read-model store --store names (s3 by
        default; sqlite:PATH; postgresql://...). --shards, --shard, --owner, --feed,
        --interval and --lag are those of `s3es projection`. status: the generations, a
        line per shard (lease, state, feed cursors' age, with --lag the streams behind), and
        how many events are parked. catch-up: one pass per shard, printing its events,
        commands and requests. run: passes until SIGTERM or Ctrl-C, then the leases
        released. parked: one line per parked event (id, stream, version, type, attempts,
        when, error); --all adds the skipped ones. retry EVENT_ID: react to it again; once
        its commands went through it is no longer parked (if it fails again it stays parked,
        exit status 1). skip EVENT_ID: mark it skipped (kept for the record, never reacted to
        again), after a confirmation on a terminal (--yes does not ask; without a terminal,
        --yes is needed). retry and skip need the --shards the reactor runs with. Exit status
        1 if a shard's lease is held elsewhere, or no such event is parked.
        """,
        "s3es._cli.reactor:run_reactor",
        "s3es._cli.reactor:reactor_arguments",
    ),
    Subcommand(
        "flow",
        "list the events of one flow (a correlation id) across the streams of some types",
        """
        List, in recorded time order, every event of the streams of each --type whose
        metadata has correlation_id CORRELATION_ID, and the event of that id (the flow's
        first): stream, version, type, id and causation_id (the event that caused it). A
        reactor's commands stamp both ids on the events they store. A scan: 1 LIST per 1,000
        streams of each type, then per stream 1 LIST + 1 GET per chunk read (what `s3es
        show` of every stream would cost). A progress bar on stderr when it is a terminal.
        Exit status 1 if a stream cannot be read.
        """,
        "s3es._cli.flow:run_flow",
        "s3es._cli.flow:flow_arguments",
    ),
    Subcommand(
        "compact",
        "merge each stream's chunks into one (safe while others append; deletes nothing)",
        """
        Merge the chunks of each named stream, or with --all of every stream of the
        aggregate's STREAM_TYPE, into one chunk holding every event and a fresh snapshot, so
        a full read is one GET. Safe to run while writers append, and to run again. Deletes
        nothing. Asks first on a terminal (--yes does not; without a terminal, --yes is
        needed); --dry-run prints each stream's version and chunk count and writes nothing.
        With --all, a progress bar on stderr (a line every 10 s when it is not a terminal).
        """,
        "s3es._cli.maintenance:run_compact",
        "s3es._cli.maintenance:compact_arguments",
    ),
    Subcommand(
        "delete",
        "delete streams: a tombstone at the next version, then every chunk below it",
        """
        Delete each named stream: store a tombstone as its next version (from then on it
        can be neither read nor appended to), then delete every chunk below it. Safe to run
        while writers append, and to run again. Asks first on a terminal (--yes does not;
        without a terminal, --yes is needed); --dry-run prints each stream's version and
        chunk count and writes nothing.
        """,
        "s3es._cli.maintenance:run_delete",
        "s3es._cli.maintenance:delete_arguments",
    ),
    Subcommand(
        "erase",
        "erase personal data: rewrite streams through a redaction, erase the old chunks",
        """
        Erase data from each named stream: write a merged chunk whose events went through
        the --redact function (module:function, taking an event and returning it without
        the data) and whose snapshot is folded from them, then replace every chunk it
        stands for with an erased one (same key, no events, no snapshot; If-Match on the
        ETag just read). Event ids, versions and metadata are kept. Safe to run while
        writers append, and to run again. Asks first on a terminal (--yes does not; without
        a terminal, --yes is needed); --dry-run prints each stream's version and chunk count
        and writes nothing.
        """,
        "s3es._cli.maintenance:run_erase",
        "s3es._cli.maintenance:erase_arguments",
    ),
    Subcommand(
        "repair",
        "store the fences an erasure cut short left missing, so the streams read through them",
        """
        An erasure sends a round of fences (versions with no event) at once; if a lower
        fence's PUT failed, or the erasure stopped between two, its version stays missing
        below the higher fences: reads end below it (nothing is lost: the fences hold no
        event) and `s3es verify` names it. For each stream named (or --all of the
        aggregate's type), store that missing fence (put-if-absent; a writer may fill the
        version first, which mends it too), from the lowest version up: 1 LIST per 1,000
        chunks, 1 GET per chunk read, 1 PUT per version missing. Other damage is left as it
        is. Asks first on a terminal (--yes does not; without a terminal, --yes is needed);
        --dry-run names the missing versions and writes nothing. Exit status 1 if a stream
        cannot be read.
        """,
        "s3es._cli.maintenance:run_repair",
        "s3es._cli.maintenance:repair_arguments",
    ),
    Subcommand(
        "tiering",
        "print, or apply, the lifecycle rule moving large chunks to Intelligent-Tiering",
        """
        Print the S3 lifecycle rule that moves the event store's chunks of 128 KB or more to
        S3 Intelligent-Tiering; with --apply, put it into the bucket's lifecycle
        configuration (other rules are kept; safe to run again).
        """,
        "s3es._cli.bucket:run_tiering",
        "s3es._cli.bucket:tiering_arguments",
    ),
)
