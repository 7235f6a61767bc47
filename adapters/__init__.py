"""interchange.adapters: how messages move. Bytes and string headers only, never a contract.

The shape, the same for every broker:

    message.py      TransportMessage, Delivery, outcomes, every reserved header name
    protocols.py    CommandTransport, EventTransport, Spool, DedupeStore
    errors.py       our error tree; capabilities.py: what a backend can do
    backends.py     the one registry of backends by URL scheme
    lifecycle.py    consumer threads, backoff, open/close — shared by every adapter
    urls.py         options in URLs (one pydantic model per backend), redaction
    failover.py     transports that wrap a primary and a spool, themselves transports
                    (circuit.py: their circuit and counters; spool_names.py: lines named
                    after their primary, what the spool refuses to take)
    memory/ rabbitmq/ kafka/ redis/   one package per backend, with the same rooms:
        __init__.py   datasheet, CAPABILITIES, the guarded driver import, openers
        transport.py  the protocol verbs only
        wire.py       TransportMessage ⇄ the driver's message, both directions
        consumer.py   the consumer loop, given its collaborators, never the transport
        errors.py     the one place driver exceptions become ours
        options.py    the URL's query options
        plus what that broker alone needs (broker, topology, publisher, replay, stores)
"""

from interchange.adapters.backends import (
    SCHEMES,
    open_commands,
    open_dedupe,
    open_events,
    open_spool,
    probe,
)
from interchange.adapters.capabilities import Capabilities
from interchange.adapters.errors import (
    AccessRefused,
    BackendUnavailable,
    ConfigurationError,
    InvalidURL,
    PublishRejected,
    RequestTimeout,
    TransportError,
    UnknownBackend,
)
from interchange.adapters.message import (
    ACK,
    DLQ_ATTEMPTS,
    DLQ_ERROR,
    DLQ_GROUP,
    DLQ_REASON,
    DLQ_SOURCE,
    DLQ_TIME,
    Ack,
    DeadLetter,
    Delivery,
    DeliveryHandler,
    Outcome,
    Position,
    Retry,
    TransportMessage,
)
from interchange.adapters.protocols import (
    CommandTransport,
    DedupeStore,
    EventTransport,
    HasBacklog,
    LimitsMessageSize,
    Spool,
    Start,
    Subscription,
    SweepsDeadLetters,
    Verdict,
)
from interchange.adapters.urls import redact

__all__ = [
    "ACK",
    "DLQ_ATTEMPTS",
    "DLQ_ERROR",
    "DLQ_GROUP",
    "DLQ_REASON",
    "DLQ_SOURCE",
    "DLQ_TIME",
    "SCHEMES",
    "AccessRefused",
    "Ack",
    "BackendUnavailable",
    "Capabilities",
    "CommandTransport",
    "ConfigurationError",
    "DeadLetter",
    "DedupeStore",
    "Delivery",
    "DeliveryHandler",
    "EventTransport",
    "HasBacklog",
    "InvalidURL",
    "LimitsMessageSize",
    "Outcome",
    "Position",
    "PublishRejected",
    "RequestTimeout",
    "Retry",
    "Spool",
    "Start",
    "Subscription",
    "SweepsDeadLetters",
    "TransportError",
    "TransportMessage",
    "UnknownBackend",
    "Verdict",
    "open_commands",
    "open_dedupe",
    "open_events",
    "open_spool",
    "probe",
    "redact",
]
