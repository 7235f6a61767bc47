"""RabbitMQ through kombu / py-amqp: the home of commands.

Features
    point-to-point (``send``, ``send_many``): a durable queue per route, competing consumers;
    publish-subscribe (``broadcast``): a durable fanout exchange, one durable queue per group;
    request/response over direct reply-to (``amq.rabbitmq.reply-to``: no reply queue), each
    waiting request reading its reply on a pooled connection of its own;
    publisher confirms on every publish, pipelined in a window, with ``mandatory``: an
    unroutable command raises PublishRejected instead of vanishing;
    manual ack only after the handler answered; bounded prefetch;
    retries with backoff through delay queues (per-message TTL + dead-lettering back to the
    queue: no sleeping consumer); dead letters to ``<queue>.dlq`` with the reason in headers;
    our own attempt count (RabbitMQ 3.x classic queues have no delivery limit);
    reconnection with backoff for publishers and consumers; unacked messages come back.
Connection string
    ``amqp://user:password@host:5672/vhost`` or ``amqps://...``, with optional query options.
Options (URL query; anything else is refused)
    ``prefetch`` (100) unacked messages per consumer; ``queue_type`` (``classic`` | ``quorum``);
    ``window`` (500) unconfirmed publishes in flight; ``confirm_timeout`` (30) seconds;
    ``connect_timeout`` (10) seconds; ``heartbeat`` (30) seconds.
Guarantees
    At least once. A send returns only after the broker confirmed it. Bodies are never
    deserialized by kombu (no pickle, whatever the content type): they reach the codec as bytes.

Rooms: ``transport`` (the protocol verbs), ``publisher`` (streamed confirms), ``consumer``
(consumer threads), ``requester`` (direct reply-to), ``topology`` (queue arguments, delay
queues, declarations), ``wire`` (TransportMessage ⇄ AMQP message), ``errors`` (driver
exceptions → ours), ``options``.
"""

from __future__ import annotations

from interchange.adapters.capabilities import Capabilities

try:
    import amqp  # noqa: F401
    import kombu  # noqa: F401
except ImportError as missing:
    raise ImportError(
        f"the amqp:// backend needs kombu ({missing}): pip install 'interchange-bus[kombu]'"
    ) from missing

CAPABILITIES: Capabilities = Capabilities(
    system="rabbitmq",
    header_prefix="cloudEvents_",
    persistent=True,
    ordered_log=False,
    consumer_groups=True,
    offsets=False,
    replay=False,
    request_reply=True,
    survives_restart=True,
)

from interchange.adapters.rabbitmq.transport import RabbitMQCommandTransport, probe  # noqa: E402

open_commands = RabbitMQCommandTransport

__all__ = ["CAPABILITIES", "RabbitMQCommandTransport", "open_commands", "probe"]
