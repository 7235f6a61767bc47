"""From a delivery to a handler call and back to an Outcome.

Every failure ends in a decision, never a crashed consumer: a message that cannot be decoded,
or names another contract or version, is dead-lettered at once with the reason; a handler that
raises is retried with backoff and dead-lettered with the exception's type and text after its
last attempt; a duplicate of a handled message is acknowledged without calling the handler.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from interchange.adapters import ACK, DeadLetter, Delivery, Outcome, PublishRejected, Retry
from interchange.config import RetryPolicy
from interchange.context import HandlerContext, Sender
from interchange.contracts import Codec, Contract, DecodeError, Envelope, escape
from interchange.contracts.frozen import quick
from interchange.dedupe import DedupeStore
from interchange.handlers import HandlerFunc, plain_handler
from interchange.metrics import Meter
from interchange.tracing import Tracing, failed, trace_id, tracer_set
from interchange.versions import decide

log = logging.getLogger("interchange")

Reply = Callable[[Envelope, str, Contract], None]
"""Answers a request: (the request's envelope, its reply address, the handler's result)."""
_REASON_LIMIT = 1000
_context = quick(HandlerContext)
"""A HandlerContext, built once per message: without a frozen dataclass's per-field cost."""


@dataclass(frozen=True)
class Dispatcher:
    """Turns deliveries on one channel into calls of one handler."""

    sender: Sender
    """What the handler's ctx sends and publishes through."""
    reply: Reply
    contract: type[Contract]
    func: HandlerFunc
    channel: str
    group: str | None
    codec: Codec
    retry: RetryPolicy
    dedupe: DedupeStore
    bare_json: bool = False
    meter: Meter = field(default_factory=lambda: Meter("", ""))
    """Where this channel's outcomes are counted (the Bus's metrics)."""
    tracing: Tracing | None = None
    """The consumer spans (None: tracing off or OpenTelemetry not installed)."""

    def _fields(self, delivery: Delivery) -> dict[str, Any]:
        """What a JSON log line says about the delivery (``--log-format json``)."""
        return {
            "channel": self.channel,
            "group": self.group or "",
            "message_id": escape(delivery.message.id),
            "contract": self.contract.contract_name,
            "attempt": delivery.attempt,
            "trace_id": trace_id() or "",
        }

    @functools.cached_property
    def _limit(self) -> int:
        """Deliveries after which a message is given up (decided once, read per message)."""
        return max(self.retry.max_attempts, self.retry.max_deliveries)

    @functools.cached_property
    def _scope(self) -> str:
        """What each dedupe key starts with: this channel and group."""
        return dedupe_scope(self.channel, self.group) + "|"

    def __call__(self, delivery: Delivery) -> Outcome:
        with self.meter.in_flight:  # what a stop waits for
            return self._dispatch(delivery)

    def _dispatch(self, delivery: Delivery) -> Outcome:
        message = delivery.message
        if delivery.attempt > self._limit:
            # Delivered again and again without an answer from us: consumers died holding it.
            reason = (
                f"delivered {delivery.attempt} times without an answer (max_deliveries "
                f"{self._limit}): its consumers died while handling it"
            )
            log.error(
                "dead-lettering on %s: %s", self.channel, reason, extra=self._fields(delivery)
            )
            self.meter.count("dead_lettered")
            return DeadLetter(reason=reason, error="PoisonMessage")
        try:
            envelope = self.codec.decode(
                message.headers, message.body, assume=self.contract if self.bare_json else None
            )
        except DecodeError as error:
            log.warning(
                "dead-lettering undecodable message on %s: %s",
                self.channel,
                error,
                extra=self._fields(delivery),
            )
            self.meter.count("dead_lettered")
            return DeadLetter(reason=_clip(str(error)), error=type(error).__name__)
        contract = self.contract
        if envelope.version != contract.contract_version or envelope.type != contract.contract_name:
            decision = decide(envelope, contract, self.codec.prefix)  # the usual case skips it
            if decision.dead is not None:
                log.warning(
                    "dead-lettering on %s: %s",
                    self.channel,
                    decision.dead,
                    extra=self._fields(delivery),
                )
                self.meter.count("dead_lettered")
                return DeadLetter(reason=decision.dead, error="UnknownContract")
            if decision.envelope is None:
                return ACK  # a twin in another version; this consumer's own version comes too
            envelope = decision.envelope
        key = self._scope + envelope.id
        if self.dedupe.seen(key):
            log.info(
                "dropping duplicate %s on %s",
                escape(envelope.id),
                self.channel,
                extra=self._fields(delivery),
            )
            self.meter.count("duplicates")
            return ACK
        if self.tracing is None or not tracer_set():  # no span: no context to enter
            return self._handle(envelope, key, delivery, None)
        span = self.tracing.processing(
            envelope.headers, self.channel, self.group, envelope.id, delivery.attempt
        )
        with span as current:
            return self._handle(envelope, key, delivery, current)

    @functools.cached_property
    def _plain(self) -> Callable[[Any], Any] | None:
        """The handler itself when it takes ``(msg)`` only: called without a context."""
        return plain_handler(self.func)

    def _handle(self, envelope: Envelope, key: str, delivery: Delivery, span: Any) -> Outcome:
        """Call the handler; remember the message and answer a request once it returned."""
        plain = self._plain
        started = time.perf_counter()
        try:
            if plain is not None:
                result = plain(envelope.data)
            else:
                ctx = _context(envelope, delivery.attempt, self.group, self.sender, key)
                result = self.func(envelope.data, ctx)
        except Exception as error:
            outcome = self._failed(delivery, error)
            kind = "retried" if isinstance(outcome, Retry) else "dead_lettered"
            self.meter.handled_in(time.perf_counter() - started, kind)
            failed(span, error, kind)
            return outcome
        self.meter.handled_in(time.perf_counter() - started, "handled")
        self.dedupe.remember(key)
        reply_to = delivery.message.reply_to
        if reply_to is not None:
            self._answer(envelope, reply_to, result)  # the reply continues the trace
        return ACK

    def _failed(self, delivery: Delivery, error: Exception) -> Outcome:
        return failure_outcome(
            self.retry, self.channel, delivery.attempt, error, self._fields(delivery)
        )

    def _answer(self, request: Envelope, reply_to: str, result: Any) -> None:
        if not isinstance(result, Contract):
            log.warning(
                "handler of request %s returned %s, not a contract: the requester will time out",
                escape(request.id),
                type(result).__name__,
            )
            return
        try:
            self.reply(request, reply_to, result)
        except PublishRejected as error:
            log.info("reply to %s discarded: %s", escape(request.id), error)


