"""The ``s3es`` command: every subcommand, on an in-memory store and on moto's S3."""

from __future__ import annotations

import io
import json

import pytest

from s3es import CommandHandler, EventStore, InMemoryObjectStore, Projector, Repository, StreamName
from s3es._cli.main import SUBCOMMANDS, load_aggregate, main
from s3es._ops.policies import policies
from s3es.eventstore import StreamKeys
from s3es.ops import bucket_policy, compact, delete
from s3es.storage import ObjectStore
from s3es.testing.embedded_s3 import EmbeddedS3
from tests.aggregates import Counter, CounterState, Increment
from tests.projections import AppliedIds
from tests.test_selftest import IgnoresIfNoneMatch

AGGREGATE = "tests.aggregates:Counter"


def _fill(store: ObjectStore, stream_id: str, commands: int) -> None:
    handler = CommandHandler(Repository(EventStore(store, prefix="p"), Counter))
    for amount in range(1, commands + 1):
        handler.handle(stream_id, Increment(amount))


def _run(argv: list[str], store: ObjectStore | None = None) -> tuple[int, str]:
    out = io.StringIO()
    status = main(argv, store=store, out=out)
    return status, out.getvalue()


class TestCompact:
    def test_merges_each_stream(self) -> None:
        """compact merges every named stream and says what it did and the requests it sent."""
        store = InMemoryObjectStore()
        _fill(store, "a", 3)
        _fill(store, "b", 1)
        argv = ["compact", "--aggregate", AGGREGATE, "--bucket", "x", "--prefix", "p"]
        status, out = _run([*argv, "a", "b", "missing"], store)
        assert status == 0
        lines = out.splitlines()
        assert lines[0].startswith("counter/a: merged 3 chunks (3 events) into p/counter/a/")
        assert lines[0].endswith("; 1 LIST + 3 GET + 1 PUT")
        assert lines[1] == "counter/b: nothing to merge; 1 LIST + 1 GET"
        assert lines[2] == "counter/missing: no such stream; 1 LIST"
        assert lines[3].startswith("requests: 3 LIST + 4 GET + 1 PUT ($")
        repository = Repository(EventStore(store, prefix="p"), Counter)
        assert repository.replay("a").state == CounterState(6, 3)

    def test_bad_stream_id_reported(self) -> None:
        """A stream id that cannot be stored is reported by name, the others still run, and
        the exit status is 1."""
        store = InMemoryObjectStore()
        _fill(store, "a", 2)
        argv = ["compact", "--aggregate", AGGREGATE, "--bucket", "x", "--prefix", "p"]
        status, out = _run([*argv, "bad/id", "a"], store)
        assert status == 1
        assert "'bad/id': stream id" in out
        assert "counter/a: merged 2 chunks" in out

    def test_against_s3(self, embedded_s3: EmbeddedS3) -> None:
        """compact works against an S3 endpoint given by --endpoint-url."""
        embedded_s3.create_bucket("cli-compact")
        _fill(embedded_s3.object_store("cli-compact"), "s", 4)
        argv = ["compact", "--aggregate", AGGREGATE, "--bucket", "cli-compact", "--prefix", "p"]
        argv += ["--endpoint-url", embedded_s3.endpoint_url, "--region", "us-east-1", "s"]
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("AWS_ACCESS_KEY_ID", "testing")
            patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
            status, out = _run(argv)
        assert status == 0
        assert "counter/s: merged 4 chunks (4 events)" in out


