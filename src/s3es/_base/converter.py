"""The one strict JSON converter: how s3es turns its values into JSON and back.

Chunks, aggregates' events and state, read-model documents and leases are all read with it, so
"a value of the wrong JSON type is an error" means the same thing everywhere.
"""

from __future__ import annotations

import decimal
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import cattrs
from cattrs.preconf.json import make_converter


def _strict_scalar(*accepted: type[Any]) -> Callable[[Any, Any], Any]:
    def structure(value: Any, type_: Any) -> Any:
        # bool is an int to Python, never to a JSON reader: the exact type is checked
        if type(value) not in accepted:
            raise TypeError(f"expected {type_.__name__}, got {type(value).__name__}: {value!r}")
        return type_(value)  # an int read for a float field becomes a float

    return structure


def _json_object(value: Any, _type: Any) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected a JSON object, got {type(value).__name__}")
    return value


def _decimal(value: Any, _type: Any) -> decimal.Decimal:
    if type(value) is not str:
        raise TypeError(f"expected a Decimal as a JSON string, got {type(value).__name__}")
    try:
        return decimal.Decimal(value)
    except decimal.InvalidOperation:
        raise ValueError(f"not a Decimal: {value!r}") from None


def _uuid(value: Any, _type: Any) -> uuid.UUID:
    if type(value) is not str:
        raise TypeError(f"expected a UUID as a JSON string, got {type(value).__name__}")
    return uuid.UUID(value)  # ValueError if it is not one


def make_strict_converter(*, forbid_extra_keys: bool = False) -> cattrs.Converter:
    """Cattrs's JSON preset (datetimes as ISO 8601 strings, sets as lists...), made strict.

    The preset would turn ``"5"`` into 5, ``3.7`` into 3 or ``"12"`` into ``(1, 2)``; here an
    int, float, str or bool of the wrong JSON type is a TypeError (an int is a float, a bool is
    not an int), and a ``Mapping[str, Any]`` must be a JSON object. So a stored chunk with a
    mistyped field is corrupt, and a snapshot that does not fit the state is replayed, not
    misread. ``forbid_extra_keys`` also refuses a JSON object with a field the class does not
    have. Besides the preset's datetimes, a ``Decimal`` is stored as a JSON string (every digit
    kept: ``"19.90"``) and a ``UUID`` as its canonical string. Each call makes a new converter,
    free to take hooks of its own.
    """
    converter = make_converter(forbid_extra_keys=forbid_extra_keys)
    converter.register_structure_hook(int, _strict_scalar(int))
    converter.register_structure_hook(float, _strict_scalar(float, int))
    converter.register_structure_hook(str, _strict_scalar(str))
    converter.register_structure_hook(bool, _strict_scalar(bool))
    converter.register_structure_hook_func(lambda type_: type_ == Mapping[str, Any], _json_object)
    converter.register_unstructure_hook(decimal.Decimal, str)
    converter.register_structure_hook(decimal.Decimal, _decimal)
    converter.register_unstructure_hook(uuid.UUID, str)
    converter.register_structure_hook(uuid.UUID, _uuid)
    return converter


def structure_problem(converter: cattrs.Converter, type_: Any) -> Exception | None:
    """Why ``converter`` cannot read ``type_`` back from JSON, or None if it can.

    cattrs finds a type it cannot read (a plain class, a field of an unknown type) only when
    it makes the type's structure hook: asked here when an aggregate or a projection is wired,
    rather than met at the first read of a stored chunk or model, where it would pass for a
    corrupt one.
    """
    try:
        converter.get_structure_hook(type_)
    except Exception as error:  # noqa: BLE001 - whatever cattrs met is the answer
        return error
    return None