class Reject(Exception):
    """Raised by a handler: give up on this message now — dead-letter it with this reason,
    without the remaining attempts (retrying cannot help: the receiver said no)."""


class RetryLater(Exception):
    """Raised by a handler: try this message again after ``delay`` seconds (e.g. what a
    Retry-After said) instead of the policy's backoff. Attempts still count: after the last,
    the message is dead-lettered."""

    def __init__(self, delay: float, reason: str = "") -> None:
        super().__init__(reason or f"retry in {delay:.1f}s")
        self.delay = delay


def failure_outcome(
    retry: RetryPolicy,
    channel: str,
    attempt: int,
    error: Exception,
    fields: dict[str, Any] | None = None,
) -> Outcome:
    """What follows a handler that raised on its ``attempt``-th delivery: a retry with backoff,
    or after the last attempt a dead letter with the exception's type and text (and its
    traceback in the log). ``fields`` go into the log records (JSON logs show them)."""
    reason = _clip(f"{type(error).__name__}: {error}")
    if isinstance(error, Reject):
        log.warning("dead-lettering on %s, rejected: %s", channel, escape(reason), extra=fields)
        return DeadLetter(reason=_clip(str(error)), error=type(error).__name__)
    if attempt >= retry.max_attempts:
        log.error(
            "dead-lettering on %s after %d attempts: %s",
            channel,
            attempt,
            escape(reason),
            exc_info=error,
            extra=fields,
        )
        return DeadLetter(reason=reason, error=type(error).__name__)
    delay = error.delay if isinstance(error, RetryLater) else retry.delay(attempt)
    log.warning(
        "handler failed on %s (attempt %d of %d), retrying in %.2fs: %s",
        channel,
        attempt,
        retry.max_attempts,
        delay,
        escape(reason),
        extra=fields,
    )
    return Retry(delay=delay, reason=reason)


def dedupe_scope(channel: str, group: str | None) -> str:
    return f"{channel}|{group or ''}"


def _clip(text: str) -> str:
    return text if len(text) <= _REASON_LIMIT else text[:_REASON_LIMIT] + "…"
