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

__all__ = [
    "AMQP_PREFIX",
    "KAFKA_PREFIX",
    "REDIS_PREFIX",
    "Codec",
    "Command",
    "Contract",
    "ContractError",
    "DecodeError",
    "DuplicateContract",
    "Envelope",
    "Event",
    "MalformedMessage",
    "Registry",
    "SchemaViolation",
    "UnknownContract",
    "escape",
    "registry",
]
