"""``s3es projection`` of document projections, ``s3es reactor`` and ``s3es flow``.

Each runs the command in-process on an in-memory object store (the bucket), with the
read-model store ``--store`` names: s3 (beside the events), SQLite in the test's folder, or the
session's PostgreSQL. The projection and reactor are tests.consumers_cli_fixtures'.
"""

from __future__ import annotations

import io
import os
import signal
from itertools import count
from pathlib import Path
from typing import Any

import pytest

from s3es import CommandHandler, EventStore, InMemoryObjectStore, Repository, StreamName
from s3es._cli.main import main
from s3es.projections import DocumentProjector, DocumentReader, LeaseOptions, Shards
from s3es.reactors import CAUSATION_ID, CORRELATION_ID
from s3es.readmodels import S3ReadModelStore, SQLiteReadModelStore
from s3es.storage import ObjectStore
from tests.aggregates import Counter, Increment
from tests.consumers_cli_fixtures import CounterIds, prefixed_ids

#: The bucket arguments: the store given to main replaces the bucket, the prefix counts.
_ON = ["--bucket", "x", "--prefix", "p"]
PROJECTION = ["--projection", "tests.consumers_cli_fixtures:CounterIds"]
REACTOR = ["--reactor", "tests.consumers_cli_fixtures:Mirror"]
_schemas = count()


class _Terminal(io.StringIO):
    """A stream that says it is a terminal (stdin: its text is what the operator types)."""

    def isatty(self) -> bool:
        return True


class _TermOnPass(io.StringIO):
    """The output of a ``run``: the first line about a pass sends this process SIGTERM, as
    systemd or Kubernetes would to stop it."""

    def write(self, text: str) -> int:
        if "shard " in text and "running" not in text and "stopped" not in text:
            os.kill(os.getpid(), signal.SIGTERM)
        return super().write(text)


class _TermOnScan(io.StringIO):
    """The output of a Projection's ``run``: its first pass's line sends SIGTERM."""

    def write(self, text: str) -> int:
        if text.startswith("a full scan"):
            os.kill(os.getpid(), signal.SIGTERM)
        return super().write(text)


def _invoke(
    argv: list[str], store: ObjectStore, *, stdin: io.StringIO | None = None
) -> tuple[int, str, str]:
    """Run ``s3es`` on ``store``: its status, stdout and stderr. stdin is not a terminal."""
    out, err = io.StringIO(), io.StringIO()
    status = main(argv, store=store, out=out, err=err, stdin=stdin or io.StringIO())
    return status, out.getvalue(), err.getvalue()


def _handler(store: ObjectStore) -> CommandHandler[Any, Any, Any]:
    """A handler of counters that writes the change feed."""
    return CommandHandler(Repository(EventStore(store, prefix="p", feed=True), Counter))


def _filled() -> InMemoryObjectStore:
    """Three counters, c-1 to c-3, of one increment each, written with the change feed."""
    store = InMemoryObjectStore()
    handler = _handler(store)
    for stream_id in ("c-1", "c-2", "c-3"):
        handler.handle(stream_id, Increment(2))
    return store


def _documents(
    store: ObjectStore, read_models: S3ReadModelStore | SQLiteReadModelStore
) -> dict[str, int]:
    """Each counter's document, as the number of event ids in it."""
    reader = DocumentReader(read_models, CounterIds)
    return {key: len(document.ids) for key, document in reader.documents()}


