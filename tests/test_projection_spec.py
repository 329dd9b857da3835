"""ProjectionSpec: given events of several streams, then documents, on any read-model store."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar

import attrs
import pytest

from s3es import RecordedEvent, StreamName
from s3es.projections import DocumentProjection
from s3es.readmodels import ReadModelStore, S3ReadModelStore, SQLiteReadModelStore
from s3es.storage import ObjectStore
from s3es.testing import ProjectionSpec
from tests.aggregates import Counter, Decremented, Incremented


@attrs.frozen
class Total:
    """A counter's total, and how many events made it."""

    total: int = 0
    events: int = 0


class Totals(DocumentProjection[Total]):
    """One total per counter, and one over every counter ("all")."""

    NAME = "totals"
    SOURCES: ClassVar[tuple[type[Counter]]] = (Counter,)

    def document_ids(self, event: RecordedEvent[Any]) -> Iterable[str]:
        """The counter's own document and the grand total."""
        return (event.stream.id, "all")

    def initial_state(self, key: str) -> Total:
        """Nothing counted."""
        return Total()

    def evolve(self, document: Total, event: RecordedEvent[Any]) -> Total:
        """The total after the event."""
        change = event.event.amount
        if isinstance(event.event, Decremented):
            change = -change
        return Total(document.total + change, document.events + 1)


@pytest.fixture(params=["s3", "sqlite"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Callable[[ObjectStore], ReadModelStore]:
    """Each store the specification runs on."""
    if request.param == "s3":
        return S3ReadModelStore
    paths = iter(tmp_path / f"spec-{n}.db" for n in range(1_000))
    return lambda _: SQLiteReadModelStore(next(paths))


def test_given_events_of_several_streams_then_the_documents(
    store: Callable[[ObjectStore], ReadModelStore],
) -> None:
    """The documents of every stream, on each store, before and after a rebuild."""
    spec = ProjectionSpec(Totals, store=store)
    documents = spec.given(
        ("a", Incremented(5)),
        ("b", Incremented(2)),
        (StreamName("counter", "a"), Decremented(1)),
    ).then({"a": Total(4, 2), "b": Total(2, 1), "all": Total(6, 3)})
    assert documents["all"] == Total(6, 3)
    assert spec.given(("a", Incremented(1))).then_document("b", None) is None


def test_a_wrong_expectation_names_each_document_that_differs() -> None:
    """Missing, unexpected and different documents are all named."""
    given = ProjectionSpec(Totals).given(("a", Incremented(5)))
    with pytest.raises(AssertionError) as raised:
        given.then({"a": Total(5, 2), "c": Total()})
    message = str(raised.value)
    assert "'a': Total(total=5, events=1), not Total(total=5, events=2)" in message
    assert "'c': missing" in message
    assert "'all': not expected" in message
    with pytest.raises(AssertionError, match=r"document 'a' is Total\(total=5, events=1\)"):
        given.then_document("a", Total(1, 1))


def test_an_apply_that_is_not_a_function_of_its_inputs_fails_at_the_rebuild() -> None:
    """A rebuild must give the same documents: an apply reading a global does not."""
    calls = []

    class Impure(Totals):
        def evolve(self, document: Total, event: RecordedEvent[Any]) -> Total:
            calls.append(event.id)
            return Total(len(calls), document.events + 1)

    with pytest.raises(AssertionError, match="after a rebuild differ"):
        ProjectionSpec(Impure).given(("a", Incremented(5))).then(
            {"a": Total(1, 1), "all": Total(2, 1)}
        )


def test_an_event_of_a_stream_the_projection_does_not_read_is_refused() -> None:
    """A stream type outside SOURCES is named."""
    with pytest.raises(AssertionError, match="reads no stream of type 'order'"):
        ProjectionSpec(Totals).given((StreamName("order", "o-1"), Incremented(1)))
