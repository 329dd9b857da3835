"""Inline projections: a read model in this process, updated right after each append it makes.

For read-your-writes views: the command's events are in the model before ``handle`` returns.
Best effort by nature: the model lives in memory (a restart starts it empty), and it sees
another process's events only when an append of its own on the same stream reads them to
close the gap. A projector keeps the durable read model.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any, Generic

from s3es._base.coerce import as_instance
from s3es._base.logging import get_logger
from s3es._domain.aggregate import RecordedEvent
from s3es._domain.repository import Repository
from s3es._projections.projection import M, Projection
from s3es.errors import DomainContractError, InlineProjectionFailed, InvalidConfiguration

_log = get_logger("s3es.inline")


def evolve_model(projection: Projection[M], model: M, event: RecordedEvent[Any]) -> M:
    """``projection.evolve(model, event)``; DomainContractError, naming both, if it is None."""
    applied = projection.evolve(model, event)
    if applied is None:
        raise DomainContractError(
            f"{type(projection).__qualname__}.evolve returned None for an event of type "
            f"{event.type} of stream {event.stream} (version {event.version}): it must return "
            "the model after the event (a forgotten return?)"
        )
    return applied


class InlineProjection(Generic[M]):
    """``projection``'s model kept in memory, fed by the command handlers it is given to.

    Each stream's events are applied once and in order: an append that follows a version the
    model has not seen first reads the missing events from the stream (one LIST, plus a GET
    per chunk). Safe to share between threads and handlers.
    """

    def __init__(self, projection: Projection[M] | type[Projection[M]]) -> None:
        self.projection: Projection[M] = as_instance(projection)
        self._model = self.projection.initial_state()
        self._checkpoints: dict[str, int] = {}
        self._lock = threading.Lock()

    @property
    def model(self) -> M:
        """The model as it stands.

        If ``evolve`` changes the model in place, another thread's command may be changing it
        while it is read; an ``evolve`` that returns a new model gives readers a stable one.
        """
        with self._lock:
            return self._model

    @property
    def checkpoints(self) -> Mapping[str, int]:
        """``"type/id"`` -> the last version of that stream applied."""
        with self._lock:
            return dict(self._checkpoints)

    def check_source(self, stream_type: str) -> None:
        """Raise InvalidConfiguration unless ``SOURCES`` holds an aggregate of ``stream_type``."""
        sources = [source.STREAM_TYPE for source in type(self.projection).SOURCES]
        if stream_type not in sources:
            raise InvalidConfiguration(
                f"inline projection {type(self.projection).__qualname__} does not read stream "
                f"type {stream_type!r}: its SOURCES are {sources}"
            )

    def appended(
        self, repository: Repository[Any, Any, Any], recorded: Sequence[RecordedEvent[Any]]
    ) -> None:
        """Apply ``recorded``, the events one append stored through ``repository``.

        Raises InlineProjectionFailed if ``evolve`` (or reading the events it missed) fails; the
        model then starts again empty, and each stream is read back whole at its next append.
        """
        events = tuple(recorded)
        if not events:
            return
        stream, version = events[0].stream, events[0].version
        name = self.projection.__class__.__qualname__
        with self._lock:
            seen = self._checkpoints.get(str(stream), 0)
            if version <= seen:
                return
            try:
                if version > seen + 1:
                    missed = repository.read(stream.id, after_version=seen)
                    events = tuple(e for e in missed if e.version <= version)
                model = self._model
                for event in events:
                    model = evolve_model(self.projection, model, event)
            except Exception as error:
                # evolve may have changed the model in place before it failed: the model can no
                # longer be trusted, so it starts again, and each stream is read back whole at
                # its next append here. Nothing is applied twice.
                self._model = self.projection.initial_state()
                self._checkpoints.clear()
                _log.exception("inline_projection_failed", projection=name, stream=str(stream))
                raise InlineProjectionFailed(name, stream, version) from error
            self._model = model
            self._checkpoints[str(stream)] = version
