"""Commands through a fault-injecting proxy in front of moto: each fault alone, then at random.

S3ObjectStore talks to moto's server through s3es.testing.FaultProxy, which loses answers after
the request landed, resets connections before it does, answers 409 ConditionalRequestConflict,
503 SlowDown and 500 InternalError, and holds answers past the client's read timeout. A chunk
corrupted on disk is written to moto directly, without condition. Whatever the faults, every
command must either be stored exactly once or fail with an s3es error naming the key, nothing
acknowledged may be lost, and the stream must stay readable (a load equals a full replay),
except that a corrupted chunk makes the reads that need it fail with CorruptChunk naming it.

Retries stack up: botocore's standard mode (3 attempts, as S3ObjectStore.connect sets it) retries
connection errors, timeouts, 500 and 503; S3ObjectStore retries 409 and 503 answers itself (5
attempts), so a 503 burst must last 15 requests to fail a call. botocore sleeps up to 1 s between
throttled attempts and 50 ms between others; the module scales those sleeps down to milliseconds.
tests/test_fault_injection.py reproduces the lost answer with a botocore hook instead, and checks
the request counts of each recovery path.
"""

from __future__ import annotations

import collections
import itertools
import json
import threading
from collections.abc import Callable, Iterator

import attrs
import boto3
import pytest
from botocore.config import Config
from botocore.retries.standard import ExponentialBackoff
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from s3es import (
    Backoff,
    CommandHandler,
    CommandResult,
    CorruptChunk,
    EventStore,
    ObjectStoreError,
    Repository,
    RetriesExhausted,
    S3ObjectStore,
    StreamName,
)
from s3es._eventstore.chunk import decode_chunk
from s3es.errors import AppendOutcomeUnknown
from s3es.eventstore import StreamKeys
from s3es.testing.embedded_s3 import EmbeddedS3
from s3es.testing.faultproxy import Fault, FaultProxy, Rule, Seen
from tests.aggregates import FAST_RETRY, Counter, CounterCommand, CounterEvent, CounterState
from tests.aggregates import Increment as Add
from tests.soak.plan import BURSTS, WRITERS

BUCKET = "faults"
STREAM_ID = "c-1"
STREAM = StreamName("counter", STREAM_ID)
#: The client's read timeout where a test holds answers back: what a DELAY costs.
SHORT_READ_TIMEOUT = 0.5
#: S3ObjectStore's own pauses between 409/503 retries: a millisecond or so.
QUICK = Backoff(initial=0.001, maximum=0.004)
#: Schedules the property draws per run (derandomized: the same ones every run), besides
#: the explicit examples.
SCHEDULES = 25

Handler = CommandHandler[CounterState, CounterCommand, CounterEvent]
Result = CommandResult[CounterState, CounterEvent]

_prefixes = itertools.count()


@pytest.fixture(scope="module", autouse=True)
def quick_botocore_backoff() -> Iterator[None]:
    """Scale botocore's retry sleeps (up to 1 s after a 503 SlowDown) down to milliseconds."""
    config: dict[str, float] = vars(ExponentialBackoff)["_DEFAULT_BACKOFF_CONFIG"]
    saved = dict(config)
    assert set(saved) == {"throttling_base_scale", "non_throttling_base_scale"}
    config.update(throttling_base_scale=0.002, non_throttling_base_scale=0.002)
    yield
    config.clear()
    config.update(saved)


@pytest.fixture(scope="module")
def proxy(embedded_s3: EmbeddedS3) -> Iterator[FaultProxy]:
    """The fault proxy in front of the embedded moto server, stopped after the module."""
    with FaultProxy(embedded_s3.endpoint_url) as running:
        yield running


@pytest.fixture(scope="module")
def direct(embedded_s3: EmbeddedS3) -> S3ObjectStore:
    """The module's bucket without the proxy: to check what is stored, and to corrupt it."""
    embedded_s3.create_bucket(BUCKET)
    return embedded_s3.object_store(BUCKET)


