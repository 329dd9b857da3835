"""Change notifications for asyncio: the feed's port, awaited, and a sync feed run in threads.

:class:`~s3es.projections.SQSChangeNotifications` speaks to SQS through boto3, which blocks;
an async consumer takes it through :class:`AsyncNotifications`, which runs each receive and
acknowledgement in a thread (two calls a pass, far fewer than the pass's S3 requests).
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from s3es._projections.notifications import ChangeNotifications, Notified


class AsyncChangeNotifications(Protocol):
    """A source of notifications of new chunks, acknowledged once they are applied, awaited.

    Each method keeps the promise of its namesake in
    :class:`~s3es.projections.ChangeNotifications`.
    """

    async def receive(self) -> Notified:
        """The notifications waiting now (a bounded batch of them); may be empty."""
        ...

    async def acknowledge(self, notified: Notified) -> None:
        """Forget ``notified``'s messages: called only after what they named is committed."""
        ...


class AsyncNotifications:
    """A sync :class:`~s3es.projections.ChangeNotifications` offered to async consumers.

    Each call runs in a thread of the loop's default executor (``asyncio.to_thread``), in the
    caller's context.
    """

    def __init__(self, notifications: ChangeNotifications) -> None:
        self.notifications = notifications

    def __repr__(self) -> str:
        return f"AsyncNotifications({self.notifications!r})"

    async def receive(self) -> Notified:
        """The notifications waiting now, received in a thread."""
        return await asyncio.to_thread(self.notifications.receive)

    async def acknowledge(self, notified: Notified) -> None:
        """Acknowledge ``notified``'s messages in a thread."""
        await asyncio.to_thread(self.notifications.acknowledge, notified)


__all__ = ["AsyncChangeNotifications", "AsyncNotifications"]
