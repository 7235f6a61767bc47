"""Where each contract travels: the queue, exchange, broadcast group queue or topic its route
names (by default the contract's own name), with the configured channel prefix."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any, cast

from interchange.adapters import (
    DLQ_GROUP,
    Delivery,
    DeliveryHandler,
    EventTransport,
    Outcome,
    Start,
    Subscription,
    SweepsDeadLetters,
    TransportMessage,
    Verdict,
)
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

    def grouped(self, events: EventTransport) -> EventTransport:
        """``events`` with this service's consumer group names as the broker sees them: where
        group names are one namespace for the whole cluster (Kafka), the channel prefix goes
        on them too, so two prefixes sharing a cluster never share a group. Elsewhere a group
        lives inside its (prefixed) topic or stream already and keeps its name."""
        prefix = self.settings.channel_prefix
        if not prefix or not events.capabilities.cluster_wide_groups:
            return events
        return cast(EventTransport, _PrefixedGroups(events, prefix))

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


class _PrefixedGroups:
    """An event transport whose consumer groups carry ``prefix`` on the broker: groups given to
    subscribe, seek and backlog are prefixed, and the group a dead letter names (read from a
    ``.dlq`` channel, or swept) loses it again, so the service sees its own group names both
    ways. Every other attribute is the wrapped transport's own."""

    def __init__(self, inner: EventTransport, prefix: str) -> None:
        self._inner, self._prefix = inner, prefix

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def subscribe(
        self,
        topic: str,
        group: str,
        handler: DeliveryHandler,
        *,
        start: Start = "earliest",
        workers: int = 1,
    ) -> Subscription:
        if topic.endswith(".dlq"):  # only dead letters name a group: other deliveries go as is
            handler = self._naming_back(handler)
        return self._inner.subscribe(
            topic, self._prefix + group, handler, start=start, workers=workers
        )

    def seek(self, topic: str, group: str, to: Start) -> None:
        self._inner.seek(topic, self._prefix + group, to)

    def backlog(self, channel: str, group: str | None) -> dict[str, int]:
        backlog = getattr(self._inner, "backlog", None)
        if backlog is None:
            return {}
        return cast(dict[str, int], backlog(channel, group and self._prefix + group))

    def sweep(self, channel: str, decide: Callable[[TransportMessage], Verdict]) -> int:
        sweep = cast(SweepsDeadLetters, self._inner).sweep
        return sweep(channel, lambda message: decide(self._named_back(message)))

    def _naming_back(self, handler: DeliveryHandler) -> DeliveryHandler:
        def named_back(delivery: Delivery) -> Outcome:
            return handler(replace(delivery, message=self._named_back(delivery.message)))

        return named_back

    def _named_back(self, message: TransportMessage) -> TransportMessage:
        """The dead letter with the group that gave it up as the service names it."""
        group = message.headers.get(DLQ_GROUP)
        if group is None or not group.startswith(self._prefix):
            return message
        named = {**message.headers, DLQ_GROUP: group.removeprefix(self._prefix)}
        return replace(message, headers=named)
