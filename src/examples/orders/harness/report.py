"""What a contention run tells: the story first, then the cost, then the checks.

The story: what raced and who lost and retried, what the fulfilment reactor did (and one
order's flow across streams), then the orders and stock it left. The cost: S3 requests and
dollars. The checks: one line each. With ``verbose``, the details too: each
order, the stock per product, each phase's requests, the projectors' passes. A :class:`Glossary`
says each term in one plain line after the section where it first appears.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs

from examples.orders.app import FULFILMENT_SHARDS
from examples.orders.domain import Order, OrderStatus, format_cents
from examples.orders.inventory import Inventory
from examples.orders.projections import OrderSummary, ProductLevels, ProductStock, by_status
from s3es.metering import S3_STANDARD_PRICES, RequestCounts
from s3es.reactors import CAUSATION_ID

if TYPE_CHECKING:
    from examples.orders.harness.checks import Check
    from examples.orders.harness.contention import Contention

#: Who sent an event from outside, by the service its metadata names.
SENDERS = {"shop": "placed by the customer", "payment": "paid by the customer"}
#: A problem list longer than this is cut short.
PROBLEMS_SHOWN = 10
#: Above this many orders, the verbose table of orders shows the busiest only.
TABLE_LIMIT = 16


@attrs.frozen
class Term:
    """Words said in one plain line the first time one of them appears."""

    #: The words, as the line names them: ``"stream, version"``.
    name: str
    meaning: str
    #: Terms said before this one, because its meaning uses them.
    needs: tuple[str, ...] = ()
    #: Other forms of the words than a plural in -s or -es.
    forms: tuple[str, ...] = ()

    def appears_in(self, text: str) -> bool:
        """Whether one of the words is in ``text``, its first letter in either case."""
        words = [*(word.strip() for word in self.name.split(",")), *self.forms]
        return any(
            re.search(rf"\b[{word[0]}{word[0].upper()}]{re.escape(word[1:])}(s|es)?\b", text)
            for word in words
        )


TERMS = {
    term.name: term
    for term in (
        Term(
            "stream, version",
            "one order's or warehouse's events, numbered 1, 2, 3...; an append adds the next",
        ),
        Term(
            "conflict",
            "two writers appended the same version at once; S3 kept one (a PUT with If-None-Match)",
            ("stream, version",),
        ),
        Term(
            "retry",
            "the loser of a conflict reads what is new, decides again, and appends the next"
            " version",
            ("conflict",),
            ("retries", "retried"),
        ),
        Term(
            "reactor",
            "turns each event into commands on other streams (an order placed: reserve its"
            " stock on the warehouse's), and stores how far it got",
            ("stream, version",),
        ),
        Term(
            "shard",
            "a share of the streams, by a hash of their names: one thread reacts to each",
            ("reactor",),
        ),
        Term(
            "duplicate",
            "a command sent again with the id it was first sent with (after a crash): its stream"
            " answers the first result and stores nothing",
            ("reactor",),
        ),
        Term(
            "parked",
            "an event whose reaction kept failing, set aside with its error for an operator",
            ("reactor",),
        ),
        Term(
            "flow, correlation id",
            "one order's events on every stream: each carries the order's id as its correlation"
            " id, and the id of the event that caused it",
            ("reactor",),
        ),
        Term(
            "read model, projector",
            "a view of the events for readers (a document per order, per product), kept by a"
            " projector",
        ),
        Term(
            "snapshot",
            "the state stored with each append: a load reads the newest one, not every event",
            ("stream, version",),
        ),
        Term(
            "position",
            "the version of each stream a read model has applied, committed with its documents",
            ("read model, projector", "stream, version"),
        ),
        Term(
            "pass",
            "one round of a projector or reactor: find the streams with new events, apply them"
            " (or react to them), store how far it got",
            ("stream, version",),
        ),
        Term(
            "feed",
            "an empty object PUT per append, so a pass lists one feed instead of every stream",
            ("pass",),
        ),
        Term(
            "full scan",
            "a pass that lists every stream: the first, then hourly in case a feed entry was lost",
            ("pass", "feed"),
        ),
        Term(
            "lease",
            "the right of one projector at a time to write a read model; it lapses unless renewed",
            ("read model, projector",),
        ),
        Term(
            "epoch",
            "a lease's number, one more at each new holder: a write of an older epoch is refused",
            ("lease",),
        ),
    )
}


class Glossary:
    """Says each term once: after the first section whose lines use it."""

    def __init__(self) -> None:
        self.said: set[str] = set()

    def notes(self, lines: Sequence[str]) -> list[str]:
        """One line for each term ``lines`` use that was not said yet, needed terms first."""
        text = "\n".join(lines)
        notes: list[str] = []

        def say(words: str) -> None:
            if words in self.said:
                return
            self.said.add(words)
            for needed in TERMS[words].needs:
                say(needed)
            notes.append(f"  · {words}: {TERMS[words].meaning}")

        for words, term in TERMS.items():
            if term.appears_in(text):
                say(words)
        return notes


def report(
    run: Contention, checks: Sequence[Check], *, verbose: bool = False
) -> tuple[list[str], int]:
    """The lines that tell ``run``, and the exit status: 0 if every check passed, else 1."""
    glossary = Glossary()
    sections = [raced(run), reacted(run), outcome(run)]
    if verbose:
        sections += [orders_table(run), stock_table(run)]
    sections.append(cost(run))
    if verbose:
        sections += [phases_table(run), projectors(run)]
    sections.append(checked(checks))
    lines: list[str] = []
    for section in sections:
        lines += ["", *section, *glossary.notes(section)]
    failed = sum(1 for check in checks if not check.passed)
    if failed:
        lines.append(f"FAILED: {failed} of {len(checks)} checks")
    elif not verbose:
        lines.append("(--verbose: each order, the requests of each phase, what the projectors did)")
    return lines, 1 if failed else 0


def raced(run: Contention) -> list[str]:
    """What raced, who lost and how often commands were retried."""
    ledger = run.shop.ledger
    conflicts = ledger.by_stream_type(ledger.conflicts)
    exhausted = ledger.by_stream_type(ledger.exhausted)
    commands = ledger.by_stream_type(ledger.commands)
    customers = f"{run.workers} thread{'s' if run.workers > 1 else ''}"
    lines = [
        (
            f"What raced: customers paying ({customers}) and the fulfilment reactor"
            f" ({FULFILMENT_SHARDS} shards, a thread each), at once"
        )
    ]
    for stream_type, label in (
        (Order.STREAM_TYPE, f"{len(run.plan)} order streams"),
        (Inventory.STREAM_TYPE, "1 warehouse stream"),
    ):
        sent = commands[stream_type] + exhausted[stream_type]
        losers = ", ".join(
            f"{service} {count}"
            for (kind, service), count in sorted(ledger.losers.items())
            if kind == stream_type and count
        )
        lines.append(
            f"  {label:<18}{conflicts[stream_type]:>4} conflicts in {sent:>3} commands"
            + (f", lost by {losers}" if losers else "")
        )
    resent = sum(exhausted.values())
    given_up = f"{resent} commands gave up and were sent again" if resent else "none gave up"
    lines.append(
        f"  the losers retried {sum(conflicts.values()) - resent} times in all, at most"
        f" {max(ledger.longest.values(), default=0)} for one command; {given_up}"
    )
    lines.append(
        f"  {run.duplicates_ignored} payment notices came twice: the second found its payment"
        " id recorded and stored nothing"
    )
    if run.payments_refused:
        lines.append(
            f"  {run.payments_refused} payments came after their order was cancelled (out of"
            " stock): the order refused them, for the provider to pay back"
        )
    return lines


def reacted(run: Contention) -> list[str]:
    """What the fulfilment reactor did, and one order's flow across the streams."""
    work, ledger = run.reacted, run.shop.ledger
    idle = ledger.unchanged_by["fulfilment"]
    lines = [
        "What the reactor did: fulfilment, then passes until a full scan found nothing new"
        + (" (an earlier run's positions dropped first)" if work.reset else ""),
        (
            f"  {work.events} events read in {work.passes} passes: {work.commands} commands sent,"
            f" {idle} of them stored nothing (an order not ready to ship, no stock to release)"
        ),
        f"  {work.duplicates} duplicates, {len(work.parked)} events parked",
    ]
    followed = _followed(run)
    if followed is None:
        return lines
    events = run.flow(followed)
    lines.append(
        f"  one flow across streams, order {followed} (its correlation id), in time order:"
    )
    if not events:
        return [*lines, "    no event carries it: see the checks"]
    by_id = {event.id: event for event in events}
    start = events[0].recorded_at
    for event in events:
        cause = by_id.get(event.metadata.get(CAUSATION_ID, ""))
        why = (
            f"caused by {cause.stream} v{cause.version}"
            if cause is not None
            else SENDERS.get(str(event.metadata.get("service")), "sent from outside")
        )
        seconds = (event.recorded_at - start).total_seconds()
        where = f"{event.stream} v{event.version}"
        lines.append(f"    +{seconds:.3f}s  {where:<26}{event.type:<16} {why}")
    return lines


