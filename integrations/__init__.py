"""integrations: how systems plug in — the Bus facade, configuration, worker, CLI, legacy
connectors and the pytest plugin."""

from integrations.bus import Bus, DeadLetterRecord
from integrations.config import Backends, RetryPolicy, Route, Settings, load_settings
from integrations.context import HandlerContext
from integrations.dedupe import DedupeStore, MemoryDedupeStore
from integrations.errors import (
    BackendUnavailable,
    BrokerUnavailable,
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

__all__ = [
    "BackendUnavailable",
    "Backends",
    "BrokerUnavailable",
    "Bus",
    "ContractError",
    "DeadLetterRecord",
    "DecodeError",
    "DedupeStore",
    "DuplicateContract",
    "HandlerContext",
    "MalformedMessage",
    "MemoryDedupeStore",
    "PublishRejected",
    "RequestTimeout",
    "RetryPolicy",
    "Route",
    "SchemaViolation",
    "Settings",
    "TransportError",
    "UnknownBackend",
    "UnknownContract",
    "load_settings",
]
