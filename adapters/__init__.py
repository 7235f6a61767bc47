"""adapters: how messages move. One module per broker behind small transport protocols;
bytes and string headers only, never a contract.
"""

from adapters._urls import redact
from adapters.backends import (
    COMMAND_BACKENDS,
    EVENT_BACKENDS,
    PROBES,
    open_commands,
    open_events,
    probe,
)
from adapters.capabilities import Capabilities
from adapters.errors import (
    BackendUnavailable,
    BrokerUnavailable,
    PublishRejected,
    RequestTimeout,
    TransportError,
    UnknownBackend,
)
from adapters.message import (
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
from adapters.protocols import CommandTransport, EventTransport, Start, Subscription

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
