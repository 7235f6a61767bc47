"""Errors raised by contracts: declaring them, and turning bytes back into them.

    ContractError
    ├── DuplicateContract      a second model claims a (name, version) already taken
    └── DecodeError            bytes + headers could not become a contract; ``reason`` says why
        ├── MalformedMessage   bad headers, unsupported content type, body not JSON, too large
        ├── UnknownContract    no registered model for the type / version on the wire
        └── SchemaViolation    valid JSON that the model rejects (missing, extra, wrong fields)

A consumer turns every DecodeError into a dead letter carrying ``str(error)``; none of them
echoes the offending input (pydantic's input echo is switched off on contracts).
"""

from __future__ import annotations


class ContractError(Exception):
    """Base of every error about contracts."""


class DuplicateContract(ContractError):
    """Two different models declared the same (name, version)."""


class DecodeError(ContractError):
    """A transport message could not be decoded into a contract."""


class MalformedMessage(DecodeError):
    """Headers or body are not a well-formed CloudEvent in binary mode."""


class UnknownContract(DecodeError):
    """The type or version on the wire names no registered contract."""


class SchemaViolation(DecodeError):
    """The body is JSON but does not satisfy the contract's schema."""
