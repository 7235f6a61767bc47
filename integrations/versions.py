"""Which version a consumer gets of an event that exists in several versions.

A producer that dual-publishes writes one record per version and tags each with the versions
written together (the ``publishedversions`` extension). A consumer declares one version:
  - a record in that version is delivered as it is;
  - a twin whose declared version is also on the topic is skipped (that twin will come);
  - otherwise the newest twin (or a lone record from an older part of the log) is converted
    through the registered upcasters/downcasters;
  - and without a converter it is dead-lettered: "no converter from v1 to v3 of <name>".
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

from interchange.adapters import Delivery
from interchange.contracts import Codec, Contract, DecodeError, Envelope, NoConverter, converters

log = logging.getLogger("interchange")

EXTENSION = "publishedversions"


@dataclass(frozen=True)
class Decision:
    envelope: Envelope | None = None
    """What to deliver (converted where needed); None to skip or dead-letter."""
    dead: str | None = None
    """Why it is dead-lettered, when it is."""


def twins(envelope: Envelope, prefix: str) -> set[int]:
    raw = envelope.headers.get(prefix + EXTENSION, "")
    return {int(v) for v in raw.split(",") if v.strip().isdecimal()}


def decide(envelope: Envelope, want: type[Contract], prefix: str) -> Decision:
    if envelope.type != want.contract_name:
        return Decision(
            dead=(
                f"{envelope.type} v{envelope.version} arrived on the channel of "
                f"{want.contract_name}, whose consumer reads only that contract"
            )
        )
    declared = want.contract_version
    if envelope.version == declared:
        return Decision(envelope)
    written = twins(envelope, prefix)
    if written and (declared in written or envelope.version != max(written)):
        return Decision()  # another twin of this event is the one for this consumer
    try:
        return Decision(envelope.with_data(converters.convert(envelope.data, declared)))
    except NoConverter as error:
        return Decision(dead=str(error))


def read_back(
    deliveries: Iterable[Delivery],
    contract: type[Contract],
    codec: Codec,
    on_error: Literal["raise", "skip"],
) -> Iterator[Contract]:
    """The contracts in replayed deliveries, each in ``contract``'s version. An undecodable
    record raises DecodeError, or is logged and skipped with ``on_error="skip"``."""
    for delivery in deliveries:
        try:
            envelope = codec.decode(delivery.message.headers, delivery.message.body)
            decision = decide(envelope, contract, codec.prefix)
            if decision.dead is not None:
                raise DecodeError(f"offset {delivery.offset}: {decision.dead}")
        except DecodeError as error:
            if on_error == "raise":
                raise
            log.warning("replay skipped offset %s: %s", delivery.offset, error)
            continue
        if decision.envelope is not None:
            yield decision.envelope.data
