"""The background passes: the fulfilment reactor and the projectors, run in a thread.

The read models lag the commands: a GET shows a POST's effect after the next pass. The app's
lifespan runs a pass every ``pass_interval`` seconds in a thread of its own (the reactor
runner and the projectors are the sync API's, and one thread's at a time), so that the event
loop serves requests meanwhile; a test runs one with :meth:`BackgroundPasses.run_once`.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from examples.orders.app import Shop

logger = logging.getLogger(__name__)


class BackgroundPasses:
    """Runs the shop's reactor and projector passes every ``interval`` seconds, in a thread.

    A pass is the fulfilment reactor's ``catch_up`` (which may store events), then each
    projector's. A pass that fails is logged with its error and counted in ``failures``; the
    next pass tries again (a projector resumes from its stored positions). :meth:`run_once`
    runs a pass in the calling thread: a test or a script that runs no thread calls it.
    """

    def __init__(self, shop: Shop, interval: float) -> None:
        if not interval > 0:
            raise ValueError(f"the interval between passes must be > 0 seconds, not {interval}")
        self.shop = shop
        self.interval = interval
        self.started = 0
        self.completed = 0
        self.failures = 0
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # The reactor and the projectors are one thread's at a time.
        self._running = threading.Lock()

    def run_once(self) -> None:
        """One pass of the reactor and of every projector, in this thread.

        Each runs even if one before it failed (a reactor that fails must not stop the read
        models); their errors are raised together afterwards, as an ExceptionGroup.
        """
        with self._running:
            with self._changed:
                self.started += 1
            errors: list[Exception] = []
            try:
                for step in (self.shop.fulfilment, *self.shop.projectors):
                    try:
                        step.catch_up()
                    except Exception as error:  # noqa: BLE001 - raised below, with the others
                        errors.append(error)
            finally:
                with self._changed:
                    self.completed += 1
                    self._changed.notify_all()
            if errors:
                raise ExceptionGroup("a pass of the orders' reactor and projectors failed", errors)

    def wait_for_next(self, timeout: float = 30.0) -> None:
        """Wait until a pass that starts after this call has finished (TimeoutError if not)."""
        with self._changed:
            target = self.started + 1
            if not self._changed.wait_for(lambda: self.completed >= target, timeout):
                raise TimeoutError(f"no pass finished within {timeout} s (pass {target} awaited)")

    def start(self) -> None:
        """Start the thread that runs a pass every ``interval`` seconds."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="orders-passes", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread after its current pass, and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:
                self.failures += 1
                logger.exception("pass %d of the orders' reactor and projectors", self.started)
            self._stop.wait(self.interval)