@pytest.fixture(scope="module")
def session() -> boto3.Session:
    """One boto3 session for the module's clients (making one costs 0.16 s)."""
    return boto3.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto accepts any
        region_name="us-east-1",
    )


class Rig:
    """Writers on one stream under a prefix of their own, through the proxy; checks direct."""

    def __init__(
        self,
        proxy: FaultProxy,
        direct: S3ObjectStore,
        session: boto3.Session,
        *,
        writers: int = 1,
        read_timeout: float = 20,
    ) -> None:
        self.proxy = proxy
        self.direct = direct
        self.prefix = f"run-{next(_prefixes)}"
        self.store = S3ObjectStore.connect(
            BUCKET,
            endpoint_url=proxy.endpoint_url,
            session=session,
            client_config=Config(read_timeout=read_timeout, connect_timeout=2),
            backoff=QUICK,
        )
        # Each writer is a process of its own: its own handler, and so its own cache.
        self.writers: list[Handler] = [
            CommandHandler(
                Repository(EventStore(self.store, prefix=self.prefix), Counter), FAST_RETRY
            )
            for _ in range(writers)
        ]
        self.events = EventStore(direct, prefix=self.prefix)
        self.repository = Repository(self.events, Counter)

    def close(self) -> None:
        """Close the client's connections to the proxy."""
        self.store.client.close()

    def keys(self) -> list[str]:
        """The stream's chunk keys, newest first, read directly."""
        return list(self.direct.list_keys(self.events.keys.stream_prefix(STREAM)))

    def stored(self) -> list[tuple[str, str, int]]:
        """(command tag, event id, version) of the event of each chunk, oldest first."""
        return [
            (chunk.events[0].metadata["command"], chunk.events[0].id, chunk.version)
            for chunk in self.events.chunks(STREAM)
        ]

    def corrupt(self, key: str, how: str) -> bytes:
        """Overwrite ``key`` in moto, without condition, with ``how`` applied to its body."""
        stored = self.direct.get(key)
        assert stored is not None
        self.direct.client.put_object(Bucket=BUCKET, Key=key, Body=CORRUPTIONS[how](stored.body))
        return stored.body


def _other_stream(body: bytes) -> bytes:
    document = json.loads(body)
    document["stream_id"] = "someone-else"
    return json.dumps(document).encode()


def _missing_events(body: bytes) -> bytes:
    document = json.loads(body)
    del document["events"]
    return json.dumps(document).encode()