class TestAggregateOption:
    @pytest.mark.parametrize(
        ("spec", "message"),
        [
            ("Counter", "must be module:Class"),
            ("no_such_module:Counter", "cannot import 'no_such_module'"),
            ("tests.aggregates:Nothing", "has no Aggregate 'Nothing'"),
            ("tests.aggregates:Increment", "has no Aggregate 'Increment'"),
        ],
    )
    def test_refused(self, spec: str, message: str) -> None:
        """An --aggregate that is not module:Class of an Aggregate is refused, saying why."""
        with pytest.raises(ValueError, match=message):
            load_aggregate(spec)

    def test_usage_error_exit(self, capsys: pytest.CaptureFixture[str]) -> None:
        """On the command line, a wrong --aggregate exits 2 with the reason."""
        with pytest.raises(SystemExit) as raised:
            main(["compact", "--aggregate", "nope", "--bucket", "x", "s"])
        assert raised.value.code == 2
        assert "must be module:Class" in capsys.readouterr().err

    def test_found(self) -> None:
        """module:Class of an Aggregate gives that class."""
        assert load_aggregate(AGGREGATE) is Counter


class TestDelete:
    def test_deletes_each_stream(self) -> None:
        """delete stores a tombstone per stream and deletes the chunks below it, saying so."""
        store = InMemoryObjectStore()
        _fill(store, "a", 3)
        argv = ["delete", "--aggregate", AGGREGATE, "--bucket", "x", "--prefix", "p"]
        status, out = _run([*argv, "a", "missing"], store)
        assert status == 0
        lines = out.splitlines()
        assert lines[0] == (
            "counter/a: tombstone at version 4, 3 chunks deleted; 2 LIST + 1 GET + 1 PUT + 3 DELETE"
        )
        assert lines[1] == "counter/missing: no such stream; 1 LIST"
        assert len(list(store.list_keys("p/counter/a/"))) == 1


def _invoke(argv: list[str], store: ObjectStore | None = None) -> tuple[int, str, str]:
    """Run ``s3es`` on ``store``; its status, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    status = main(argv, store=store, out=out, err=err)
    return status, out.getvalue(), err.getvalue()


_ON = ["--bucket", "x", "--prefix", "p"]


def _corrupt(store: InMemoryObjectStore, stream_id: str, version: int) -> str:
    key = StreamKeys("p").chunk_key(StreamName("counter", stream_id), version)
    store.delete(key)
    store.put_if_absent(key, b"{not json")
    return key


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class TestList:
    def test_stream_types(self) -> None:
        """list prints the stream types, one a line; the requests line goes to stderr."""
        store = InMemoryObjectStore()
        _fill(store, "a", 1)
        status, out, err = _invoke(["list", *_ON], store)
        assert (status, out) == (0, "counter\n")
        assert err.startswith("requests: 1 LIST ($")

    def test_streams_of_a_type(self) -> None:
        """list TYPE prints the ids of its streams, for pipes: one LIST per 1,000 streams."""
        store = InMemoryObjectStore()
        for stream_id in ("b", "a"):
            _fill(store, stream_id, 1)
        status, out, err = _invoke(["list", "counter", *_ON], store)
        assert (status, out) == (0, "a\nb\n")
        assert err.startswith("requests: 1 LIST ($")

    def test_versions(self) -> None:
        """--versions adds a tab and each stream's latest version: 1 LIST + 1 GET per stream."""
        store = InMemoryObjectStore()
        _fill(store, "a", 3)
        _fill(store, "b", 2)
        delete(Repository(EventStore(store, prefix="p"), Counter), "b")
        status, out, err = _invoke(["list", "counter", "--versions", *_ON], store)
        assert (status, out) == (0, "a\t3\nb\t3 (deleted)\n")
        assert err.startswith("requests: 3 LIST + 2 GET ($")

    def test_versions_with_a_corrupt_chunk(self) -> None:
        """A stream whose latest chunk cannot be read is reported on stderr; exit status 1."""
        store = InMemoryObjectStore()
        _fill(store, "a", 1)
        _fill(store, "b", 1)
        key = _corrupt(store, "a", 1)
        status, out, err = _invoke(["list", "counter", "--versions", *_ON], store)
        assert (status, out) == (1, "b\t1\n")
        assert err.startswith(f"counter/a: corrupt chunk {key!r}: not UTF-8 JSON")


