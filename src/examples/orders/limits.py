"""The bounds of the orders example's commands: what every store, reader and client can hold.

The Order and Inventory aggregates check every command against these bounds in ``decide``, so
every way in (the web sample, the demo, a test, a script) meets the same rules, and a value
that would stall a read model, or make ``decide`` slow, is refused before it is stored:

- **Amounts** (cents) are integers from 0 to :data:`MAX_CENTS`, ``2**53 - 1``: the largest
  integer that every JSON reader reads exactly (JavaScript's numbers are doubles), and far
  inside the 64-bit integers of SQLite and PostgreSQL. A line's total (quantity times unit
  price) and an order's total are held to it too, so no sum a read model keeps can overflow.
- **Quantities** are integers from 1 to :data:`MAX_QUANTITY`.
- **Lines** of an order, and items of a receipt or a reservation, number at most
  :data:`MAX_LINES`: with the checks below linear in their number, ``decide`` stays well under
  a millisecond, short enough to run on an event loop.
- **Texts** (SKUs, ids, reasons) are non-empty, hold no control character (``Cc``: NUL, a line
  break...) and no lone surrogate (``Cs``, which UTF-8 cannot encode), and are at most so many
  UTF-8 bytes: a SKU keys the stock read model's documents, whose keys are at most 200 bytes.

A command out of bounds raises the aggregate's error, its ``field`` naming what is wrong
(``lines[2].quantity``).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

#: The most lines an order may have, and items a receipt or a reservation.
MAX_LINES = 100
#: The most units of one SKU a line or an item may have.
MAX_QUANTITY = 1_000_000
#: The largest amount in cents: a price, a payment, a line's or an order's total.
MAX_CENTS = 2**53 - 1
#: The longest SKU, in UTF-8 bytes.
MAX_SKU_BYTES = 100
#: The longest id (of an order, a payment, a warehouse), in UTF-8 bytes.
MAX_ID_BYTES = 100
#: The longest reason of a cancellation, in UTF-8 bytes.
MAX_REASON_BYTES = 500


def text_problem(field: str, value: object, max_bytes: int) -> str | None:
    """What is wrong with ``value`` as the text ``field``, or None if nothing is.

    Args:
        field: The field's name, for the message (``lines[0].sku``).
        value: The value to check.
        max_bytes: The most UTF-8 bytes it may take.

    Returns:
        A message naming ``field``, or None for a non-empty str of printable characters (no
        control character, no lone surrogate) of at most ``max_bytes`` UTF-8 bytes.
    """
    if not isinstance(value, str):
        return f"{field} must be a string, not {type(value).__name__}"
    if not value:
        return f"{field} must not be empty"
    # str.isprintable (in C) is False for every Cc and Cs character: walk only those it flags.
    for char in () if value.isprintable() else value:
        if unicodedata.category(char) in {"Cc", "Cs"}:
            return (
                f"{field} must not hold a control character or a lone surrogate "
                f"(U+{ord(char):04X} in {value!r})"
            )
    size = len(value.encode())
    if size > max_bytes:
        return f"{field} must be at most {max_bytes} bytes in UTF-8, not {size}"
    return None


def integer_problem(field: str, value: object, low: int, high: int) -> str | None:
    """What is wrong with ``value`` as the integer ``field`` from ``low`` to ``high``, or None.

    Args:
        field: The field's name, for the message.
        value: The value to check (a bool is no integer here).
        low: The smallest value taken.
        high: The largest value taken.

    Returns:
        A message naming ``field`` and the range, or None if ``value`` is in it.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        return f"{field} must be an integer, not {type(value).__name__}"
    if not low <= value <= high:
        return f"{field} must be from {low:,} to {high:,}, not {value:,}"
    return None


def count_problem(field: str, values: Iterable[object], low: int, high: int) -> str | None:
    """What is wrong with the number of ``values`` (``low`` to ``high`` of them), or None.

    Counts no further than ``high + 1``: a long iterable is not walked to its end.
    """
    count = 0
    for _ in values:
        count += 1
        if count > high:
            return f"{field} must have at most {high:,} entries"
    if count < low:
        return f"{field} must have at least {low:,} entries, not {count:,}"
    return None


def repeated(values: Iterable[str]) -> list[str]:
    """The values that occur more than once in ``values``, sorted; linear in their number.

    Each value is hashed a bounded number of times and compared only with those that share its
    hash, where ``list.count`` per value compared every pair.
    """
    seen: set[str] = set()
    twice: set[str] = set()
    for value in values:
        if value in seen:
            twice.add(value)
        else:
            seen.add(value)
    return sorted(twice)