def _followed(run: Contention) -> str | None:
    """The order whose flow the report follows: the first cancelled, else the first."""
    for order_id, outcome in run.outcomes.items():
        if outcome.state.status is OrderStatus.CANCELLED:
            return order_id
    return next(iter(run.outcomes), None)


def outcome(run: Contention) -> list[str]:
    """The orders and the stock, as a reader gets them from the read models."""
    summaries: dict[str, OrderSummary] | None = run.projected[run.shop.summaries.name].documents
    products: dict[str, ProductLevels] | None = run.projected[run.shop.stock_levels.name].documents
    if summaries is None or products is None:
        return ["The outcome: a read model is missing, see the checks"]
    lines = ["The outcome, as readers get it from the read models (a document each)"]
    for status, orders in by_status(summaries).items():
        refunds = sum(summary.refund_due_cents for summary in orders.values())
        why = f" (out of stock, {format_cents(refunds)} to refund)"
        lines.append(
            f"  {status:<10}{len(orders):>4}  {_some(list(orders))}"
            + (why if status is OrderStatus.CANCELLED else "")
        )
    totals = {sku: product.total for sku, product in sorted(products.items())}
    left = ", ".join(
        f"{sku} {stock.available} of {stock.received}" for sku, stock in totals.items()
    )
    lines.append(f"  {'in stock':<16}{left}")
    return lines


