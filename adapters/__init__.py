"""adapters: how messages move. One module per broker behind small transport protocols;
bytes and string headers only, never a contract.
"""

from interchange.adapters._urls import redact
from interchange.adapters.backends import (
    COMMAND_BACKENDS,
    EVENT_BACKENDS,
    PROBES,
    open_commands,
    open_events,
    probe,
)
from interchange.adapters.capabilities import Capabilities
from interchange.adapters.errors import (
    BackendUnavailable,
    BrokerUnavailable,
    PublishRejected,
    RequestTimeout,
    TransportError,
    UnknownBackend,
)
from interchange.adapters.message import (
    ACK,
    DLQ_ATTEMPTS,
    DLQ_ERROR,
    DLQ_REASON,
    DLQ_SOURCE,
    Ack,
    DeadLetter,
    Delivery,
    DeliveryHandler,
    Outcome,
    Retry,
    TransportMessage,
)
from interchange.adapters.protocols import CommandTransport, EventTransport, Start, Subscription

__all__ = [
    "ACK",
    "COMMAND_BACKENDS",
    "DLQ_ATTEMPTS",
    "DLQ_ERROR",
    "DLQ_REASON",
    "DLQ_SOURCE",
    "EVENT_BACKENDS",
    "PROBES",
    "Ack",
    "BackendUnavailable",
    "BrokerUnavailable",
    "Capabilities",
    "CommandTransport",
    "DeadLetter",
    "Delivery",
    "DeliveryHandler",
    "EventTransport",
    "Outcome",
    "PublishRejected",
    "RequestTimeout",
    "Retry",
    "Start",
    "Subscription",
    "TransportError",
    "TransportMessage",
    "UnknownBackend",
    "open_commands",
    "open_events",
    "probe",
    "redact",
]
