"""Envelope: a contract plus the CloudEvents 1.0 attributes that travel with it.

Attribute names follow CloudEvents: ``id``, ``source``, ``type`` (the contract name),
``specversion``, ``time``, ``datacontenttype``, and our extensions ``dataversion`` (the contract
version), ``correlationid``, ``causationid`` and ``partitionkey``. ``headers`` are free-form
string headers that travel beside them untouched.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import MappingProxyType

from interchange.contracts.base import Contract

SPECVERSION = "1.0"
JSON = "application/json"


@dataclass(frozen=True, slots=True)
class Envelope:
    data: Contract
    id: str
    source: str
    type: str
    version: int
    time: datetime
    specversion: str = SPECVERSION
    datacontenttype: str = JSON
    correlation_id: str | None = None
    causation_id: str | None = None
    partition_key: str | None = None
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def wrap(
        cls,
        data: Contract,
        *,
        source: str,
        id: str | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        partition_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        time: datetime | None = None,
    ) -> Envelope:
        """Envelope a contract instance with a fresh id and the current UTC time."""
        return cls(
            data=data,
            id=id or str(uuid.uuid4()),
            source=source,
            type=data.contract_name,
            version=data.contract_version,
            time=time or datetime.now(UTC),
            correlation_id=correlation_id,
            causation_id=causation_id,
            partition_key=partition_key,
            headers=MappingProxyType(dict(headers or {})),
        )

    def with_data(self, data: Contract) -> Envelope:
        """The same envelope around another payload (used when converting versions)."""
        return replace(self, data=data, type=data.contract_name, version=data.contract_version)