class TestDocumentProjection:
    def test_status_catch_up_status(self, tmp_path: Path) -> None:
        """status before any run says so; catch-up runs one pass per shard, printing each;
        status then shows the live generation and each shard's released lease."""
        store = _filled()
        sqlite = f"sqlite:{tmp_path / 'rm.db'}"
        argv = [*_ON, *PROJECTION, "--store", sqlite, "--shards", "2"]
        status, out, _ = _invoke(["projection", "status", *argv], store)
        assert status == 0
        lines = out.splitlines()
        assert lines[0].startswith("projection counter-ids (CounterIds, SCHEMA 1) in SQLite")
        assert lines[1] == "generations: live none, building none"
        assert lines[2] == "shard 0 of 2: lease never taken; no generation yet"
        assert "no shard of 2 has a lease or a state" in lines[4]
        status, out, _ = _invoke(["projection", "catch-up", *argv], store)
        assert status == 0
        lines = out.splitlines()
        assert [line.split(":")[0] for line in lines[:2]] == ["shard 0 of 2", "shard 1 of 2"]
        assert sum(int(line.split(", ")[1].split()[0]) for line in lines[:2]) == 3  # events
        assert "now live" in out
        assert lines[2].startswith("requests: ")
        status, out, _ = _invoke(["projection", "status", *argv], store)
        assert "generations: live 1 (SCHEMA 1), building none" in out
        assert out.count("lease released by ") == 2
        assert out.count("live generation 1: epoch 1, scanned") == 2
        with SQLiteReadModelStore(tmp_path / "rm.db") as read_models:
            assert _documents(store, read_models) == {"c-1": 1, "c-2": 1, "c-3": 1}

    def test_feed_cursors_and_lag(self) -> None:
        """With --feed, status shows each shard's feed cursor; --lag counts the streams and
        versions behind their positions, and catch-up --feed brings them back to none."""
        store = _filled()
        argv = [*_ON, *PROJECTION, "--feed"]
        assert _invoke(["projection", "catch-up", *argv], store)[0] == 0
        _handler(store).handle("c-2", Increment(5))
        _handler(store).handle("c-2", Increment(1))
        status, out, _ = _invoke(["projection", "status", *argv, "--lag"], store)
        assert status == 0
        assert "feed counter up to " in out
        assert "lag: 1 of 3 streams behind, by 2 versions" in out
        status, out, _ = _invoke(["projection", "catch-up", *argv], store)
        assert "shard 0 of 1: the change feed, 2 events of 1 stream" in out
        _, out, _ = _invoke(["projection", "status", *argv, "--lag"], store)
        assert "lag: none (3 streams up to date)" in out
        assert _documents(store, S3ReadModelStore(store, "p"))["c-2"] == 3

    def test_one_shard_and_a_held_one(self) -> None:
        """--shard picks the shards this process runs; a shard another process holds is left
        to it, named on stderr, and the exit status is 1."""
        store = _filled()
        events = EventStore(store, prefix="p")
        daemon = DocumentProjector(
            events,
            CounterIds,
            S3ReadModelStore(store, "p"),
            shards=Shards(2, ids=[0]),
            lease=LeaseOptions(owner="daemon"),
        )
        daemon.catch_up()  # holds shard 0's lease until it expires
        argv = [*_ON, *PROJECTION, "--shards", "2"]
        status, out, _ = _invoke(["projection", "catch-up", *argv, "--shard", "1"], store)
        assert status == 0
        assert out.startswith("shard 1 of 2: a full scan")
        assert "shard 0" not in out
        status, out, err = _invoke(["projection", "catch-up", *argv], store)
        assert status == 1
        assert err.startswith("s3es projection: shard 0 of 2: projection 'counter-ids shard 0")
        assert "is run by 'daemon' (epoch 1)" in err
        assert "shard 1 of 2: a full scan" in out
        _, out, _ = _invoke(["projection", "status", *argv, "--shard", "0"], store)
        assert "shard 0 of 2: lease held by 'daemon', epoch 1, until " in out
        assert "shard 1" not in out
        daemon.release()

    def test_rebuild_switches_to_a_new_generation(self) -> None:
        """rebuild fills generation 2 from every event and makes it live."""
        store = _filled()
        argv = [*_ON, *PROJECTION, "--shards", "3"]
        _invoke(["projection", "catch-up", *argv], store)
        status, out, _ = _invoke(["projection", "rebuild", *argv], store)
        assert status == 0
        assert out.count("a full scan") == 3
        assert "generation 2, now live" in out
        _, out, _ = _invoke(["projection", "status", *argv], store)
        assert "generations: live 2 (SCHEMA 1), building none" in out
        assert _documents(store, S3ReadModelStore(store, "p")) == {"c-1": 1, "c-2": 1, "c-3": 1}

    def test_rebuild_with_a_shard_held_elsewhere(self) -> None:
        """rebuild starts the build from the first shard it can hold, fills the shards it
        holds (exit status 1 for the held one), and the holder's next pass completes it."""
        store = _filled()
        argv = [*_ON, *PROJECTION, "--shards", "2"]
        _invoke(["projection", "catch-up", *argv], store)
        daemon = DocumentProjector(
            EventStore(store, prefix="p"),
            CounterIds,
            S3ReadModelStore(store, "p"),
            shards=Shards(2, ids=[0]),
            lease=LeaseOptions(owner="daemon"),
        )
        daemon.catch_up()
        status, out, err = _invoke(["projection", "rebuild", *argv], store)
        assert status == 1
        assert "shard 0 of 2: " in err
        assert out.startswith("shard 1 of 2: a full scan")
        assert "generation 2" in out
        _, out, _ = _invoke(["projection", "status", *argv], store)
        assert "generations: live 1 (SCHEMA 1), building 2 (SCHEMA 1)" in out
        daemon.catch_up()
        daemon.release()
        _, out, _ = _invoke(["projection", "status", *argv], store)
        assert "generations: live 2 (SCHEMA 1), building none" in out

    def test_run_stops_on_sigterm_and_releases_the_leases(self, tmp_path: Path) -> None:
        """run loops until SIGTERM: the pass under way ends, the leases are released, and it
        exits 0 saying what it did."""
        store = _filled()
        argv = ["projection", "run", *_ON, *PROJECTION, "--shards", "2", "--shard", "1"]
        argv += ["--store", f"sqlite:{tmp_path / 'rm.db'}", "--interval", "60", "--owner", "pod-1"]
        out, err = _TermOnPass(), io.StringIO()
        status = main(argv, store=store, out=out, err=err, stdin=io.StringIO())
        assert (status, err.getvalue()) == (0, "")
        lines = out.getvalue().splitlines()
        assert lines[0].startswith("projection counter-ids: running shard 1 of 2 as 'pod-1'")
        assert lines[1].startswith("shard 1 of 2: a full scan")
        assert lines[2].startswith("stopped by SIGTERM after 1 pass: ")
        assert lines[2].endswith("; leases released")
        _, status_out, _ = _invoke(
            [
                "projection",
                "status",
                *_ON,
                *PROJECTION,
                "--shards",
                "2",
                "--store",
                f"sqlite:{tmp_path / 'rm.db'}",
            ],
            store,
        )
        assert "shard 1 of 2: lease released by 'pod-1' (epoch 1)" in status_out
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL

    def test_on_postgresql(self, postgres_uri: str) -> None:
        """--store postgresql://... keeps the documents in PostgreSQL."""
        schema = f"cli_{os.getpid()}_{next(_schemas)}"
        import psycopg  # noqa: PLC0415 - the postgres extra

        with psycopg.connect(postgres_uri, autocommit=True) as connection:
            connection.execute(f'CREATE SCHEMA "{schema}"')
        separator = "&" if "?" in postgres_uri else "?"
        url = f"{postgres_uri}{separator}options=-csearch_path%3D{schema}"
        store = _filled()
        argv = [*_ON, *PROJECTION, "--store", url]
        status, out, _ = _invoke(["projection", "catch-up", *argv], store)
        assert status == 0
        assert "3 events of 3 streams" in out
        _, out, _ = _invoke(["projection", "status", *argv], store)
        assert "in PostgresReadModelStore('postgresql:" in out
        assert "live generation 1: epoch 1, scanned" in out

    def test_a_projection_keeps_its_one_document_commands(self) -> None:
        """A Projection still runs as before, and takes no document projection's option."""
        store = _filled()
        argv = [*_ON, "--projection", "tests.projections:AppliedIds"]
        status, out, _ = _invoke(["projection", "catch-up", *argv], store)
        assert status == 0
        assert "catch-up by a full scan: 3 events of 3 streams applied" in out
        status, _, err = _invoke(["projection", "status", *argv, "--shards", "2"], store)
        assert status == 2
        assert "--shards is for a DocumentProjection" in err

    def test_an_empty_owner_is_a_usage_error(self) -> None:
        """``--owner ""`` names the option and LeaseOptions' field, for every consumer kind."""
        store = _filled()
        for argv in (
            ["projection", "status", *PROJECTION],
            ["projection", "status", "--projection", "tests.projections:AppliedIds"],
            ["reactor", "status", *REACTOR],
        ):
            status, _, err = _invoke([*argv, *_ON, "--owner", ""], store)
            assert status == 2, err
            assert "--owner: LeaseOptions.owner must be a non-empty str" in err

    def test_a_projection_runs_until_sigterm(self) -> None:
        """run of a Projection loops too, and releases its lease on SIGTERM."""
        store = _filled()
        argv = [*_ON, "--projection", "tests.projections:AppliedIds"]
        out = _TermOnScan()
        status = main(["projection", "run", *argv, "--interval", "60"], store=store, out=out)
        assert status == 0
        assert "stopped by SIGTERM after 1 pass: 3 events" in out.getvalue()
        _, status_out, _ = _invoke(["projection", "status", *argv], store)
        assert "lease: released by " in status_out


