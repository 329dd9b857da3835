"""How long S3 takes to answer each kind of request: what the latency wrappers wait."""

from __future__ import annotations

import random

import attrs


@attrs.frozen
class SimulatedLatency:
    """Seconds each kind of request takes, each drawn within ``jitter`` (a fraction) of it.

    The defaults are round figures for S3 Standard seen from EC2 in the same region.
    """

    put: float = attrs.field(default=0.020, validator=attrs.validators.ge(0))
    get: float = attrs.field(default=0.015, validator=attrs.validators.ge(0))
    list: float = attrs.field(default=0.020, validator=attrs.validators.ge(0))
    delete: float = attrs.field(default=0.015, validator=attrs.validators.ge(0))
    jitter: float = attrs.field(default=0.0, validator=attrs.validators.ge(0))

    @classmethod
    def fixed(cls, seconds: float) -> SimulatedLatency:
        """The same latency for every request."""
        return cls(put=seconds, get=seconds, list=seconds, delete=seconds)

    def sample(self, kind: str, rng: random.Random) -> float:
        """A latency for one request of ``kind``."""
        base: float = getattr(self, kind)
        return base * rng.uniform(1 - self.jitter, 1 + self.jitter) if self.jitter else base
