"""The aggregate the benchmarks write: a ledger of deposits, each with an idempotency id."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import attrs

from s3es import Aggregate

#: How many recent entry ids a ledger remembers to refuse a repeated deposit.
RECENT_ENTRIES = 32


@attrs.frozen
class Deposit:
    """Add ``amount`` under ``entry_id``; a deposit whose id is recent changes nothing."""

    entry_id: str
    amount: int


@attrs.frozen
class Deposited:
    """``amount`` was added under ``entry_id``."""

    entry_id: str
    amount: int


@attrs.frozen
class LedgerState:
    """The balance, the number of deposits, and the ids of the latest ones."""

    balance: int
    entries: int
    recent: tuple[str, ...]


class Ledger(Aggregate[LedgerState, Deposit, Deposited]):
    """A ledger: deposits add up; a deposit repeated with a recent id stores nothing."""

    STREAM_TYPE = "ledger"
    SNAPSHOT_SCHEMA = 1
    EVENT_TYPES: ClassVar[Mapping[str, type[Any]]] = {"Deposited": Deposited}

    def initial_state(self) -> LedgerState:
        """An empty ledger."""
        return LedgerState(balance=0, entries=0, recent=())

    def evolve(self, state: LedgerState, event: Deposited) -> LedgerState:
        """Add the deposit and remember its id."""
        return LedgerState(
            balance=state.balance + event.amount,
            entries=state.entries + 1,
            recent=(*state.recent, event.entry_id)[-RECENT_ENTRIES:],
        )

    def decide(self, command: Deposit, state: LedgerState) -> Sequence[Deposited]:
        """One Deposited, unless ``command.entry_id`` is among the recent ids."""
        if command.entry_id in state.recent:
            return []
        return [Deposited(entry_id=command.entry_id, amount=command.amount)]


class LedgerV2(Ledger):
    """The same ledger after a snapshot schema bump: its loads replay and re-snapshot."""

    SNAPSHOT_SCHEMA = 2