class TestUsageErrors:
    @pytest.mark.parametrize(
        ("argv", "message"),
        [
            (
                ["projection", "status", "--projection", "tests.nowhere:X"],
                "--projection 'tests.nowhere:X': cannot import 'tests.nowhere'",
            ),
            (
                ["projection", "status", "--projection", "tests.aggregates:Counter"],
                "tests.aggregates has no Projection 'Counter', nor DocumentProjection",
            ),
            (
                ["reactor", "status", "--reactor", "tests.consumers_cli_fixtures:CounterIds"],
                "tests.consumers_cli_fixtures has no Reactor 'CounterIds'",
            ),
            (
                ["reactor", "status", *REACTOR, "--store", "mysql://u:secret@h/db"],
                "argument --store: must be s3, sqlite:PATH or a postgresql://... URL, not 'mysql'",
            ),
            (
                ["projection", "status", *PROJECTION, "--store", "sqlite:"],
                "sqlite: needs the database file",
            ),
            (
                ["projection", "status", *PROJECTION, "--shards", "2", "--shard", "2"],
                "--shard 2 is not a shard of --shards 2 (0 to 1)",
            ),
            (["projection", "status", *PROJECTION, "--shards", "0"], "must be an int >= 1"),
            (["projection", "rebuild", *PROJECTION, "--force"], "--force is for a Projection"),
            (["reactor", "retry", *REACTOR], "retry needs the EVENT_ID of a parked event"),
            (["reactor", "skip", "e-1", *REACTOR], "confirm with --yes"),
            (
                ["reactor", "status", "--reactor", "tests.consumers_cli_fixtures:OffsetMirror"],
                (
                    "--reactor 'tests.consumers_cli_fixtures:OffsetMirror': OffsetMirror() needs "
                    "arguments (missing a required argument: 'prefix'): name a factory instead, "
                    "module:callable returning the reactor"
                ),
            ),
            (
                [
                    "projection",
                    "status",
                    "--projection",
                    "tests.consumers_cli_fixtures:PrefixedIds",
                ],
                (
                    "--projection 'tests.consumers_cli_fixtures:PrefixedIds': PrefixedIds() needs "
                    "arguments (missing a required argument: 'prefix'): name a factory instead, "
                    "module:callable returning the projection"
                ),
            ),
            (
                ["reactor", "status", "--reactor", "tests.consumers_cli_fixtures:failing_factory"],
                (
                    "--reactor 'tests.consumers_cli_fixtures:failing_factory': calling it raised "
                    "LookupError: WAREHOUSE_ID is not set"
                ),
            ),
            (
                ["reactor", "status", "--reactor", "tests.consumers_cli_fixtures:not_a_consumer"],
                (
                    "--reactor 'tests.consumers_cli_fixtures:not_a_consumer' returned 42, not a "
                    "Reactor"
                ),
            ),
            (
                ["projection", "status", "--projection", "tests.consumers_cli_fixtures:Ids"],
                (
                    "tests.consumers_cli_fixtures has no Projection 'Ids', nor DocumentProjection, "
                    "nor a factory of one"
                ),
            ),
        ],
    )
    def test_one_line_exit_2(self, argv: list[str], message: str) -> None:
        """A wrong command line is one line on stderr naming what is wrong, exit status 2,
        and no request."""
        store = InMemoryObjectStore()
        status, _, err = _invoke([*argv, *_ON], store)
        assert status == 2
        assert len(err.splitlines()) == 1
        assert message in err
        assert "secret" not in err
        assert store.requests.total == 0