class TestShow:
    def test_table(self) -> None:
        """show prints the chunks a full read follows, then the events, then the requests."""
        store = InMemoryObjectStore()
        _fill(store, "a", 2)
        status, out, _ = _invoke(["show", "counter", "a", *_ON], store)
        assert status == 0
        lines = out.splitlines()
        assert lines[:4] == [
            "counter/a: chunks, under p/counter/a/",
            "KEY                               VERSION  CHUNK  BASE  EVENTS  SNAPSHOT  FLAGS",
            "99999999999999999997.999999.json  2        0      1     1       1",
            "99999999999999999998.999999.json  1        0      0     1       1",
        ]
        assert lines[5].split() == ["VERSION", "TYPE", "ID", "SCHEMA", "RECORDED_AT", "DATA"]
        assert lines[6].split()[:2] == ["1", "Incremented"]
        assert lines[7].split()[-1] == '{"amount":2}'
        assert lines[-1].startswith("requests: 1 LIST + 2 GET ($")

    def test_json_all_chunks(self) -> None:
        """--json --all-chunks: every chunk, the merged one flagged and read; the events once."""
        store = InMemoryObjectStore()
        _fill(store, "a", 3)
        compact(Repository(EventStore(store, prefix="p"), Counter), "a")
        status, out, _ = _invoke(["show", "counter", "a", "--json", "--all-chunks", *_ON], store)
        assert status == 0
        document = json.loads(out)
        assert document["stream"] == "counter/a"
        assert [(c["version"], c["chunk"], c["flags"]) for c in document["chunks"]] == [
            (3, 1, ["merged 1-3", "read"]),
            (3, 0, []),
            (2, 0, []),
            (1, 0, []),
        ]
        assert [(e["version"], e["type"], e["data"]) for e in document["events"]] == [
            (1, "Incremented", {"amount": 1}),
            (2, "Incremented", {"amount": 2}),
            (3, "Incremented", {"amount": 3}),
        ]
        assert document["requests"] == {"put": 0, "get": 4, "list": 1, "delete": 0}
        assert document["problems"] == []

    def test_deleted_stream(self) -> None:
        """A deleted stream says so; --all-chunks shows what is left: the tombstone."""
        store = InMemoryObjectStore()
        _fill(store, "a", 2)
        delete(Repository(EventStore(store, prefix="p"), Counter), "a")
        status, out, _ = _invoke(["show", "counter", "a", *_ON], store)
        assert status == 0
        assert (
            out.splitlines()[0] == "counter/a: deleted (tombstone at version 3), under p/counter/a/"
        )
        status, out, _ = _invoke(["show", "counter", "a", "--all-chunks", *_ON], store)
        assert status == 0
        assert out.splitlines()[2].split()[-1] == "tombstone"

    def test_no_such_stream(self) -> None:
        """A stream with no chunk is reported as such, exit status 0."""
        status, out, _ = _invoke(["show", "counter", "nope", *_ON], InMemoryObjectStore())
        assert status == 0
        assert out.splitlines()[0] == "counter/nope: no such stream (nothing under p/counter/nope/)"

    def test_corrupt_chunk(self) -> None:
        """A chunk that cannot be read: --all-chunks shows the others and names it (status 1);
        without it, the read stops with the error."""
        store = InMemoryObjectStore()
        _fill(store, "a", 2)
        key = _corrupt(store, "a", 1)
        status, out, _ = _invoke(["show", "counter", "a", "--all-chunks", *_ON], store)
        assert status == 1
        assert f"problem: counter/a: {key}: not UTF-8 JSON" in out
        assert "unreadable" in out
        status, _, err = _invoke(["show", "counter", "a", *_ON], store)
        assert status == 1
        assert err.startswith(f"s3es show: corrupt chunk {key!r}")

    def test_bad_stream_id(self) -> None:
        """A stream id that cannot be stored is an error naming it."""
        status, _, err = _invoke(["show", "counter", "..", *_ON], InMemoryObjectStore())
        assert status == 1
        assert "stream id (of stream type 'counter') must not be '..'" in err


