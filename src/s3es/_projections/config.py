"""What every consumer class declares, checked once: its ``NAME``, ``SCHEMA`` and ``SOURCES``.

Projections (whole-model and document) and reactors say the same three things the same way;
the errors name the class and what is wrong with what it set.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from s3es._domain.aggregate import Aggregate, AggregateCodec
from s3es._domain.upcasting import is_schema
from s3es._storage.keys import check_segment
from s3es.errors import InvalidConfiguration, InvalidStreamName

#: The names a fold's two functions had in projections before they took the aggregate's
#: (``evolve``, ``initial_state``): kept one release, each with a DeprecationWarning.
RENAMED = {"apply": "evolve", "initial_model": "initial_state", "initial_document": "initial_state"}


def adopt_old_names(cls: type[Any], renames: Mapping[str, str] = RENAMED) -> None:
    """Let ``cls``, which defines a method under its old name, keep working.

    A subclass of a projection that writes ``apply`` (or ``initial_model``,
    ``initial_document``) and not ``evolve`` (``initial_state``) gets its method under the new
    name too, with a DeprecationWarning naming both at the class's definition.
    """
    for old, new in renames.items():
        if old in vars(cls) and new not in vars(cls):
            warnings.warn(
                f"{cls.__qualname__}.{old} is deprecated: name it {new} (the old name works "
                "until the next release)",
                DeprecationWarning,
                stacklevel=4,  # here, __init_subclass__, ABCMeta.__new__: the class statement
            )
            setattr(cls, new, vars(cls)[old])


def warn_renamed(cls: type[Any], old: str, new: str) -> None:
    """DeprecationWarning: a caller used ``cls``'s method ``old``, now ``new``."""
    warnings.warn(
        f"{cls.__qualname__}.{old} is deprecated: call {new} (the old name works until the "
        "next release)",
        DeprecationWarning,
        stacklevel=3,
    )


def configuration_error(cls: type[Any], problem: str) -> InvalidConfiguration:
    """InvalidConfiguration naming ``cls`` and ``problem``."""
    return InvalidConfiguration(f"{cls.__qualname__}: {problem}")


def declared_name(cls: type[Any], what: str) -> str:
    """``cls.NAME``, one key segment; InvalidConfiguration naming the class if it is not."""
    try:
        return check_segment(f"{what} NAME", getattr(cls, "NAME", None))
    except InvalidStreamName as error:
        raise configuration_error(cls, str(error)) from error


def declared_schema(cls: type[Any]) -> int:
    """``cls.SCHEMA``, an int >= 1; InvalidConfiguration naming the class if it is not."""
    schema = cls.SCHEMA
    if not is_schema(schema):
        raise configuration_error(cls, f"SCHEMA must be an int >= 1, not {schema!r}")
    return int(schema)


def source_codecs(cls: type[Any]) -> dict[str, AggregateCodec[Any, Any, Any]]:
    """The codec of each aggregate of ``cls.SOURCES``, by stream type.

    InvalidConfiguration, naming the class, if SOURCES is empty or not a sequence, holds
    something that is not an Aggregate, or two aggregates of one stream type.
    """
    sources = getattr(cls, "SOURCES", None)
    if not isinstance(sources, Sequence) or not sources:
        raise configuration_error(cls, "SOURCES must list the aggregates it reads")
    codecs: dict[str, AggregateCodec[Any, Any, Any]] = {}
    for source in sources:
        if not (isinstance(source, type) and issubclass(source, Aggregate)):
            raise configuration_error(cls, f"SOURCES holds {source!r}, not an Aggregate")
        codec = AggregateCodec(source())
        if codec.stream_type in codecs:
            raise configuration_error(cls, f"two SOURCES have stream type {codec.stream_type!r}")
        codecs[codec.stream_type] = codec
    return codecs
