"""Every error Interchange raises, in one place for callers to import.

ContractError                      (contracts)
├── DuplicateContract
└── DecodeError
    ├── MalformedMessage
    ├── UnknownContract
    └── SchemaViolation
TransportError                     (adapters)
├── BackendUnavailable  (alias BrokerUnavailable)
├── PublishRejected
├── RequestTimeout
└── UnknownBackend
"""

from interchange.adapters.errors import (
    BackendUnavailable,
    BrokerUnavailable,
    PublishRejected,
    RequestTimeout,
    TransportError,
    UnknownBackend,
)
from interchange.contracts.errors import (
    ContractError,
    DecodeError,
    DuplicateContract,
    MalformedMessage,
    SchemaViolation,
    UnknownContract,
)

__all__ = [
    "BackendUnavailable",
    "BrokerUnavailable",
    "ContractError",
    "DecodeError",
    "DuplicateContract",
    "MalformedMessage",
    "PublishRejected",
    "RequestTimeout",
    "SchemaViolation",
    "TransportError",
    "UnknownBackend",
    "UnknownContract",
]
