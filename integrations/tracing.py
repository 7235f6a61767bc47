"""OpenTelemetry traces: a producer span on every send and publish, a consumer span on every
handling, following OpenTelemetry's messaging conventions, and the W3C trace context carried
across the broker as the CloudEvents distributed-tracing extension (``traceparent`` and
``tracestate`` under the binding's prefix: ``ce_traceparent`` on Kafka and Redis,
``cloudEvents_traceparent`` on AMQP).

Optional (extra ``otel``, which installs opentelemetry-api only). Without the API installed
nothing here is imported and the transports are left unwrapped; with it installed, each call
checks whether an application set a tracer provider (``trace.set_tracer_provider``) and costs
nothing more until one does. A handler's ``ctx.send/publish/request`` run inside its consumer
span, so what it sends continues the trace.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from interchange.adapters import CommandTransport, EventTransport, TransportMessage


def _installed() -> bool:
    try:
        return importlib.util.find_spec("opentelemetry.trace") is not None
    except (ImportError, ValueError):  # a parent package missing, or blocked in sys.modules
        return False


AVAILABLE = _installed()
"""True when opentelemetry-api is installed (``pip install 'interchange-bus[otel]'``)."""

TRACE_ATTRIBUTES = ("traceparent", "tracestate")
"""The CloudEvents distributed-tracing extension's attributes."""
NO_SPAN: AbstractContextManager[None] = nullcontext()


_api: Any = None
"""opentelemetry.trace, imported on first use."""
_from_environment = False
"""Whether OTEL_PYTHON_TRACER_PROVIDER names a provider (read once, with the import)."""
_cached: tuple[Any, Any] = (None, None)
"""(provider, its tracer or None): looked up again only when the provider changes."""


def tracer_set() -> bool:
    """Whether the application set a tracer provider (spans would be recorded)."""
    return _tracer() is not None


def _tracer() -> Any:
    """The tracer of the provider the application set, or None while it set none — then
    tracing costs this look at one module global (``get_tracer_provider()`` would look the
    environment up on every call, ~1 µs a message)."""
    global _api, _cached, _from_environment
    if _api is None:
        from opentelemetry import trace

        _api = trace
        _from_environment = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ
    provider = getattr(_api, "_TRACER_PROVIDER", None)
    if provider is None:
        if not _from_environment:
            return None
        provider = _api.get_tracer_provider()  # configured by environment: loaded once
    known, tracer = _cached
    if provider is not known:
        real = not isinstance(provider, _api.ProxyTracerProvider | _api.NoOpTracerProvider)
        tracer = provider.get_tracer("interchange") if real else None
        _cached = (provider, tracer)
    return tracer


def _propagator() -> Any:
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return TraceContextTextMapPropagator()


class Tracing:
    """Spans of one broker (``system``: OpenTelemetry's ``messaging.system`` value) whose trace
    context travels in headers named with the binding's ``prefix``."""

    def __init__(self, system: str, prefix: str) -> None:
        self.system, self.prefix = system, prefix
        self._propagator = _propagator()

    @contextmanager
    def producing(
        self, operation: str, destination: str, messages: list[TransportMessage]
    ) -> Iterator[list[TransportMessage]]:
        """A producer span around storing ``messages``; yields them with its trace context in
        their headers (unchanged when no provider is set)."""
        tracer = _tracer()
        if tracer is None:
            yield messages
            return
        from opentelemetry.trace import SpanKind

        attributes: dict[str, Any] = {
            "messaging.system": self.system,
            "messaging.destination.name": destination,
            "messaging.operation.type": "send",
            "messaging.operation.name": operation,
        }
        if len(messages) == 1:
            attributes["messaging.message.id"] = messages[0].id
        else:
            attributes["messaging.batch.message_count"] = len(messages)
        with tracer.start_as_current_span(
            f"{operation} {destination}", kind=SpanKind.PRODUCER, attributes=attributes
        ):
            carrier: dict[str, str] = {}
            self._propagator.inject(carrier)
            extra = {self.prefix + name: value for name, value in carrier.items()}
            yield [replace(m, headers={**m.headers, **extra}) for m in messages]

    def processing(
        self,
        headers: Mapping[str, str],
        destination: str,
        group: str | None,
        message_id: str,
        attempt: int,
    ) -> AbstractContextManager[Any]:
        """A consumer span around one handling, the child of the producer span whose context
        the message carries; current while the handler runs."""
        tracer = _tracer()
        if tracer is None:
            return NO_SPAN
        from opentelemetry.trace import SpanKind

        carrier = {
            name: headers[self.prefix + name]
            for name in TRACE_ATTRIBUTES
            if self.prefix + name in headers
        }
        attributes: dict[str, Any] = {
            "messaging.system": self.system,
            "messaging.destination.name": destination,
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.message.id": message_id,
            "messaging.message.delivery_attempt": attempt,  # our name: no convention has one
        }
        if group:
            attributes["messaging.consumer.group.name"] = group
        return cast(
            "AbstractContextManager[Any]",
            tracer.start_as_current_span(
                f"process {destination}",
                context=self._propagator.extract(carrier),
                kind=SpanKind.CONSUMER,
                attributes=attributes,
            ),
        )


