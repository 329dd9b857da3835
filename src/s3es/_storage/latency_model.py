"""How long S3 takes to answer each kind of request: what the latency wrappers wait."""

from __future__ import annotations

import random

import attrs


@attrs.frozen
class SimulatedLatency:
    """How long each kind of request takes, for a latency wrapper to wait.

    The defaults are round figures for S3 Standard seen from EC2 in the same region.

    Attributes:
        put: Seconds a PUT (put-if-absent or replace) takes.
        get: Seconds a GET takes.
        list: Seconds a page of a LIST takes.
        delete: Seconds a DELETE takes.
        jitter: Each wait is drawn uniformly within this fraction of its figure (0.2: from 80%
            to 120%); 0 waits exactly.

    Raises:
        ValueError: A value is negative.
    """

    put: float = attrs.field(default=0.020, validator=attrs.validators.ge(0))
    get: float = attrs.field(default=0.015, validator=attrs.validators.ge(0))
    list: float = attrs.field(default=0.020, validator=attrs.validators.ge(0))
    delete: float = attrs.field(default=0.015, validator=attrs.validators.ge(0))
    jitter: float = attrs.field(default=0.0, validator=attrs.validators.ge(0))

    @classmethod
    def fixed(cls, seconds: float) -> SimulatedLatency:
        """The same latency for every request, without jitter.

        Args:
            seconds: How long each request takes.

        Returns:
            The latency.

        Raises:
            ValueError: ``seconds`` is negative.
        """
        return cls(put=seconds, get=seconds, list=seconds, delete=seconds)

    def sample(self, kind: str, rng: random.Random) -> float:
        """Draw the latency of one request.

        Args:
            kind: ``put``, ``get``, ``list`` or ``delete``.
            rng: The random source of the jitter.

        Returns:
            Seconds to wait.
        """
        base: float = getattr(self, kind)
        return base * rng.uniform(1 - self.jitter, 1 + self.jitter) if self.jitter else base
