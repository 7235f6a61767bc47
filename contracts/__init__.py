"""contracts: what flows between systems — Command, Event, Envelope and their codec.

Knows pydantic, never a broker.
"""

from interchange.contracts.base import Command, Contract, Event
from interchange.contracts.codec import AMQP_PREFIX, KAFKA_PREFIX, REDIS_PREFIX, Codec, escape
from interchange.contracts.envelope import Envelope
from interchange.contracts.errors import (
    ContractError,
    DecodeError,
    DuplicateContract,
    MalformedMessage,
    SchemaViolation,
    UnknownContract,
)
from interchange.contracts.registry import Registry, registry
from interchange.contracts.versions import Converters, NoConverter, converters, downcaster, upcaster

__all__ = [
    "AMQP_PREFIX",
    "KAFKA_PREFIX",
    "REDIS_PREFIX",
    "Codec",
    "Command",
    "Contract",
    "ContractError",
    "Converters",
    "DecodeError",
    "DuplicateContract",
    "Envelope",
    "Event",
    "MalformedMessage",
    "NoConverter",
    "Registry",
    "SchemaViolation",
    "UnknownContract",
    "converters",
    "downcaster",
    "escape",
    "registry",
    "upcaster",
]