def failed(span: Any, error: Exception, outcome: str) -> None:
    """Mark a consumer span (None: no span) as failed by ``error``, ``outcome`` saying what
    follows (retried, dead_lettered)."""
    if span is None:
        return
    from opentelemetry.trace import StatusCode

    span.record_exception(error)
    span.set_status(StatusCode.ERROR, f"{type(error).__name__}, {outcome}")


def trace_id() -> str | None:
    """The current span's trace id (32 hex digits), for log lines; None outside a span or
    without the API."""
    if not AVAILABLE:
        return None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


class _Traced:
    """A transport whose publishing verbs run in producer spans and carry their context; every
    other attribute is the wrapped transport's own."""

    def __init__(self, inner: Any, tracing: Tracing) -> None:
        self._inner, self._tracing = inner, tracing

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _one(self, verb: str, channel: str, message: TransportMessage, *rest: Any) -> Any:
        if _tracer() is None:  # no provider set: no span to open (a send costs ~5% less)
            return getattr(self._inner, verb)(channel, message, *rest)
        with self._tracing.producing(verb, channel, [message]) as (carried,):
            return getattr(self._inner, verb)(channel, carried, *rest)

    def _many(self, verb: str, channel: str, messages: list[TransportMessage]) -> None:
        if _tracer() is None:
            getattr(self._inner, verb)(channel, messages)
            return
        with self._tracing.producing(verb, channel, messages) as carried:
            getattr(self._inner, verb)(channel, carried)

    def send(self, queue: str, message: TransportMessage) -> None:
        self._one("send", queue, message)

    def send_many(self, queue: str, messages: list[TransportMessage]) -> None:
        self._many("send_many", queue, messages)

    def broadcast(self, exchange: str, message: TransportMessage) -> None:
        self._one("broadcast", exchange, message)

    def request(self, queue: str, message: TransportMessage, timeout: float) -> Any:
        return self._one("request", queue, message, timeout)

    def reply(self, reply_to: str, message: TransportMessage) -> None:
        self._one("reply", reply_to, message)

    def publish(self, topic: str, message: TransportMessage) -> None:
        self._one("publish", topic, message)

    def publish_many(self, topic: str, messages: list[TransportMessage]) -> None:
        self._many("publish_many", topic, messages)


def traced(
    commands: CommandTransport, events: EventTransport, enabled: bool = True
) -> tuple[CommandTransport, EventTransport]:
    """The two transports with producer spans, or as they are when tracing is off or the API
    is not installed."""
    if not (enabled and AVAILABLE):
        return commands, events
    return (
        cast("CommandTransport", _Traced(commands, tracing_of(commands))),
        cast("EventTransport", _Traced(events, tracing_of(events))),
    )


def tracing_of(transport: CommandTransport | EventTransport) -> Tracing:
    capabilities = transport.capabilities
    return Tracing(capabilities.system, capabilities.header_prefix)


def consumer_tracing(
    transport: CommandTransport | EventTransport, enabled: bool = True
) -> Tracing | None:
    """The consumer spans of a handler on ``transport``; None when tracing is off or the API
    is not installed."""
    return tracing_of(transport) if enabled and AVAILABLE else None
