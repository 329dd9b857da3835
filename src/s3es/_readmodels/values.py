r"""The one domain of document keys and bodies that every read-model store keeps.

Every store (S3, the in-memory object store under it, SQLite, PostgreSQL) checks a commit's
changes with :func:`check_document` before it writes anything, and refuses what lies outside the
domain with the same :class:`~s3es.errors.UnstorableDocument`; what lies inside, every store
keeps and reads back equal. The domain is what all of them store faithfully:

- **A key** is a ``str`` of 1 to :data:`MAX_DOCUMENT_KEY_BYTES` bytes of UTF-8, holding no lone
  surrogate (which has no UTF-8) and no U+0000 (PostgreSQL's text cannot hold it).
  Anything else goes: case, spaces, ``/``, ``%``, any other character; keys that
  differ only by case or Unicode normalisation are different documents everywhere.
- **A body** is JSON, as the event store takes it: a ``dict`` with ``str`` keys, a ``list`` (a
  ``tuple`` is stored as one, and reads back as a list), a ``str`` holding no lone surrogate
  (U+0000 is kept: as ``\u0000`` in the JSON text), an ``int`` of any size Python writes as
  decimal (4,300 digits by default; integers beyond 64 bits are kept exactly, where SQLite's
  and PostgreSQL's integers would not: the documents are JSON text there), a finite ``float``
  (``-0.0`` included; NaN and the infinities are no JSON), ``bool`` or ``None``, nested at
  most :data:`MAX_DEPTH` levels.

Every store writes and reads a body with :mod:`s3es._base.json`, as chunks are.

The S3 object key of a document is its key percent-encoded (at most three bytes for one), so
200 bytes of key take at most 600 of the 1,024 S3 allows (see :mod:`s3es._storage.keys`).
"""

from __future__ import annotations

import json
import math
import re
from typing import Final

# The deepest nesting of objects and arrays a body may have: the event store's limit.
from s3es._base.json import MAX_DEPTH

# The longest document key every store takes, in bytes of UTF-8 (S3 keys are at most 1,024
# bytes, and a document key is percent-encoded there: up to three times as long).
from s3es._storage.keys import MAX_DOCUMENT_KEY_BYTES
from s3es.errors import UnstorableDocument

_IDENTIFIER: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _key_problem(key: object) -> str | None:
    """Why ``key`` is no document key; None if it is one."""
    if not isinstance(key, str):
        return f"a key must be a str, not {type(key).__qualname__}"
    if not key:
        return "a key must not be empty"
    problem = _text_problem(key)
    if problem is not None:
        return problem
    if "\x00" in key:
        return "a key must not hold U+0000 (PostgreSQL's text cannot)"
    size = len(key.encode())
    if size > MAX_DOCUMENT_KEY_BYTES:
        return f"a key is at most {MAX_DOCUMENT_KEY_BYTES} bytes of UTF-8, not {size}"
    return None


def _text_problem(text: str) -> str | None:
    try:
        text.encode()
    except UnicodeEncodeError as error:
        return f"the lone surrogate U+{ord(text[error.start]):04X} is not Unicode text"
    return None


def is_storable_key(key: object) -> bool:
    """True if ``key`` is a document key every store takes (so a document may have it)."""
    return _key_problem(key) is None


def check_key(key: str) -> None:
    """Refuse a document key that not every read-model store can keep.

    Args:
        key: The document's key.

    Raises:
        UnstorableDocument: with ``path`` ``""``, if ``key`` is not a str, is empty, is longer
            than :data:`MAX_DOCUMENT_KEY_BYTES` bytes of UTF-8, or holds a lone surrogate or
            U+0000.
    """
    problem = _key_problem(key)
    if problem is not None:
        raise UnstorableDocument(_printable(key), "", problem)


def check_document(key: str, body: object) -> None:
    """Refuse a document (its key, then its body) that not every read-model store can keep.

    ``body`` None is a deletion: only the key is checked.

    Args:
        key: The document's key.
        body: The document's body, as the projection's converter made it.

    Raises:
        UnstorableDocument: naming the key, where in the body (``$.lines[3].sku``; ``""`` for
            the key itself) and why, for the first value outside the domain (see this module's
            docstring).
    """
    check_key(key)
    if body is None:
        return
    problem = _body_problem(body)
    if problem is not None:
        path, reason = problem
        raise UnstorableDocument(key, path, reason)


def _body_problem(body: object) -> tuple[str, str] | None:
    """Where and why ``body`` is outside the domain; None if it is inside. No recursion."""
    pending: list[tuple[object, str, int]] = [(body, "$", 0)]
    while pending:
        value, path, depth = pending.pop()
        if isinstance(value, dict):
            if depth >= MAX_DEPTH:
                return path, f"objects and arrays nest deeper than {MAX_DEPTH} levels"
            children: list[tuple[object, str, int]] = []
            for name, child in value.items():
                if not isinstance(name, str):
                    return path, (
                        f"the object has the key {name!r} ({type(name).__qualname__}): "
                        "JSON keys are strings"
                    )
                problem = _text_problem(name)
                if problem is not None:
                    return path, f"the key {name!r}: {problem}"
                children.append((child, _member(path, name), depth + 1))
            pending.extend(reversed(children))
        elif isinstance(value, list | tuple):
            if depth >= MAX_DEPTH:
                return path, f"objects and arrays nest deeper than {MAX_DEPTH} levels"
            pending.extend(
                (child, f"{path}[{index}]", depth + 1)
                for index, child in reversed(list(enumerate(value)))
            )
        else:
            problem = _scalar_problem(value)
            if problem is not None:
                return path, problem
    return None


def _member(path: str, name: str) -> str:
    if _IDENTIFIER.fullmatch(name):
        return f"{path}.{name}"
    return f"{path}[{json.dumps(name)}]"


def _scalar_problem(value: object) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        if value.bit_length() > 64:  # noqa: PLR2004 - short ones always have a decimal form
            try:
                str(value)
            except ValueError as error:
                return f"the integer has no decimal form Python writes: {error}"
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"the float {value!r} is not JSON"
    if isinstance(value, str):
        return _text_problem(value)
    return (
        f"{_printable(value)[:80]} ({type(value).__qualname__}) is not JSON: not an object, "
        "array, string, number, bool or null"
    )


def _printable(value: object) -> str:
    """``value`` as text for an error: itself if a str, else its repr."""
    return value if isinstance(value, str) else repr(value)


__all__ = [
    "MAX_DEPTH",
    "MAX_DOCUMENT_KEY_BYTES",
    "check_document",
    "check_key",
    "is_storable_key",
]