class TestVerify:
    def test_sound(self) -> None:
        """A sound prefix: the summary and the requests, exit status 0."""
        store = InMemoryObjectStore()
        _fill(store, "a", 3)
        _fill(store, "b", 1)
        status, out, _ = _invoke(["verify", *_ON, "--aggregate", AGGREGATE], store)
        assert status == 0
        assert out.splitlines()[0] == (
            "verified 2 streams, 4 chunks, 4 events (2 snapshots compared with a full replay): "
            "no problem"
        )
        assert out.splitlines()[1].startswith("requests: 4 LIST + 4 GET ($")

    def test_corrupt(self) -> None:
        """One line per problem, naming stream and key, then the summary; exit status 1."""
        store = InMemoryObjectStore()
        _fill(store, "a", 2)
        _fill(store, "b", 2)
        key = _corrupt(store, "b", 2)
        status, out, _ = _invoke(["verify", "counter", *_ON], store)
        assert status == 1
        lines = out.splitlines()
        assert lines[0].startswith(f"problem: counter/b: {key}: not UTF-8 JSON")
        assert lines[1] == "verified 2 streams, 4 chunks, 3 events: 1 problem"

    def test_named_streams(self) -> None:
        """verify TYPE ID... reads only the streams named."""
        store = InMemoryObjectStore()
        _fill(store, "a", 2)
        _fill(store, "b", 5)
        status, out, _ = _invoke(["verify", "counter", "a", *_ON], store)
        assert status == 0
        assert out.splitlines()[0] == "verified 1 stream, 2 chunks, 2 events: no problem"

    def test_aggregate_of_another_type(self, capsys: pytest.CaptureFixture[str]) -> None:
        """An --aggregate whose type is not the STREAM_TYPE given is a usage error."""
        with pytest.raises(SystemExit) as raised:
            main(["verify", "order", *_ON, "--aggregate", AGGREGATE], store=InMemoryObjectStore())
        assert raised.value.code == 2
        assert "--aggregate gives stream types ['counter'], but STREAM_TYPE is 'order'" in (
            capsys.readouterr().err
        )

    def test_progress_on_a_terminal(self) -> None:
        """On a terminal, a progress bar is drawn on stderr; stdout keeps the report."""
        store = InMemoryObjectStore()
        _fill(store, "a", 1)
        out, err = io.StringIO(), _Terminal()
        assert main(["verify", *_ON], store=store, out=out, err=err) == 0
        assert err.getvalue().endswith(f"verify [{'#' * 30}] 1/1 streams\n")
        assert "verify [" not in out.getvalue()


class TestSelfTest:
    def test_passes(self) -> None:
        """Each check is printed, then the verdict and the requests; exit status 0."""
        status, out, _ = _invoke(["self-test", *_ON], InMemoryObjectStore())
        assert status == 0
        lines = out.splitlines()
        assert lines[0].startswith("self-test of bucket 'x', scratch key p/_selftest/")
        assert sum(line.startswith("  ok ") for line in lines) == 5
        assert lines[-2] == "bucket 'x' honours If-None-Match and If-Match: s3es can run on it"
        assert lines[-1].startswith("requests: 3 GET + 5 PUT + 1 DELETE ($")

    def test_fails(self) -> None:
        """A store that ignores If-None-Match fails with a message naming it; exit status 1."""
        status, out, _ = _invoke(["self-test", *_ON], IgnoresIfNoneMatch(InMemoryObjectStore()))
        assert status == 1
        assert "  FAILED If-None-Match: a second PUT of the key is refused" in out
        assert "bucket 'x' does NOT honour If-None-Match, so s3es must not run on it" in out

    def test_against_s3(self, embedded_s3: EmbeddedS3) -> None:
        """self-test --endpoint-url checks a real endpoint (moto here)."""
        embedded_s3.create_bucket("cli-self-test")
        argv = ["self-test", "--bucket", "cli-self-test", "--prefix", "prod"]
        argv += ["--endpoint-url", embedded_s3.endpoint_url, "--region", "us-east-1"]
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("AWS_ACCESS_KEY_ID", "testing")
            patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
            status, out, _ = _invoke(argv)
        assert status == 0, out
        assert "honours If-None-Match and If-Match" in out

    def test_missing_bucket(self, embedded_s3: EmbeddedS3) -> None:
        """A bucket that does not exist is an error naming the request that failed."""
        argv = ["self-test", "--bucket", "no-such-bucket", "--endpoint-url"]
        argv += [embedded_s3.endpoint_url, "--region", "us-east-1"]
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("AWS_ACCESS_KEY_ID", "testing")
            patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
            status, _, err = _invoke(argv)
        assert status == 1
        assert err.startswith("s3es self-test: PUT '_selftest/")
        assert "NoSuchBucket" in err