def cost(run: Contention) -> list[str]:
    """The run's S3 requests and dollars; requests per operation."""
    total = run_requests(run)
    dollars = total.cost(S3_STANDARD_PRICES)
    per_million = dollars / len(run.plan) * 1_000_000
    race = next(phase for phase in run.phases if phase.label == "pay and fulfil")
    projectors = sum(
        (phase.requests for phase in run.phases if phase.label == "projectors"), RequestCounts()
    )
    per_command = race.requests.total / max(run.race_commands, 1)
    return [
        f"What it cost: ${dollars:.6f} at S3 Standard prices, ${per_million:,.2f} a million orders",
        (
            f"  {total.total} S3 requests: {total}; racing, {per_command:.1f} per command"
            " (conflicts included)"
        ),
        (
            f"  one at a time: place an order {_typical(run.place_costs)}, load one"
            f" {_typical(run.load_costs)}"
        ),
        (
            f"  the reactor: {run.reacted.requests.total} of the {total.total} requests"
            f" ({run.reacted.commands} commands, and the passes that found what to react to)"
        ),
        f"  keeping the read models up to date: {projectors.total} of the {total.total} requests",
    ]


def checked(checks: Sequence[Check]) -> list[str]:
    """One line per check, and the problems of those that failed."""
    passed = sum(1 for check in checks if check.passed)
    lines = [f"Checks, every stream read back: {passed} of {len(checks)} passed"]
    for check in checks:
        summary = f": {check.summary}" if check.summary else ""
        lines.append(f"  {'PASS' if check.passed else 'FAIL'}  {check.title}{summary}")
        lines += [f"          {problem}" for problem in check.problems[:PROBLEMS_SHOWN]]
        if len(check.problems) > PROBLEMS_SHOWN:
            lines.append(f"          ... and {len(check.problems) - PROBLEMS_SHOWN} more")
    return lines


# With --verbose


def orders_table(run: Contention) -> list[str]:
    """Each order's outcome, version and conflicts (the busiest only, for many orders)."""
    ledger = run.shop.ledger
    conflicts = {
        order_id: ledger.conflicts[run.shop.orders.stream(order_id)] for order_id in run.outcomes
    }
    shown = list(run.outcomes)
    title = "The orders one by one"
    if len(shown) > TABLE_LIMIT:
        shown = sorted(shown, key=lambda order_id: (-conflicts[order_id], order_id))[:TABLE_LIMIT]
        title = f"The {TABLE_LIMIT} orders with the most conflicts"
    lines = [
        title,
        (
            f"  {'order':<8}{'lines':>5}{'total':>11}{'paid':>11}  {'stock':<9} "
            f"{'status':<10}{'version':>7}{'conflicts':>10}"
        ),
    ]
    for order_id in shown:
        version, state = run.outcomes[order_id].version, run.outcomes[order_id].state
        lines.append(
            f"  {order_id:<8}{len(state.lines):>5}{format_cents(state.total_cents):>11}"
            f"{format_cents(state.paid_cents):>11}  {state.stock:<9} {state.status:<10}"
            f"{version:>7}{conflicts[order_id]:>10}"
        )
    return lines


