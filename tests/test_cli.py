"""The ``s3es`` command: compaction from the command line."""

from __future__ import annotations

import io

import pytest

from s3es import CommandHandler, EventStore, InMemoryObjectStore, ObjectStore, Repository
from s3es._cli import load_aggregate, main
from s3es.testing.embedded_s3 import EmbeddedS3
from tests.aggregates import Counter, CounterState, Increment

AGGREGATE = "tests.aggregates:Counter"


def _fill(store: ObjectStore, stream_id: str, commands: int) -> None:
    handler = CommandHandler(Repository(EventStore(store, prefix="p"), Counter))
    for amount in range(1, commands + 1):
        handler.handle(stream_id, Increment(amount))


def _run(argv: list[str], store: InMemoryObjectStore | None = None) -> tuple[int, str]:
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