class TestReactor:
    def test_parked_retry_skip(self) -> None:
        """A reaction that keeps failing is parked and listed; retry fails while the cause
        stays (exit 1, still parked), succeeds once it is fixed; skip asks, then marks an
        event skipped, which parked --all still shows."""
        store = _filled()
        handler = _handler(store)
        seven = handler.handle("c-1", Increment(7)).recorded[0]
        status, out, err = _invoke(["reactor", "catch-up", *_ON, *REACTOR], store)
        assert status == 0
        assert f"1 event parked: {seven.id}" in out
        _, out, _ = _invoke(["reactor", "status", *_ON, *REACTOR], store)
        assert "parked: 1 event (0 skipped)" in out
        status, out, _ = _invoke(["reactor", "parked", *_ON, *REACTOR], store)
        header, row = out.splitlines()[:2]
        assert header.split() == [
            "EVENT_ID",
            "STREAM",
            "VERSION",
            "TYPE",
            "ATTEMPTS",
            "PARKED_AT",
            "ERROR",
        ]
        assert row.split()[:5] == [seven.id, "counter/c-1", "2", "Incremented", "3"]
        assert row.endswith("CounterError: cannot take 7 from a total of 0")
        status, _, err = _invoke(["reactor", "retry", seven.id, *_ON, *REACTOR], store)
        assert status == 1
        assert err == (
            f"s3es reactor: event {seven.id} (Incremented, counter/c-1 version 2) failed again, "
            "and stays parked: CounterError: cannot take 7 from a total of 0\n"
        )
        handler.handle("sink", Increment(7))
        status, out, _ = _invoke(["reactor", "retry", seven.id, *_ON, *REACTOR], store)
        assert status == 0
        assert out.startswith(f"retried event {seven.id} (Incremented, counter/c-1 version 2): ")
        assert "2 commands sent (1 already stored); no longer parked" in out
        assert _invoke(["reactor", "parked", *_ON, *REACTOR], store)[1].startswith(
            "reactor mirror: no event is parked"
        )
        again = handler.handle("c-2", Increment(7)).recorded[0]
        _invoke(["reactor", "catch-up", *_ON, *REACTOR], store)
        status, _, err = _invoke(
            ["reactor", "skip", again.id, *_ON, *REACTOR], store, stdin=_Terminal("n\n")
        )
        assert status == 1
        assert err.endswith("? [y/N] s3es reactor: not confirmed; nothing written\n")
        status, out, _ = _invoke(["reactor", "skip", again.id, *_ON, *REACTOR, "--yes"], store)
        assert status == 0
        assert out.startswith(f"skipped event {again.id} (Incremented, counter/c-2 version 2)")
        _, out, _ = _invoke(["reactor", "parked", *_ON, *REACTOR, "--all"], store)
        assert "STATUS" in out.splitlines()[0]
        assert f"{again.id}  counter/c-2" in out
        assert "skipped" in out

    def test_retry_of_an_event_not_parked(self) -> None:
        """retry of an event that is not parked is one line and exit status 1."""
        store = _filled()
        _invoke(["reactor", "catch-up", *_ON, *REACTOR], store)
        status, _, err = _invoke(["reactor", "retry", "nope", *_ON, *REACTOR], store)
        assert status == 1
        assert err == "s3es reactor: reactor mirror: no event 'nope' is parked\n"

    def test_retry_needs_the_reactors_shard_count(self) -> None:
        """retry with a --shards the reactor does not run with is refused before it writes."""
        store = _filled()
        seven = _handler(store).handle("c-1", Increment(7)).recorded[0]
        _invoke(["reactor", "catch-up", *_ON, *REACTOR], store)
        argv = ["reactor", "retry", seven.id, *_ON, *REACTOR, "--shards", "4"]
        status, _, err = _invoke(argv, store)
        assert status == 2
        assert "which has no state: give the --shards the reactor runs with" in err

    def test_run_until_sigterm(self) -> None:
        """run reacts pass after pass until SIGTERM, then releases its leases."""
        store = _filled()
        out = _TermOnPass()
        argv = ["reactor", "run", *_ON, *REACTOR, "--interval", "60"]
        assert main(argv, store=store, out=out, err=io.StringIO()) == 0
        lines = out.getvalue().splitlines()
        assert "3 commands sent (0 already stored), 0 events parked" in lines[1]
        assert lines[2].startswith("stopped by SIGTERM after 1 pass: 3 events")

    def test_never_run(self) -> None:
        """status and parked of a reactor that never ran say so, and exit 0."""
        store = _filled()
        _, out, _ = _invoke(["reactor", "parked", *_ON, *REACTOR], store)
        assert out.startswith("reactor mirror has not run yet: nothing is parked")
        status, out, _ = _invoke(["reactor", "status", *_ON, *REACTOR], store)
        assert status == 0
        assert "shard 0 of 1: lease never taken; no generation yet" in out


