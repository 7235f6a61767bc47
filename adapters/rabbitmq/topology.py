"""What RabbitMQ must hold before messages flow: durable queues, fanout exchanges, bindings
and delay queues. Queue arguments follow from a queue's name alone, so every service declares
the same thing (RabbitMQ refuses a redeclaration with other arguments)."""

from __future__ import annotations

from typing import Any


def queue_arguments(name: str, queue_type: str) -> dict[str, Any]:
    """Broker-side dead-lettering (rejects, quorum delivery limits) lands in ``<name>.dlq``; a
    dead-letter queue has none of its own."""
    arguments: dict[str, Any] = {"x-queue-type": queue_type}
    if not name.endswith(".dlq"):
        arguments["x-dead-letter-exchange"] = ""
        arguments["x-dead-letter-routing-key"] = f"{name}.dlq"
    return arguments


def delay_queue(name: str, delay: float) -> tuple[str, dict[str, Any]]:
    """A queue that holds messages ``delay`` seconds, then dead-letters them back to ``name``:
    retries with backoff without sleeping in a consumer. One queue per delay keeps TTLs equal
    within a queue, so no message waits behind a longer one; unused ones expire."""
    millis = max(1, round(delay * 1000))
    return f"{name}.delay.{millis}", {
        "x-message-ttl": millis,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": name,
        "x-expires": millis * 2 + 60_000,
    }


class Topology:
    """Declares on a channel, remembering what it declared so each thing is declared once per
    connection (``forget()`` after a reconnect)."""

    def __init__(self, queue_type: str) -> None:
        self.queue_type = queue_type
        self.declared: set[str] = set()

    def forget(self) -> None:
        self.declared.clear()

    def queue(self, channel: Any, queue: str, exchange: str | None = None) -> None:
        """A durable queue, and its fanout exchange and binding when ``exchange`` is given."""
        if queue not in self.declared:
            channel.queue_declare(
                queue,
                durable=True,
                auto_delete=False,
                arguments=queue_arguments(queue, self.queue_type),
            )
            self.declared.add(queue)
        if exchange is not None and f"{exchange}->{queue}" not in self.declared:
            self.exchange(channel, exchange)
            channel.queue_bind(queue, exchange, routing_key="")
            self.declared.add(f"{exchange}->{queue}")

    def exchange(self, channel: Any, exchange: str) -> None:
        if f"exchange:{exchange}" not in self.declared:
            channel.exchange_declare(exchange, "fanout", durable=True, auto_delete=False)
            self.declared.add(f"exchange:{exchange}")

    def delay_queue(self, channel: Any, queue: str, delay: float) -> str:
        """Declare the delay queue for ``delay`` seconds; return its name."""
        name, arguments = delay_queue(queue, delay)
        if name not in self.declared:
            channel.queue_declare(name, durable=True, auto_delete=False, arguments=arguments)
            self.declared.add(name)
        return name