def stock_table(run: Contention) -> list[str]:
    """Units received, reserved and available per product (read model reserved-stock)."""
    products: dict[str, ProductLevels] | None = run.projected[run.shop.stock_levels.name].documents
    if products is None:
        return []
    warehouses = sorted({w for product in products.values() for w in product.warehouses})
    lines = [
        (
            f"The stock per product in {', '.join(warehouses)}"
            f" (read model {run.shop.stock_levels.name}, a document per product)"
        ),
        f"  {'product':<10}{'received':>9}{'reserved':>10}{'available':>11}{'orders short':>14}",
    ]
    for sku, product in sorted(products.items()):
        stock: ProductStock = product.total
        lines.append(
            f"  {sku:<10}{stock.received:>9}{stock.reserved:>10}{stock.available:>11}"
            f"{stock.short:>14}"
        )
    return lines


def phases_table(run: Contention) -> list[str]:
    """S3 requests by type, per phase and for the whole run."""
    lines = [f"{'S3 requests':<20}{'PUT':>7}{'GET':>7}{'LIST':>7}{'DELETE':>7}{'total':>7}"]
    for label, counts in [
        *((phase.label, phase.requests) for phase in run.phases),
        ("run", run_requests(run)),
    ]:
        lines.append(
            f"  {label:<18}{counts.put:>7}{counts.get:>7}{counts.list:>7}"
            f"{counts.delete:>7}{counts.total:>7}"
        )
    lines.append("  (the checks are not part of the run; the projectors' phase holds every pass)")
    prices = S3_STANDARD_PRICES
    lines.append(
        f"  S3 Standard prices: ${prices.put * 1000:g} per 1,000 PUT,"
        f" ${prices.list * 1000:g} per 1,000 LIST, ${prices.get * 1000:g} per 1,000 GET"
    )
    return lines


def projectors(run: Contention) -> list[str]:
    """What each projector's passes did and cost; what an idle pass and a read cost."""
    store = run.shop.read_models
    where = getattr(store, "name", type(store).__name__)
    lines = [f"The projectors, in a thread while the others raced, then once more each ({where})"]
    for name, report in run.projected.items():
        passes = report.background
        epoch = "?" if report.epoch is None else report.epoch
        scans = f"{passes.full_scans} full scan{'s' if passes.full_scans != 1 else ''}"
        if report.rebuilt:
            scans += " (a rebuild: an earlier run's documents were there)"
        lines.append(
            f"  {name:<17}{scans}, then {passes.passes - passes.full_scans}"
            f" passes over the feed: {passes.events} events, {passes.requests.total} requests;"
            f" lease epoch {epoch}"
        )
    lines.append(f"  {'a pass':<17}{'the last (feed)':<36}{'idle (feed)':<17}idle (full scan)")
    for name, report in run.projected.items():
        if report.last is None or report.idle_feed is None or report.idle_scan is None:
            lines.append(f"  {name:<17}failed: see the checks")
            continue
        last = f"{report.last.events} events: {report.last.requests}"
        lines.append(f"  {name:<17}{last:<36}{report.idle_feed!s:<17}{report.idle_scan}")
    lines.append("  an idle full scan LISTs the streams and each stream")
    for name, report in run.projected.items():
        if report.read_cost is None or report.list_cost is None or report.documents is None:
            continue
        lines.append(
            f"  {name:<17}a reader gets one document with {_s3(report.read_cost)},"
            f" all {len(report.documents)} with {_s3(report.list_cost)}"
        )
    return lines


def run_requests(run: Contention) -> RequestCounts:
    """The requests of every phase of the run (the checks' left out)."""
    return sum((phase.requests for phase in run.phases if phase.label != "checks"), RequestCounts())


def _s3(counts: RequestCounts) -> str:
    """``counts`` as the report says them: ``no S3 request`` when there are none."""
    return str(counts) if counts.total else "no S3 request"


def _typical(samples: Sequence[RequestCounts]) -> str:
    """The most common request mix among ``samples``."""
    if not samples:
        return "(not measured)"
    return str(Counter(samples).most_common(1)[0][0])


def _some(ids: Sequence[str], width: int = 40) -> str:
    """As many of ``ids`` as fit in about ``width`` characters, and how many more there are."""
    shown: list[str] = []
    for number, item in enumerate(ids):
        if len(" ".join([*shown, item])) > width:
            return " ".join([*shown, f"+{len(ids) - number} more"])
        shown.append(item)
    return " ".join(shown)
