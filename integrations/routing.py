"""Where each contract travels: the queue, exchange, broadcast group queue or topic its route
names (by default the contract's own name), with the configured channel prefix."""

from __future__ import annotations

from collections.abc import Iterator

from interchange.config import Route, Settings
from interchange.contracts import Contract, Event


class Routing:
    """The names of a service's channels, from its settings (the Bus has them all)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def route(self, contract: type[Contract]) -> Route:
        return self.settings.route(contract.contract_name)

    def name(self, name: str) -> str:
        """A channel name as this service sees it: the prefix, then the name."""
        return self.settings.channel_prefix + name

    def queue_of(self, contract: type[Contract]) -> str:
        """The queue a command is sent to (point-to-point)."""
        return self.name(self.route(contract).queue or contract.contract_name)

    def exchange_of(self, contract: type[Contract]) -> str:
        """The exchange a command is broadcast to."""
        return self.name(self.route(contract).exchange or contract.contract_name)

    def group_queue_of(self, contract: type[Contract], group: str) -> str:
        """The queue of one broadcast group: ``<exchange>.<group>``."""
        return f"{self.exchange_of(contract)}.{group}"

    def topic_of(self, contract: type[Contract], version: int | None = None) -> str:
        """The contract's topic; with the per-version layout, that of ``version`` (by default
        the contract's own)."""
        route = self.route(contract)
        topic = self.name(route.topic or contract.contract_name)
        if route.layout == "per-version":
            return f"{topic}.v{version or contract.contract_version}"
        return topic

    def dead_letter_channel_of(self, contract: type[Contract], group: str | None = None) -> str:
        """Where the contract's dead letters go: ``<topic>.dlq`` for an event, ``<queue>.dlq``
        for a command (the group's own queue when ``group`` is given)."""
        if issubclass(contract, Event):
            return f"{self.topic_of(contract)}.dlq"
        queue = self.group_queue_of(contract, group) if group else self.queue_of(contract)
        return f"{queue}.dlq"

    def declared_groups(self) -> Iterator[tuple[str, str]]:
        """(group queue, exchange) of every broadcast group the routes declare ahead."""
        for name, route in self.settings.routes.items():
            exchange = self.name(route.exchange or name)
            for group in route.groups:
                yield f"{exchange}.{group}", exchange
