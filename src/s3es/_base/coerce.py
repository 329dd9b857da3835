"""Arguments that may be a class or an instance of it."""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


def as_instance(given: type[T] | T) -> T:
    """``given`` if it is an instance; a new instance (made with no arguments) if it is a class.

    So ``Repository(store, Counter)`` and ``Repository(store, Counter())`` mean the same, and an
    aggregate or projection that takes arguments is passed made.
    """
    if isinstance(given, type):
        made: T = given()
        return made
    return given
