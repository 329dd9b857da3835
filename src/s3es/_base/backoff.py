"""Exponential backoff with full jitter, shared by the S3 adapter and the command handler."""

from __future__ import annotations

import random

import attrs


@attrs.frozen
class Backoff:
    """Delays (seconds) that grow by ``multiplier`` from ``initial`` up to ``maximum``.

    Each delay is drawn uniformly from zero to that bound ("full jitter"), so writers that
    collided once spread out instead of colliding again in step.
    """

    initial: float = attrs.field(default=0.005, validator=attrs.validators.gt(0))
    maximum: float = attrs.field(default=1.0, validator=attrs.validators.gt(0))
    multiplier: float = attrs.field(default=2.0, validator=attrs.validators.gt(0))

    def delay(self, retry: int, rng: random.Random) -> float:
        """The delay before retry number ``retry`` (1 for the first retry)."""
        bound = min(self.maximum, self.initial * self.multiplier ** max(retry - 1, 0))
        return rng.uniform(0, bound)
