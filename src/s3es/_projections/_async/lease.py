"""A lease in S3: one active projector per projection, with an epoch that fences the others.

The lease is one small JSON object. Taking it is a conditional write (put-if-absent for the
first, ``If-Match`` on the ETag read otherwise), and every taking raises the epoch by one. A
projector stamps its epoch on each read-model document it writes, and one that finds a newer
epoch there stops. So a projector that paused past its lease (a long GC, a frozen VM) cannot
overwrite the work of the one that took over: its next conditional write fails, and the epoch
it then reads tells it why.
"""

from __future__ import annotations

import uuid

import attrs
import cattrs

from s3es._base.clock import Clock
from s3es._base.converter import make_strict_converter
from s3es._base.json import dumps, loads
from s3es._base.logging import get_logger
from s3es._projections.values import LEASE_FORMAT, Lease
from s3es._storage._async.port import AsyncObjectStore
from s3es.errors import (
    CorruptReadModel,
    Fenced,
    InvalidConfiguration,
    LeaseHeld,
    ObjectAlreadyExists,
    ObjectChanged,
)

_log = get_logger("s3es.lease")

#: Reads leases strictly: a field of the wrong JSON type, missing or unknown is an error.
_CONVERTER = make_strict_converter(forbid_extra_keys=True)
#: How often taking the lease reads it again after losing a race for it.
_ACQUIRE_ATTEMPTS = 3


class AsyncLeaseKeeper:
    """Takes, renews and releases the lease of one projection for one ``owner``."""

    def __init__(
        self,
        objects: AsyncObjectStore,
        key: str,
        *,
        projection: str,
        owner: str,
        ttl: float,
        clock: Clock,
        kind: str | None = None,
    ) -> None:
        if ttl <= 0:
            raise ValueError(f"lease ttl of projection {projection!r} must be > 0, not {ttl}")
        self.objects = objects
        self.key = key
        self.projection = projection
        self.owner = owner
        self.ttl = ttl
        self._clock = clock
        self._token = uuid.uuid4().hex
        #: What it is a lease of ("projection", "reactor"): a lease of another kind is refused.
        self.kind = kind

    def _now(self) -> float:
        """The clock's time in Unix seconds, as a lease's ``expires_at`` is stored."""
        return self._clock().timestamp()

    async def read(self) -> Lease | None:
        """The stored lease, or None if the projection never had one. One GET."""
        stored = await self.objects.get(self.key)
        if stored is None:
            return None
        try:
            raw = loads(stored.body)
            lease = _CONVERTER.structure({**raw, "etag": stored.etag}, Lease)
        except (ValueError, TypeError, cattrs.BaseValidationError) as error:
            raise CorruptReadModel(self.key, f"not a lease: {error!r}") from error
        if lease.format != LEASE_FORMAT or lease.projection != self.projection:
            raise CorruptReadModel(
                self.key, f"a lease of {lease.projection!r} in format {lease.format!r}"
            )
        if lease.kind is not None and self.kind is not None and lease.kind != self.kind:
            raise InvalidConfiguration(
                f"{self.kind} {self.projection}: lease {self.key!r} belongs to a {lease.kind} "
                "of the same name; a reactor and a projection may not share a NAME: rename one"
            )
        return lease

    async def acquire(self, *, force: bool = False) -> Lease:
        """Take the lease under a new epoch; LeaseHeld if another owner's has not expired.

        ``force`` takes it even then: the holder is fenced at its next write.
        """
        for _ in range(_ACQUIRE_ATTEMPTS):
            current = await self.read()
            if current is None:
                taken = await self._store(1, etag=None)
            else:
                # A live lease is ours only if this keeper wrote it: two processes given the
                # same owner name must not take it from each other.
                held = current.token != self._token and current.expires_at > self._now()
                if held and not force:
                    raise LeaseHeld(
                        self.projection, current.owner, current.epoch, current.expires_at
                    )
                taken = await self._store(current.epoch + 1, etag=current.etag)
            if taken is not None:
                _log.info("lease_acquired", projection=self.projection, epoch=taken.epoch)
                return taken
        current = await self.read()
        assert current is not None  # noqa: S101 - every attempt lost to a stored lease
        raise LeaseHeld(self.projection, current.owner, current.epoch, current.expires_at)

    async def renew(self, lease: Lease) -> Lease:
        """``lease`` for another ``ttl``; Fenced if it was taken over meanwhile."""
        renewed = await self._store(lease.epoch, etag=lease.etag)
        if renewed is not None:
            return renewed
        current = await self.read()
        raise Fenced(self.projection, lease.epoch, current.epoch if current else lease.epoch)

    async def release(self, lease: Lease) -> bool:
        """Let ``lease`` expire now, keeping its epoch; False if it was taken over already."""
        released = await self._store(lease.epoch, etag=lease.etag, expires_at=0.0) is not None
        _log.info(
            "lease_released" if released else "lease_already_taken",
            projection=self.projection,
            epoch=lease.epoch,
        )
        return released

    def expiring(self, lease: Lease) -> bool:
        """True once half of ``lease``'s time is gone: time to renew it."""
        return self._now() > lease.expires_at - self.ttl / 2

    async def _store(
        self, epoch: int, *, etag: str | None, expires_at: float | None = None
    ) -> Lease | None:
        """Write the lease for ``epoch``, conditionally; None if another write came first.

        A refusal can be this very write, stored by an attempt whose answer was lost (the
        retry then meets it): the lease is read back, and one that is exactly ours is ours.
        """
        lease = Lease(
            format=LEASE_FORMAT,
            projection=self.projection,
            owner=self.owner,
            token=self._token,
            epoch=epoch,
            expires_at=self._now() + self.ttl if expires_at is None else expires_at,
            kind=self.kind,
        )
        unstructured = _CONVERTER.unstructure(lease)
        del unstructured["etag"]
        body = dumps(unstructured)
        try:
            if etag is None:
                new_etag = await self.objects.put_if_absent(self.key, body)
            else:
                new_etag = await self.objects.replace(self.key, body, etag=etag)
        except (ObjectAlreadyExists, ObjectChanged):
            found = await self.read()
            return found if found == lease else None  # the ETag does not count in ==
        return attrs.evolve(lease, etag=new_etag)


__all__ = ["LEASE_FORMAT", "AsyncLeaseKeeper", "Lease"]
