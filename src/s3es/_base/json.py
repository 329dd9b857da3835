r"""The one JSON of s3es: what counts as JSON, and how every part of s3es writes and reads it.

Chunks, read-model documents (S3 and SQL), shard states, projection models and leases are all
written by :func:`dumps` and read by :func:`loads`, so "not JSON" means one thing everywhere:
objects with str keys, arrays, str holding no lone surrogate, int (of any size), finite float,
bool and null. NaN, the infinities and a lone surrogate escape (``"\ud800"``, which no UTF-8
can hold) are refused when written and when read.

One encoder policy: orjson (a required dependency, 3 to 5 times faster than :mod:`json`) does
the work; the standard library does only what orjson cannot, integers beyond 64 bits, and
names the problem of what is not JSON. orjson writes a NaN as ``null`` and a UUID or an enum as
if JSON had them, so a value is checked by :func:`json_problem` before orjson sees it, unless
its caller has checked it already (``checked=True``).
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Mapping
from typing import Any, Final

import orjson

#: How deeply a document may nest, the document itself being level 1. Deeper ones are refused
#: where a limit applies (chunks, read-model documents): parsing, converting and re-writing them
#: recurse, and would stop at Python's recursion limit. serde_json's default limit is the same.
MAX_DEPTH: Final = 128

#: orjson hands these to the standard library, which refuses them as it always has (orjson
#: would write a datetime as ISO 8601 text and a dataclass as an object).
_ORJSON_OPTIONS: Final = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _scalar_problem(value: Any) -> str | None:
    """Why ``value``, neither object nor array, is not JSON; None if it is."""
    if value is None or isinstance(value, bool | int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"the float {value!r} is not JSON"
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as error:
            return f"a lone surrogate {value[error.start]!r} is not Unicode text"
        return None
    return (
        f"{value!r:.80} ({type(value).__qualname__}) is not JSON: not an object, array, string, "
        "number, bool or null"
    )


def _key_problem(node: Mapping[Any, Any], where: str) -> str | None:
    for key in node:
        if not isinstance(key, str):
            return (
                f"{where or 'the value'} has the key {key!r} ({type(key).__qualname__}): "
                "JSON keys are strings"
            )
        if not key.isascii() and (problem := _scalar_problem(key)) is not None:
            return f"{where or 'the value'} has the key {key!r}: {problem}"
    return None


def json_problem(
    value: Any, path: str = "", *, keys_only: bool = False, max_depth: int = MAX_DEPTH
) -> str | None:
    """What makes ``value`` not JSON, naming where (``data['lines'][0]``), or None if it is.

    JSON is mappings with str keys, lists or tuples, str (valid Unicode: no lone surrogate),
    int, finite float, bool and None. A key that is not a str is refused even where
    ``json.dumps`` would turn it into one: ``{1: ...}`` would read back as ``{"1": ...}``.
    The walk goes without recursion.

    Args:
        value: The value to look into.
        path: How to name ``value`` in the answer (``"data"``).
        keys_only: Look at the keys alone.
        max_depth: Objects and arrays below this many levels are not looked into (storing
            them fails on their depth).

    Returns:
        The first problem found, or None if ``value`` is JSON.
    """
    if not isinstance(value, Mapping | list | tuple):
        problem = None if keys_only else _scalar_problem(value)
        return f"{path}: {problem}" if problem and path else problem
    pending: list[tuple[Any, str, int]] = [(value, path, 1)]
    while pending:
        node, where, depth = pending.pop()
        if isinstance(node, Mapping):
            problem = _key_problem(node, where)
            if problem is not None:
                return problem
            items: Any = node.items()
        else:
            items = enumerate(node)
        if depth > max_depth:
            continue
        for key, child in items:
            if isinstance(child, Mapping | list | tuple):
                pending.append((child, f"{where}[{key!r}]", depth + 1))
            elif not keys_only and (problem := _scalar_problem(child)) is not None:
                return f"{where}[{key!r}]: {problem}"
    return None


def nested_deeper(document: Any, brackets: int, limit: int = MAX_DEPTH) -> bool:
    """Whether ``document`` nests more than ``limit`` levels of objects and arrays.

    ``brackets`` counts the ``[`` and ``{`` of its text: a document cannot nest deeper than
    that, so most documents need no walk. The walk goes level by level, without recursion.
    """
    if brackets <= limit:
        return False
    level = [document] if isinstance(document, dict | list) else []
    for _ in range(limit):
        level = [
            child
            for value in level
            for child in (value.values() if isinstance(value, dict) else value)
            if isinstance(child, dict | list)
        ]
        if not level:
            return False
    return True


def dumps(value: Any, *, checked: bool = False) -> bytes:
    r"""``value`` as compact UTF-8 JSON (non-ASCII as UTF-8, no ``\u`` escape of it).

    Args:
        value: The value to write.
        checked: The caller knows ``value`` is JSON (it asked :func:`json_problem`, or made
            ``value`` of fields typed as JSON): it is not walked again.

    Returns:
        The JSON text, as bytes.

    Raises:
        ValueError: ``value`` is not JSON (the message names where), or, ``checked``, holds a
            NaN, an infinity or a lone surrogate.
        TypeError: ``checked``, and ``value`` holds something that is no JSON type.
        RecursionError: ``checked``, and ``value`` nests deeper than Python can write.
    """
    if not checked:
        problem = json_problem(value, max_depth=sys.maxsize)
        if problem is not None:
            raise ValueError(problem)
    try:
        return orjson.dumps(value, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        # An integer beyond 64 bits, or no JSON, which the standard library names.
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return text.encode()  # a lone surrogate passes json.dumps and fails here


#: Every byte a digit "0", an opening bracket "[" (for "[" and "{") or a space: a text so
#: translated holds 19 zeros in a row where it holds a run of 19 digits, maybe a number orjson
#: reads other than json does (an integer beyond 64 bits, -9999999999999999999, as a float,
#: -1e19; json keeps it an int), and a "[" for each "[" or "{", the most levels it can nest.
#: One pass for both; seven times faster than a regular expression.
_SCAN: Final = bytes(
    48 if 48 <= byte <= 57 else 91 if byte in {91, 123} else 32  # noqa: PLR2004 - "0"-"9", "[", "{"
    for byte in range(256)
)
_LONG_NUMBER: Final = b"0" * 19
#: The JSON escape of a UTF-16 surrogate, which json.loads reads into a str only when it is
#: not part of a pair.
_SURROGATE_ESCAPE: Final = re.compile(rb"\\u[dD][89a-fA-F]")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"the number {text} is too large for a float")
    return number


#: Made once: ``json.loads`` with an option makes a decoder per call.
_DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)


def strict_loads(body: bytes | str) -> Any:
    """``body`` read by the standard library alone, as strictly as :func:`loads` reads it.

    The reference that :func:`loads` agrees with (a property test holds them to it): slower,
    and the one that names what is wrong.

    Raises:
        ValueError: ``body`` is not UTF-8 JSON (NaN, the infinities and a number too large
            for a float are not), nests deeper than Python can read, or holds a lone
            surrogate escape (the message names where).
    """
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    try:
        document = _DECODER.decode(raw.decode("utf-8"))
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError, JSONDecodeError too
        raise ValueError(f"not UTF-8 JSON: {error}") from error
    if _SURROGATE_ESCAPE.search(raw) is not None:
        # "\ud800" is valid JSON and valid UTF-8, but no Unicode text: writing it fails.
        problem = json_problem(document, max_depth=sys.maxsize)
        if problem is not None:
            raise ValueError(problem)
    return document


def loads(body: bytes | str, *, max_depth: int | None = None) -> Any:
    """The JSON document in ``body``: orjson's reading, the standard library's where they differ.

    orjson reads JSON as :func:`strict_loads` does (and refuses NaN, the infinities, lone
    surrogates and invalid UTF-8 too), except for integers beyond 64 bits, which it reads as
    floats: a body with a run of 19 digits is left to :func:`strict_loads`, and so is any body
    orjson refuses, for the standard library to name the problem.

    Args:
        body: UTF-8 JSON text (bytes, or a str).
        max_depth: If given, a document nesting deeper is refused.

    Returns:
        The document: dicts, lists, str, int, float, bool and None.

    Raises:
        ValueError: ``body`` is not UTF-8 JSON, holds a NaN, an infinity or a lone surrogate,
            or nests deeper than ``max_depth`` (the message says which).
    """
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    scanned = raw.translate(_SCAN)
    document: Any
    if _LONG_NUMBER in scanned:
        document = strict_loads(raw)
    else:
        try:
            document = orjson.loads(raw)
        except orjson.JSONDecodeError:
            document = strict_loads(raw)
    if max_depth is not None and nested_deeper(document, scanned.count(b"["), max_depth):
        raise ValueError(f"its JSON nests deeper than {max_depth} levels")
    return document
