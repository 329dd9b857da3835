"""Projections fold with ``initial_state`` and ``evolve``, as aggregates do.

The old names (``initial_model``, ``initial_document``, ``apply``) work one more release: a
subclass that defines them still runs, with a DeprecationWarning at its definition, and a call
to them warns.
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime
from typing import Any, ClassVar

import attrs
import pytest

from s3es import EventStore, InMemoryObjectStore, RecordedEvent, Repository, StreamName
from s3es.projections import DocumentProjection, InlineProjection, Projection
from tests.aggregates import Counter, Incremented

pytestmark = pytest.mark.filterwarnings("default::DeprecationWarning")


@attrs.define
class Total:
    total: int = 0


def _added(version: int, amount: int) -> RecordedEvent[Incremented]:
    return RecordedEvent(
        StreamName("counter", "c"),
        version,
        f"e{version}",
        "Incremented",
        Incremented(amount),
        {},
        datetime(2026, 1, 1, tzinfo=UTC),
    )


class TestOldNames:
    def test_projection_with_old_names_warns_and_folds(self) -> None:
        """A Projection written with ``initial_model``/``apply`` warns once per old name, then
        folds."""
        with pytest.warns(DeprecationWarning, match="is deprecated: name it") as warned:

            class Old(Projection[Total]):
                NAME = "old"
                SOURCES: ClassVar[tuple[type[Counter]]] = (Counter,)

                def initial_model(self) -> Total:
                    return Total()

                def apply(self, model: Total, event: RecordedEvent[Any]) -> Total:
                    model.total += event.event.amount
                    return model

        assert sorted(str(warning.message).split(" (")[0] for warning in warned) == [
            f"{Old.__qualname__}.apply is deprecated: name it evolve",
            f"{Old.__qualname__}.initial_model is deprecated: name it initial_state",
        ]
        inline = InlineProjection(Old)
        inline.appended(Repository(EventStore(InMemoryObjectStore()), Counter), [_added(1, 2)])
        inline.appended(Repository(EventStore(InMemoryObjectStore()), Counter), [_added(2, 3)])
        assert inline.model == Total(5)

    def test_document_projection_with_old_names_warns(self) -> None:
        """A DocumentProjection written with ``initial_document``/``apply`` warns once per old
        name, and gets the new names."""
        with pytest.warns(DeprecationWarning, match="is deprecated: name it") as warned:

            class Old(DocumentProjection[Total]):
                NAME = "old-documents"
                SOURCES: ClassVar[tuple[type[Counter]]] = (Counter,)

                def initial_document(self, key: str) -> Total:
                    return Total(1)

                def apply(self, document: Total, event: RecordedEvent[Any]) -> Total:
                    return document

        assert sorted(str(warning.message).split(" (")[0] for warning in warned) == [
            f"{Old.__qualname__}.apply is deprecated: name it evolve",
            f"{Old.__qualname__}.initial_document is deprecated: name it initial_state",
        ]
        assert Old().initial_state("k") == Total(1)  # type: ignore[abstract]

    def test_calling_an_old_name_warns(self) -> None:
        """``projection.apply(...)`` on a projection written with ``evolve`` warns and evolves."""

        class New(Projection[Total]):
            NAME = "new"
            SOURCES: ClassVar[tuple[type[Counter]]] = (Counter,)

            def initial_state(self) -> Total:
                return Total(7)

            def evolve(self, model: Total, event: RecordedEvent[Any]) -> Total:
                return model

        with pytest.warns(DeprecationWarning, match=r"New\.initial_model is deprecated: call"):
            assert New().initial_model() == Total(7)

    def test_new_names_do_not_warn(self) -> None:
        """A projection written with the new names defines without a warning."""
        with warnings.catch_warnings():
            warnings.simplefilter("error")

            class New(DocumentProjection[Total]):
                NAME = "new-documents"
                SOURCES: ClassVar[tuple[type[Counter]]] = (Counter,)

                def initial_state(self, key: str) -> Total:
                    return Total()

                def evolve(self, document: Total, event: RecordedEvent[Any]) -> Total:
                    return document

        assert New().initial_state("k") == Total()
