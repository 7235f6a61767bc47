"""Interchange: one facade for commands (RabbitMQ) and events (Kafka), Redis as the fallback,
and an in-memory default.

    from interchange import Bus, Command, Event

Installed from three folders of the repository under one namespace: ``interchange`` (this
package, from ``integrations/``: the Bus, configuration, dispatch, CLI, connectors and the pytest
plugin), ``interchange.contracts`` (what flows) and ``interchange.adapters`` (how it moves).
"""

from interchange.adapters import Position
from interchange.bus import Bus
from interchange.config import Backends, RetryPolicy, Route, Settings, load_settings
from interchange.context import HandlerContext
from interchange.contracts import Command, Contract, Envelope, Event
from interchange.dead_letters import DeadLetterRecord
from interchange.dedupe import DedupeStore, MemoryDedupeStore
from interchange.dispatch import Reject, RetryLater
from interchange.environment import ConfigurationWarning
from interchange.errors import (
    BackendUnavailable,
    ConfigurationError,
    ContractError,
    DecodeError,
    DuplicateContract,
    MalformedMessage,
    PublishRejected,
    RequestTimeout,
    SchemaViolation,
    TransportError,
    UnknownBackend,
    UnknownContract,
)
from interchange.registrations import DuplicateHandler, InvalidRoute

__all__ = [
    "BackendUnavailable",
    "Backends",
    "Bus",
    "Command",
    "ConfigurationError",
    "ConfigurationWarning",
    "Contract",
    "ContractError",
    "DeadLetterRecord",
    "DecodeError",
    "DedupeStore",
    "DuplicateContract",
    "DuplicateHandler",
    "Envelope",
    "Event",
    "HandlerContext",
    "InvalidRoute",
    "MalformedMessage",
    "MemoryDedupeStore",
    "Position",
    "PublishRejected",
    "Reject",
    "RequestTimeout",
    "RetryLater",
    "RetryPolicy",
    "Route",
    "SchemaViolation",
    "Settings",
    "TransportError",
    "UnknownBackend",
    "UnknownContract",
    "load_settings",
]
