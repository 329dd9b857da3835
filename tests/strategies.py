"""Hypothesis strategies shared by the property tests."""

from __future__ import annotations

from hypothesis import strategies as st

from tests.aggregates import CounterCommand, Decrement, Increment, IncrementEach


def counter_commands() -> st.SearchStrategy[CounterCommand]:
    """Any counter command: increments (0 stores nothing), decrements that may be refused, and
    multi-event increments (empty: stores nothing)."""
    return st.one_of(
        st.builds(Increment, st.integers(min_value=0, max_value=100)),
        st.builds(Decrement, st.integers(min_value=1, max_value=60)),
        st.builds(
            IncrementEach,
            st.lists(st.integers(min_value=1, max_value=100), max_size=4).map(tuple),
        ),
    )


def histories(*, min_size: int = 0, max_size: int = 20) -> st.SearchStrategy[list[CounterCommand]]:
    """The commands one writer sends to one stream, in order."""
    return st.lists(counter_commands(), min_size=min_size, max_size=max_size)


def writer_plans(
    *, min_writers: int = 2, max_writers: int = 8, max_commands: int = 4
) -> st.SearchStrategy[list[list[CounterCommand]]]:
    """For each of several concurrent writers, the commands it sends to the one shared stream."""
    return st.lists(
        histories(min_size=1, max_size=max_commands), min_size=min_writers, max_size=max_writers
    )


def stream_ids() -> st.SearchStrategy[str]:
    """Stream ids s3es accepts: any text without ``/`` or control characters, not ``.``/``..``."""
    return st.text(
        st.characters(exclude_categories=("Cc", "Cs"), exclude_characters="/"),
        min_size=1,
        max_size=30,
    ).filter(lambda text: text not in {".", ".."})
