"""RabbitMQ through kombu / py-amqp.

Features
    today: ``probe`` (connection + channel, for ``interchange health``); the command transport
    (send, broadcast, consume, request) is the work of issue 4.
Connection string
    ``amqp://user:password@host:5672/vhost``, ``amqps://...`` for TLS.
Options
    none yet.
"""

from __future__ import annotations

from adapters._urls import redact
from adapters.errors import BackendUnavailable

try:
    import kombu
except ImportError as missing:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "the amqp:// backend needs kombu: pip install 'interchange[kombu]'"
    ) from missing


def probe(url: str, timeout: float = 5.0) -> str:
    """Open a connection and a channel; return the broker's product and version."""
    connection = kombu.Connection(url, connect_timeout=timeout, transport_options={})
    try:
        connection.ensure_connection(max_retries=0, timeout=timeout)
        connection.channel().close()
        info = connection.connection.server_properties
        product = info.get("product", "AMQP broker")
        version = info.get("version", "?")
        return f"{_text(product)} {_text(version)}"
    except Exception as error:  # every driver and socket failure means: not reachable
        raise BackendUnavailable(f"RabbitMQ at {redact(url)}: {error}") from error
    finally:
        connection.release()


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