class TestFactories:
    def test_a_reactor_made_by_a_factory(self) -> None:
        """--reactor module:callable runs the reactor the callable returns (one that needs
        arguments): status, catch-up and parked all take it."""
        store = _filled()
        argv = [*_ON, "--reactor", "tests.consumers_cli_fixtures:offset_mirror"]
        status, out, _ = _invoke(["reactor", "status", *argv], store)
        assert status == 0
        assert out.startswith("reactor offset-mirror (OffsetMirror) in S3ReadModelStore")
        status, out, _ = _invoke(["reactor", "catch-up", *argv], store)
        assert status == 0
        assert "3 commands sent (0 already stored), 0 events parked" in out
        assert EventStore(store, prefix="p").version(StreamName("counter", "copy-c-1")) == 1
        assert _invoke(["reactor", "parked", *argv], store)[1].startswith(
            "reactor offset-mirror: no event is parked"
        )

    def test_a_projection_made_by_a_factory(self) -> None:
        """--projection module:callable runs the document projection the callable returns."""
        store = _filled()
        _handler(store).handle("d-1", Increment(1))
        argv = [*_ON, "--projection", "tests.consumers_cli_fixtures:prefixed_ids"]
        status, out, _ = _invoke(["projection", "catch-up", *argv], store)
        assert status == 0
        status, out, _ = _invoke(["projection", "status", *argv], store)
        assert status == 0
        assert out.startswith("projection prefixed-ids (PrefixedIds, SCHEMA 1) in S3")
        reader = DocumentReader(S3ReadModelStore(store, "p"), prefixed_ids())
        assert [key for key, _ in reader.documents()] == ["c-1", "c-2", "c-3"]