#: Ways a chunk can be damaged on disk; each must make it unreadable, never misread.
CORRUPTIONS: dict[str, Callable[[bytes], bytes]] = {
    "not-utf8": lambda body: b"\xff\xfe" + body,
    "truncated": lambda body: body[: len(body) // 2],
    "empty": lambda _body: b"",
    "other-stream": _other_stream,
    "missing-events": _missing_events,
    "deeply-nested": lambda _body: b"[" * 100_000 + b"]" * 100_000,
}


def _operations(seen: list[Seen]) -> list[tuple[str, str | None]]:
    return [(s.operation, s.fault.name if s.fault else None) for s in seen]


class TestEachFault:
    """Each fault alone, on a command's PUT (or LIST), and what the command makes of it."""

    @pytest.fixture
    def rig(
        self, proxy: FaultProxy, direct: S3ObjectStore, session: boto3.Session
    ) -> Iterator[Rig]:
        made = Rig(proxy, direct, session)
        yield made
        proxy.disarm()
        made.close()

    def test_lost_answer(self, rig: Rig) -> None:
        """An answer lost after the PUT landed: botocore re-sends it, meets our chunk (412),
        and the read-back finds our append id: handled once, recovered."""
        rig.proxy.arm([Rule(Fault.DROP_RESPONSE, "PUT", 0)])
        result = rig.writers[0].handle(STREAM_ID, Add(5), metadata={"command": "a"})
        seen = rig.proxy.disarm()
        assert (result.version, result.recovered, result.state.total) == (1, True, 5)
        assert _operations(seen) == [
            ("LIST", None),
            ("PUT", "DROP_RESPONSE"),
            ("PUT", None),
            ("GET", None),
        ]
        assert rig.stored() == [("a", result.recorded[0].id, 1)]

    def test_answer_too_late(
        self, proxy: FaultProxy, direct: S3ObjectStore, session: boto3.Session
    ) -> None:
        """An answer held past the client's read timeout: the same recovery as a lost one."""
        rig = Rig(proxy, direct, session, read_timeout=SHORT_READ_TIMEOUT)
        try:
            proxy.arm([Rule(Fault.DELAY, "PUT", 0)])
            result = rig.writers[0].handle(STREAM_ID, Add(5), metadata={"command": "a"})
            seen = proxy.disarm()
        finally:
            rig.close()
        assert (result.version, result.recovered) == (1, True)
        assert ("PUT", "DELAY") in _operations(seen)
        assert rig.stored() == [("a", result.recorded[0].id, 1)]

    def test_reset_before_landing(self, rig: Rig) -> None:
        """Connections reset before the PUT lands, on every botocore attempt: the read-back
        finds nothing, so the command fails with an ObjectStoreError naming the key, and
        nothing is stored. The next command stores version 1."""
        rig.proxy.arm([Rule(Fault.RESET, "PUT", 0, times=3)])
        with pytest.raises(ObjectStoreError) as raised:
            rig.writers[0].handle(STREAM_ID, Add(5))
        seen = rig.proxy.disarm()
        assert not isinstance(raised.value, AppendOutcomeUnknown)
        key = rig.events.keys.chunk_key(STREAM, 1)
        assert (raised.value.operation, raised.value.key) == ("PUT", key)
        assert _operations(seen)[1:] == [("PUT", "RESET")] * 3 + [("GET", None)]
        assert rig.keys() == []
        assert rig.writers[0].handle(STREAM_ID, Add(1)).version == 1

    def test_conflict_409(self, rig: Rig) -> None:
        """409 ConditionalRequestConflict is re-sent by S3ObjectStore (botocore does not): the
        command succeeds at its first decision, with no read-back."""
        rig.proxy.arm([Rule(Fault.CONFLICT, "PUT", 0, times=4)])
        result = rig.writers[0].handle(STREAM_ID, Add(5), metadata={"command": "a"})
        seen = rig.proxy.disarm()
        assert (result.version, result.recovered, result.attempts) == (1, False, 1)
        assert _operations(seen)[1:] == [("PUT", "CONFLICT")] * 4 + [("PUT", None)]
        assert rig.stored() == [("a", result.recorded[0].id, 1)]

    @pytest.mark.parametrize(
        ("fault", "survived", "failed", "code"),
        [
            (Fault.SLOW_DOWN, 14, 15, "SlowDown"),
            (Fault.INTERNAL_ERROR, 2, 3, "InternalError"),
            (Fault.CONFLICT, 4, 5, "ConditionalRequestConflict"),
        ],
    )
    def test_error_bursts(
        self, rig: Rig, fault: Fault, survived: int, failed: int, code: str
    ) -> None:
        """A burst one answer shorter than the retries allow is absorbed; a burst as long
        fails the command with an ObjectStoreError naming the key and S3's error code, and
        nothing is stored. 503: 3 botocore attempts x 5 adapter attempts; 500: botocore's 3;
        409: the adapter's 5."""
        rig.proxy.arm([Rule(fault, "PUT", 0, times=survived)])
        assert rig.writers[0].handle(STREAM_ID, Add(1)).version == 1
        rig.proxy.arm([Rule(fault, "PUT", 0, times=failed)])
        with pytest.raises(ObjectStoreError) as raised:
            rig.writers[0].handle(STREAM_ID, Add(1))
        seen = rig.proxy.disarm()
        assert raised.value.key == rig.events.keys.chunk_key(STREAM, 2)
        assert code in raised.value.detail
        assert [s.operation for s in seen] == ["PUT"] * failed + ["GET"]
        assert len(rig.keys()) == 1

    def test_outcome_unknown(self, rig: Rig) -> None:
        """The PUT landed, every answer was lost, and reading the key back failed too:
        AppendOutcomeUnknown. The chunk is there once, and the stream goes on from it."""
        rig.proxy.arm(
            [
                Rule(Fault.DROP_RESPONSE, "PUT", 0),
                Rule(Fault.RESET, "PUT", 1, times=2),
                Rule(Fault.RESET, "GET", 0, times=3),
            ]
        )
        with pytest.raises(AppendOutcomeUnknown) as raised:
            rig.writers[0].handle(STREAM_ID, Add(5), metadata={"command": "a"})
        rig.proxy.disarm()
        assert raised.value.key == rig.events.keys.chunk_key(STREAM, 1)
        assert [tag for tag, _, _ in rig.stored()] == ["a"]
        # The failed command left nothing in the writer's cache: it loads version 1.
        result = rig.writers[0].handle(STREAM_ID, Add(1), metadata={"command": "b"})
        assert (result.version, result.state.total, result.attempts) == (2, 6, 1)

    def test_list_fails(self, rig: Rig) -> None:
        """A load whose LIST keeps failing: ObjectStoreError naming the stream's prefix."""
        rig.proxy.arm([Rule(Fault.INTERNAL_ERROR, "LIST", 0, times=3)])
        with pytest.raises(ObjectStoreError) as raised:
            rig.writers[0].handle(STREAM_ID, Add(5))
        assert (raised.value.operation, raised.value.key) == (
            "LIST",
            rig.events.keys.stream_prefix(STREAM),
        )
        assert rig.keys() == []

    def test_rule_under_a_prefix(self, rig: Rig) -> None:
        """A rule with a prefix counts and hits only that stream's requests (a LIST's key is
        its prefix): the other stream's commands pass, this one's PUTs are reset."""
        other = StreamName("counter", "c-2")
        prefix = rig.events.keys.stream_prefix(other)
        rig.proxy.arm([Rule(Fault.RESET, "*", 1, times=3, prefix=prefix)])
        assert rig.writers[0].handle(STREAM_ID, Add(1)).version == 1
        with pytest.raises(ObjectStoreError) as raised:
            rig.writers[0].handle(other.id, Add(1))
        seen = rig.proxy.disarm()
        assert raised.value.key == rig.events.keys.chunk_key(other, 1)
        assert [(s.operation, s.key.startswith(prefix)) for s in seen if s.fault] == [
            ("PUT", True)
        ] * 3
        assert [s.key for s in seen if s.operation == "LIST"] == [
            rig.events.keys.stream_prefix(STREAM),
            prefix,
        ]

    def test_wait_held(
        self, proxy: FaultProxy, direct: S3ObjectStore, session: boto3.Session
    ) -> None:
        """wait_held returns a DELAYed PUT once the server has answered it (status 200) and
        its answer is held; the writer, which waits meanwhile, then recovers its append."""
        rig = Rig(proxy, direct, session, read_timeout=SHORT_READ_TIMEOUT)
        results: list[Result] = []
        try:
            proxy.arm([Rule(Fault.DELAY, "PUT", 0)])
            assert proxy.wait_held(0) is None
            writer = threading.Thread(
                target=lambda: results.append(rig.writers[0].handle(STREAM_ID, Add(5)))
            )
            writer.start()
            held = proxy.wait_held(30)
            writer.join()
            proxy.disarm()
        finally:
            rig.close()
        assert held is not None
        assert (held.operation, held.key, held.status, held.fault) == (
            "PUT",
            rig.events.keys.chunk_key(STREAM, 1),
            200,
            Fault.DELAY,
        )
        assert [(r.version, r.recovered) for r in results] == [(1, True)]

    @pytest.mark.parametrize("how", sorted(CORRUPTIONS))
    def test_corrupted_chunk(self, rig: Rig, how: str) -> None:
        """A chunk damaged on disk: a replay fails with CorruptChunk naming its key, a load
        too once it is the latest chunk, and no other chunk is lost."""
        handler = rig.writers[0]
        for amount in (1, 2, 3):
            handler.handle(STREAM_ID, Add(amount), metadata={"command": str(amount)})
        newest, middle, oldest = rig.keys()
        rig.corrupt(middle, how)
        with pytest.raises(CorruptChunk) as raised:
            rig.repository.replay(STREAM_ID)
        assert raised.value.key == middle
        assert rig.repository.load(STREAM_ID).state == CounterState(total=6, events=3)
        rig.corrupt(newest, how)
        with pytest.raises(CorruptChunk) as raised:
            rig.repository.load(STREAM_ID)
        assert raised.value.key == newest
        stored = rig.direct.get(oldest)
        assert stored is not None
        chunk = decode_chunk(rig.events.keys.parse(STREAM, oldest), stored.body)
        assert chunk.events[0].metadata == {"command": "1"}


# Random fault schedules


@attrs.frozen
class Corruption:
    """After command ``after``, damage the stored chunk ``pick`` (modulo their number)."""

    after: int
    pick: int
    how: str


@attrs.frozen
class Plan:
    """A fault schedule for the proxy, the commands the writers send, and a corruption."""

    rules: tuple[Rule, ...]
    #: (writer, amount) of each command, in the order they are sent.
    commands: tuple[tuple[int, int], ...]
    corruption: Corruption | None


#: Faults drawn for a rule, the cheap ones more often: each DELAY costs a read timeout.
_DRAWN = [
    Fault.DROP_RESPONSE,
    Fault.DROP_RESPONSE,
    Fault.RESET,
    Fault.RESET,
    Fault.CONFLICT,
    Fault.SLOW_DOWN,
    Fault.INTERNAL_ERROR,
    Fault.DELAY,
]


@st.composite
def rules(draw: st.DrawFn) -> Rule:
    """One rule: a fault, the requests it hits, and for how many requests in a row."""
    fault = draw(st.sampled_from(_DRAWN))
    return Rule(
        fault,
        draw(st.sampled_from(["PUT", "PUT", "GET", "LIST", "*"])),
        draw(st.integers(min_value=0, max_value=3)),
        draw(st.integers(min_value=1, max_value=BURSTS[fault])),
    )


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    """Up to four rules, one to four commands by up to three writers, a corruption at times."""
    commands = draw(
        st.lists(
            st.tuples(
                st.integers(min_value=0, max_value=WRITERS - 1),
                st.integers(min_value=1, max_value=9),
            ),
            min_size=1,
            max_size=4,
        )
    )
    corruption = None
    if draw(st.integers(min_value=0, max_value=3)) == 0:
        corruption = Corruption(
            after=draw(st.integers(min_value=0, max_value=len(commands) - 1)),
            pick=draw(st.integers(min_value=0, max_value=4)),
            how=draw(st.sampled_from(sorted(CORRUPTIONS))),
        )
    return Plan(tuple(draw(st.lists(rules(), max_size=4))), tuple(commands), corruption)


@attrs.frozen
class Outcome:
    """What one command came to: its result, or the s3es error it raised."""

    tag: str
    amount: int
    result: Result | None
    error: ObjectStoreError | RetriesExhausted | CorruptChunk | None


@attrs.frozen
class Damage:
    """The chunk a plan corrupted: its key, and the command whose chunk it was."""

    key: str
    tag: str
    amount: int


@attrs.define
class Tally:
    """What the schedules tried so far came to, for the report."""

    schedules: int = 0
    fired: collections.Counter[str] = attrs.field(factory=collections.Counter)
    outcomes: collections.Counter[str] = attrs.field(factory=collections.Counter)


def run_plan(rig: Rig, plan: Plan) -> tuple[list[Outcome], list[Seen], Damage | None]:
    """Send the plan's commands through the armed proxy; corrupt a chunk where it says."""
    outcomes, damage = [], None
    rig.proxy.arm(plan.rules)
    try:
        for index, (writer, amount) in enumerate(plan.commands):
            tag = f"c{index}"
            try:
                result = rig.writers[writer].handle(
                    STREAM_ID, Add(amount), metadata={"command": tag}
                )
            except (ObjectStoreError, RetriesExhausted, CorruptChunk) as error:
                outcomes.append(Outcome(tag, amount, None, error))
            else:
                outcomes.append(Outcome(tag, amount, result, None))
            corruption = plan.corruption
            if corruption is not None and corruption.after == index and (keys := rig.keys()):
                key = keys[corruption.pick % len(keys)]
                body = rig.corrupt(key, corruption.how)
                original = decode_chunk(rig.events.keys.parse(STREAM, key), body)
                tag = original.events[0].metadata["command"]
                damage = Damage(key, tag, next(o.amount for o in outcomes if o.tag == tag))
    finally:
        seen = rig.proxy.disarm()
    return outcomes, seen, damage


def _stored(rig: Rig, damage: Damage | None) -> tuple[list[str], dict[str, tuple[str, int]]]:
    """The stream's keys (checked gapless), and the (event id, version) stored per command.

    Without damage the events come from a full replay's reads; with it, from every chunk but
    the damaged one, read one by one.
    """
    keys = rig.keys()
    where = [rig.events.keys.parse(STREAM, key) for key in keys]
    # Gapless: chunk 0 of each version 1..n, newest first (nothing here re-snapshots).
    assert [(w.version, w.number) for w in where] == [(v, 0) for v in range(len(keys), 0, -1)]
    if damage is None:
        stored = {r.metadata["command"]: (r.id, r.version) for r in rig.repository.read(STREAM_ID)}
    else:
        stored = {}
        for w in where:
            if w.key != damage.key:
                body = rig.direct.get(w.key)
                assert body is not None
                (record,) = decode_chunk(w, body.body).events
                stored[record.metadata["command"]] = (record.id, w.version)
    # One chunk per command at most, and one event per chunk.
    assert len(stored) + (damage is not None) == len(keys)
    return keys, stored


def _check_each(
    outcomes: list[Outcome],
    stored: dict[str, tuple[str, int]],
    damage: Damage | None,
    *,
    late_landing_possible: bool,
) -> None:
    """Acknowledged: stored once, as acknowledged. Failed: an s3es error naming the key, and
    nothing stored unless the outcome was left unknown."""
    stored_tags = set(stored) | ({damage.tag} if damage else set())
    stream_prefix = StreamKeys("").stream_prefix(STREAM)
    for outcome in outcomes:
        error = outcome.error
        if outcome.result is not None:
            (event,) = outcome.result.recorded
            if damage is None or outcome.tag != damage.tag:
                assert stored[outcome.tag] == (event.id, outcome.result.version)
        elif isinstance(error, AppendOutcomeUnknown):
            continue  # stored or not: at most once
        elif isinstance(error, ObjectStoreError):
            assert f"/{stream_prefix}" in f"/{error.key}"
            assert repr(error.key) in str(error)
            # A PUT the server answered after the client gave up (the proxy saw it: ``late``)
            # may have landed after the read-back looked: stored, yet reported failed.
            assert late_landing_possible or outcome.tag not in stored_tags
        else:
            assert outcome.tag not in stored_tags, f"{outcome.tag} failed ({error}) but is stored"
            if isinstance(error, CorruptChunk):
                assert damage is not None
                assert error.key == damage.key
            else:
                assert isinstance(error, RetriesExhausted)
                assert error.stream == STREAM


def _check_readable(
    rig: Rig, keys: list[str], expected: CounterState, damage: Damage | None
) -> None:
    """A load equals the full replay; with a damaged chunk, the reads that need it name it."""
    if damage is None:
        loaded = rig.repository.load(STREAM_ID)
        assert (loaded.version, loaded.state) == (len(keys), expected)
        assert rig.repository.replay(STREAM_ID) == loaded
        return
    with pytest.raises(CorruptChunk) as raised:
        rig.repository.replay(STREAM_ID)
    assert raised.value.key == damage.key
    if keys[0] == damage.key:
        with pytest.raises(CorruptChunk) as raised:
            rig.repository.load(STREAM_ID)
        assert raised.value.key == damage.key
    else:  # the later snapshots were made without reading the damaged chunk
        assert rig.repository.load(STREAM_ID).state == expected


def check_outcomes(
    rig: Rig, outcomes: list[Outcome], seen: list[Seen], damage: Damage | None
) -> None:
    """Exactly once for what was acknowledged, nothing for what failed for sure, readable."""
    keys, stored = _stored(rig, damage)
    _check_each(
        outcomes,
        stored,
        damage,
        late_landing_possible=any(s.late and s.operation == "PUT" for s in seen),
    )
    amounts = {o.tag: o.amount for o in outcomes}
    stored_tags = set(stored) | ({damage.tag} if damage else set())
    expected = CounterState(total=sum(amounts[tag] for tag in stored_tags), events=len(stored_tags))
    _check_readable(rig, keys, expected, damage)


#: Three writers' commands, in turn: each writer's first command loads the stream, its next
#: ones decide on a stale cached state, lose the version to another writer and catch up.
_TAKING_TURNS = ((0, 1), (1, 2), (2, 3), (0, 4))
#: A burst that outlasts the retries of both botocore and S3ObjectStore, per fault.
_FAILING_BURSTS = {
    Fault.DROP_RESPONSE: 1,  # only the first answer is lost: recovered
    Fault.RESET: 3,
    Fault.CONFLICT: 5,
    Fault.SLOW_DOWN: 15,
    Fault.INTERNAL_ERROR: 3,
    Fault.DELAY: 1,  # only the first answer is late: recovered
}


def _each_fault_once(test: Callable[[Plan], None]) -> Callable[[Plan], None]:
    """Explicit examples: each fault on the first PUT, and a chunk corrupted mid-stream."""
    for fault, times in _FAILING_BURSTS.items():
        test = example(Plan((Rule(fault, "PUT", 0, times),), _TAKING_TURNS, None))(test)
    corruption = Corruption(after=1, pick=1, how="deeply-nested")
    return example(Plan((), _TAKING_TURNS, corruption))(test)


def test_random_fault_schedules(
    proxy: FaultProxy,
    direct: S3ObjectStore,
    session: boto3.Session,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Under random fault schedules, three writers' commands are each stored exactly once or
    fail with an s3es error naming the key; nothing acknowledged is lost; the stream stays
    readable, but for a corrupted chunk, which reads name. Every fault fires in some schedule."""
    tally = Tally()

    @settings(
        max_examples=SCHEDULES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(plan=plans())
    @_each_fault_once
    def schedule(plan: Plan) -> None:
        rig = Rig(proxy, direct, session, writers=WRITERS, read_timeout=SHORT_READ_TIMEOUT)
        try:
            outcomes, seen, damage = run_plan(rig, plan)
        finally:
            rig.close()
        check_outcomes(rig, outcomes, seen, damage)
        tally.schedules += 1
        fired = {s.fault.name for s in seen if s.fault is not None}
        tally.fired.update(fired | ({"CORRUPTED"} if damage else set()))
        for outcome in outcomes:
            kind = (
                type(outcome.error).__name__
                if outcome.error is not None
                else ("recovered" if outcome.result and outcome.result.recovered else "stored")
            )
            tally.outcomes[kind] += 1
            event(kind)
        for name in sorted(fired):
            event(f"fault fired: {name}")

    schedule()
    assert tally.schedules >= SCHEDULES // 2
    assert set(tally.fired) == {fault.name for fault in Fault} | {"CORRUPTED"}
    assert tally.outcomes["recovered"] > 0
    with capsys.disabled():  # the number of schedules tried is part of the report
        print(  # noqa: T201
            f"\nfault schedules tried: {tally.schedules}; schedules in which each fault fired: "
            f"{dict(sorted(tally.fired.items()))}; commands: {dict(sorted(tally.outcomes.items()))}"
        )
