"""The demo story.

1. A legacy shop system drops ``orders.csv`` into a folder. The drop-folder connector claims
   it, turns each row into a PlaceOrder command and archives the file; a garbled row is
   rejected with its line and reason (``archive/orders.csv.rejects.csv``), not skipped.
2. The order service handles PlaceOrder (competing consumers on one queue) and publishes
   OrderPlaced to the event log. An order for zero items fails every attempt and ends in the
   dead-letter queue with the exception text.
3. Billing and shipping read the log in their own consumer groups: each sees every event.
4. Analytics joins late, starts from the earliest offset, and replays the whole log.
"""

from __future__ import annotations

import csv
import json
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from rich.console import Console
from rich.table import Table

from interchange.adapters import redact
from interchange.bus import Bus
from interchange.config import DropFolderConnector, RetryPolicy, Route, Settings
from interchange.connectors.folders import DropFolder
from interchange.context import HandlerContext
from interchange.dead_letters import DeadLetterRecord
from interchange.demo.contracts import OrderPlaced, PlaceOrder
from interchange.demo.http_leg import legacy_over_http


class _Log:
    """What each participant saw, safe to append to from worker threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: dict[str, list[str]] = {}

    def add(self, who: str, what: str) -> None:
        with self.lock:
            self.seen.setdefault(who, []).append(what)

    def count(self, who: str) -> int:
        with self.lock:
            return len(self.seen.get(who, []))


def _wait(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _demo_settings(settings: Settings) -> Settings:
    # A fresh channel prefix per run keeps a real broker's older demo runs out of this one.
    prefix = settings.channel_prefix or f"demo-{uuid.uuid4().hex[:8]}."
    routes = dict(settings.routes)
    routes.setdefault(
        PlaceOrder.contract_name,
        Route(retry=RetryPolicy(max_attempts=3, initial_delay=0.05)),
    )
    routes.setdefault(OrderPlaced.contract_name, Route(partition_key="order_id"))
    return settings.model_copy(update={"channel_prefix": prefix, "routes": routes})


def run_demo(settings: Settings, console: Console, orders: Path | None = None) -> bool:
    """Run the story; True when every participant saw what it should."""
    bus = Bus(_demo_settings(settings))
    log = _Log()
    console.rule("[bold]Interchange demo[/bold]")
    console.print(
        f"commands travel on [cyan]{redact(settings.backends.commands)}[/cyan], "
        f"events on [cyan]{redact(settings.backends.events)}[/cyan]\n"
    )

    @bus.handles(PlaceOrder)
    def place_order(cmd: PlaceOrder, ctx: HandlerContext) -> None:
        if cmd.quantity <= 0:
            raise ValueError(f"order {cmd.order_id} asks for {cmd.quantity} items")
        total = cmd.quantity * cmd.unit_price_cents
        ctx.publish(
            OrderPlaced(
                order_id=cmd.order_id, sku=cmd.sku, quantity=cmd.quantity, total_cents=total
            )
        )
        log.add("order-service", cmd.order_id)

    def service(name: str, verb: Callable[[OrderPlaced], str]) -> Callable[..., None]:
        def handle(evt: OrderPlaced, ctx: HandlerContext) -> None:
            log.add(name, evt.order_id)
            console.print(f"  [green]{name:>9}[/green] {verb(evt)}")

        return handle

    bus.subscribes(OrderPlaced, group="billing")(
        service("billing", lambda e: f"invoices {e.order_id} for {e.total_cents / 100:.2f}")
    )
    bus.subscribes(OrderPlaced, group="shipping")(
        service("shipping", lambda e: f"packs {e.quantity} x {e.sku} for {e.order_id}")
    )
    dead: list[DeadLetterRecord] = []
    bus.handles_dead_letters(PlaceOrder)(dead.append)

    source = orders or Path(str(resources.files("interchange.demo") / "orders.csv"))
    console.print(
        f"[bold]1.[/bold] The legacy shop drops [cyan]{source.name}[/cyan] into a folder; the "
        "drop-folder connector claims it and sends a PlaceOrder per row:"
    )
    with tempfile.TemporaryDirectory(prefix="interchange-demo-") as folder:
        drop = DropFolder(
            bus,
            DropFolderConnector(
                name="shop", path=Path(folder), contract=PlaceOrder.contract_name, stable_checks=1
            ),
        )
        shutil.copy(source, drop.folder / source.name)
        sent = drop.poll_once()
        rejected = _rejects(drop.archive / f"{source.name}.rejects.csv")
    console.print(f"  sent {sent} PlaceOrder commands; {source.name} archived")
    for line, reason, row in rejected:
        console.print(f"  line {line}: [red]rejected[/red] {row.get('order_id')} ({reason})")
    console.print(
        "\n[bold]2.[/bold] The queue kept them until now: the order service starts, handles "
        "each PlaceOrder and publishes OrderPlaced; billing and shipping each read the log in "
        "their own consumer group:"
    )
    with bus:
        # every command ends handled or dead-lettered; then each group has every event
        finished = _wait(lambda: log.count("order-service") + len(dead) >= sent, 30)
        placed = log.count("order-service")
        finished = finished and _wait(
            lambda: log.count("billing") >= placed and log.count("shipping") >= placed, 30
        )
    for record in dead:
        console.print(f"  [red]dead letter[/red] after {record.attempts} attempts: {record.reason}")

    console.print(
        "\n[bold]3.[/bold] Analytics joins late, starting at the earliest offset of the log:"
    )

    @bus.subscribes(OrderPlaced, group="analytics", start="earliest")
    def analytics(evt: OrderPlaced, ctx: HandlerContext) -> None:
        log.add("analytics", evt.order_id)

    with bus:
        finished = _wait(lambda: log.count("analytics") >= placed, timeout=30) and finished
    console.print(f"  analytics replayed {log.count('analytics')} past events")

    console.print(
        "\n[bold]4.[/bold] A legacy system that only speaks HTTP posts an order to the gateway; "
        "another gets the event as a signed webhook:"
    )
    finished = legacy_over_http(bus, console, lambda done: _wait(done, 30)) and finished
    with bus:  # every group reads the HTTP order's event too
        finished = finished and _wait(
            lambda: (
                min(log.count(w) for w in ("billing", "shipping", "analytics"))
                >= log.count("order-service")
            ),
            30,
        )
    replayed = [e.order_id for e in bus.replay(OrderPlaced)]
    bus.close()

    table = Table(title="What each participant saw")
    table.add_column("participant")
    table.add_column("messages", justify="right")
    table.add_column("order ids")
    for who in ("order-service", "billing", "shipping", "analytics"):
        table.add_row(who, str(log.count(who)), ", ".join(sorted(log.seen.get(who, []))))
    table.add_row("dead letters", str(len(dead)), ", ".join(_ids(dead)))
    table.add_row(
        "rejected rows",
        str(len(rejected)),
        ", ".join(str(row.get("order_id")) for _, _, row in rejected),
    )
    console.print()
    console.print(table)
    ok = (
        finished
        and sorted(replayed) == sorted(log.seen.get("billing", []))
        and all(sorted(log.seen.get(w, [])) == sorted(replayed) for w in ("shipping", "analytics"))
    )
    console.print(
        "[bold green]demo complete[/bold green]" if ok else "[bold red]demo failed[/bold red]"
    )
    return ok


def _rejects(path: Path) -> list[tuple[str, str, dict[str, str]]]:
    """(line, reason, record) of each row the drop folder refused."""
    if not path.exists():
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [(row["line"], row["reason"], json.loads(row["record"])) for row in rows]


def _ids(records: list[DeadLetterRecord]) -> list[str]:
    return [
        r.envelope.data.order_id
        for r in records
        if r.envelope is not None and isinstance(r.envelope.data, PlaceOrder)
    ]