class TestFlow:
    def test_follows_a_flow_across_streams(self) -> None:
        """flow lists the first event and every event it caused, in time order, with their
        causes; show prints the correlation and causation ids in columns of their own."""
        store = _filled()
        first = _handler(store).handle("c-1", Increment(7)).recorded[0]
        _handler(store).handle("sink", Increment(10))
        _invoke(["reactor", "catch-up", *_ON, *REACTOR], store)
        status, out, _ = _invoke(["flow", first.id, "--type", "counter", *_ON], store)
        assert status == 0
        lines = out.splitlines()
        assert lines[0] == f"flow {first.id!r}: 3 events in 3 streams (7 streams of counter read)"
        assert lines[1].split() == [
            "RECORDED_AT",
            "STREAM",
            "VERSION",
            "TYPE",
            "ID",
            "CAUSATION_ID",
        ]
        rows = [line.split() for line in lines[2:5]]
        assert [row[1:4] for row in rows] == [
            ["counter/c-1", "2", "Incremented"],
            ["counter/mirror-c-1", "2", "Incremented"],
            ["counter/sink", "2", "Decremented"],
        ]
        assert [row[5] for row in rows] == ["-", first.id, first.id]
        assert lines[5].startswith("requests: ")
        mirrored = list(Repository(EventStore(store, prefix="p"), Counter).read("mirror-c-1"))
        assert mirrored[1].metadata == {CORRELATION_ID: first.id, CAUSATION_ID: first.id}
        _, out, _ = _invoke(["show", "counter", "mirror-c-1", *_ON], store)
        header = next(line for line in out.splitlines() if line.startswith("VERSION"))
        assert header.split() == [
            "VERSION",
            "TYPE",
            "ID",
            "SCHEMA",
            "RECORDED_AT",
            "CORRELATION_ID",
            "CAUSATION_ID",
            "DATA",
        ]
        assert f'{first.id}  {first.id}  {{"amount":7}}' in out

    def test_no_event_of_the_flow(self) -> None:
        """A correlation id that nothing carries lists nothing, and exit status 0."""
        store = _filled()
        status, out, _ = _invoke(["flow", "nope", "--type", "counter", *_ON], store)
        assert status == 0
        assert out.startswith("flow 'nope': 0 events (3 streams of counter read)\nrequests: ")
