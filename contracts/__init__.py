"""contracts: what flows between systems — Command, Event, Envelope and their codec.

Knows pydantic, never a broker.
"""

from contracts.base import Command, Contract, Event
from contracts.codec import AMQP_PREFIX, KAFKA_PREFIX, REDIS_PREFIX, Codec, escape
from contracts.envelope import Envelope
from contracts.errors import (
    ContractError,
    DecodeError,
    DuplicateContract,
    MalformedMessage,
    SchemaViolation,
    UnknownContract,
)
from contracts.registry import Registry, registry
from contracts.versions import Converters, NoConverter, converters, downcaster, upcaster

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