class TestPolicy:
    def test_all(self) -> None:
        """policy prints the three policies as one JSON document, sending no request."""
        status, out, _ = _invoke(["policy", "--bucket", "b-1", "--prefix", "p"])
        assert status == 0
        assert json.loads(out) == policies("b-1", "p")

    def test_only_one(self) -> None:
        """--only prints one policy, as put-bucket-policy takes it; options reach it."""
        argv = ["policy", "--bucket", "b-1", "--only", "bucket-policy"]
        status, out, _ = _invoke([*argv, "--operator-arn", "arn:aws:iam::1:role/op"])
        assert status == 0
        assert json.loads(out) == bucket_policy("b-1", operator_arns=["arn:aws:iam::1:role/op"])

    def test_bad_bucket(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A bucket name S3 would refuse is a usage error."""
        with pytest.raises(SystemExit) as raised:
            main(["policy", "--bucket", "Not_A_Bucket"])
        assert raised.value.code == 2
        assert "not an S3 bucket name: 'Not_A_Bucket'" in capsys.readouterr().err


PROJECTION = "tests.projections:AppliedIds"


class TestProjection:
    def test_status_before_and_after(self) -> None:
        """status shows the stored model and the lease; catch-up runs one pass and releases."""
        store = InMemoryObjectStore()
        _fill(store, "a", 2)
        _fill(store, "b", 1)
        status, out, _ = _invoke(["projection", "status", *_ON, "--projection", PROJECTION], store)
        assert status == 0
        assert "schema 1, epoch 0, NOT complete, updated never" in out
        assert "lease: none" in out
        assert out.endswith("requests: 2 GET ($0.000001)\n")
        status, out, _ = _invoke(
            ["projection", "catch-up", *_ON, "--projection", PROJECTION], store
        )
        assert status == 0
        assert "catch-up by a full scan: 3 events of 2 streams applied, 2 commits" in out
        assert "2 streams in the model, epoch 1" in out
        status, out, _ = _invoke(["projection", "status", *_ON, "--projection", PROJECTION], store)
        assert "schema 1, epoch 1, complete" in out
        assert "streams in the model: 2, versions applied: 3" in out
        assert "lease: released by " in out

    def test_rebuild_with_progress(self) -> None:
        """rebuild starts from nothing under a new epoch, drawing its progress on stderr."""
        store = InMemoryObjectStore()
        _fill(store, "a", 2)
        _invoke(["projection", "catch-up", *_ON, "--projection", PROJECTION], store)
        out, err = io.StringIO(), _Terminal()
        status = main(
            ["projection", "rebuild", *_ON, "--projection", PROJECTION],
            store=store,
            out=out,
            err=err,
        )
        assert status == 0
        assert "rebuild by a full scan: 2 events of 1 streams applied" in out.getvalue()
        assert "epoch 2" in out.getvalue()
        assert "1/1 streams" in err.getvalue()

    def test_lease_held(self) -> None:
        """A projector holding the lease makes catch-up and rebuild fail, naming it; --force
        rebuilds anyway."""
        store = InMemoryObjectStore()
        _fill(store, "a", 1)
        Projector(EventStore(store, prefix="p"), AppliedIds, owner="daemon").catch_up()
        for action in ("catch-up", "rebuild"):
            status, _, err = _invoke(
                ["projection", action, *_ON, "--projection", PROJECTION], store
            )
            assert status == 1
            assert "is run by 'daemon' (epoch 1)" in err
        argv = ["projection", "rebuild", *_ON, "--projection", PROJECTION, "--force"]
        assert _invoke(argv, store)[0] == 0

    def test_catch_up_over_the_feed(self) -> None:
        """catch-up --feed lists the change feed (one LIST) instead of every stream."""
        store = InMemoryObjectStore()
        writer = CommandHandler(Repository(EventStore(store, prefix="p", feed=True), Counter))
        for stream_id in ("a", "b", "c"):
            writer.handle(stream_id, Increment(1))
        argv = ["projection", "catch-up", *_ON, "--projection", PROJECTION, "--feed"]
        # The model has no feed cursor yet: the first catch-up scans, and sets it.
        assert "by a full scan: 3 events" in _invoke(argv, store)[1]
        writer.handle("b", Increment(2))
        status, out, _ = _invoke(argv, store)
        assert status == 0
        assert "catch-up by the change feed: 1 events of 1 streams applied" in out
        assert "requests: 2 LIST + 3 GET + 4 PUT" in out

    @pytest.mark.parametrize(
        ("spec", "message"),
        [
            ("nocolon", "--projection must be module:Class"),
            ("tests.aggregates:Counter", "has no Projection 'Counter'"),
        ],
    )
    def test_bad_projection(
        self, spec: str, message: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A --projection that is not one is a usage error naming it."""
        with pytest.raises(SystemExit) as raised:
            main(["projection", "status", *_ON, "--projection", spec], store=InMemoryObjectStore())
        assert raised.value.code == 2
        assert message in capsys.readouterr().err


class TestHelp:
    @pytest.mark.parametrize("command", [c.name for c in SUBCOMMANDS])
    def test_each_subcommand(self, command: str, capsys: pytest.CaptureFixture[str]) -> None:
        """Every subcommand's --help prints its usage and its description, and exits 0."""
        with pytest.raises(SystemExit) as raised:
            main([command, "--help"])
        assert raised.value.code == 0
        text = capsys.readouterr().out
        assert text.startswith(f"usage: s3es {command} ")
        description = next(c.description for c in SUBCOMMANDS if c.name == command)
        assert description.split()[0] in text

    def test_top_level_lists_every_subcommand(self, capsys: pytest.CaptureFixture[str]) -> None:
        """s3es --help names every subcommand with its one-line help."""
        with pytest.raises(SystemExit):
            main(["--help"])
        text = " ".join(capsys.readouterr().out.split())
        for command in SUBCOMMANDS:
            assert f"{command.name} {command.help.split()[0]}" in text


class TestEncryption:
    def test_sse_kms_key_id_reaches_put_object(self, embedded_s3: EmbeddedS3) -> None:
        """--sse-kms-key-id encrypts what the command writes (a merged chunk) with that key."""
        embedded_s3.create_bucket("cli-kms")
        _fill(embedded_s3.object_store("cli-kms"), "s", 2)
        key_arn = "arn:aws:kms:us-east-1:111122223333:key/cli"
        argv = ["compact", "--aggregate", AGGREGATE, "--bucket", "cli-kms", "--prefix", "p"]
        argv += ["--endpoint-url", embedded_s3.endpoint_url, "--region", "us-east-1"]
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("AWS_ACCESS_KEY_ID", "testing")
            patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
            status, out, _ = _invoke([*argv, "--sse-kms-key-id", key_arn, "s"])
        assert status == 0, out
        merged = StreamKeys("p").chunk_key(StreamName("counter", "s"), 2, 1)
        head = embedded_s3.client().head_object(Bucket="cli-kms", Key=merged)
        assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", key_arn)
