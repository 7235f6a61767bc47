"""The idempotent producer, and publishing a batch that returns only when every delivery report
came back."""

from __future__ import annotations

import logging
import time
from functools import partial
from typing import Any, cast

from confluent_kafka import KafkaError, KafkaException, Producer

from interchange.adapters.errors import BackendUnavailable, TransportError
from interchange.adapters.kafka.errors import delivery_failure, produce_failure
from interchange.adapters.kafka.options import KafkaOptions
from interchange.adapters.kafka.wire import to_headers
from interchange.adapters.message import TransportMessage

log = logging.getLogger("interchange.adapters.kafka")


_GRACE = 0.5
"""Failing fast: how long a publish still waits for a broker librdkafka reports down (a
reconnect may be under way) before it gives up."""


class Publisher:
    def __init__(self, config: dict[str, Any], options: KafkaOptions) -> None:
        self.servers = str(config["bootstrap.servers"])
        self.timeout = options.publish_timeout
        self.fail_within: float | None = None
        """Set (fail_fast): give up after _GRACE when every broker is down, after this when
        none acknowledges, instead of after ``timeout``."""
        self._down_since: float | None = None  # librdkafka said every broker is down
        self.producer = Producer(
            {
                # our defaults first: options given in the URL override them
                "linger.ms": 5,
                "delivery.timeout.ms": int(self.timeout * 1000),
                # librdkafka's 10 s would keep a recovered broker unseen for that long
                "reconnect.backoff.max.ms": 1000,
                **config,
                # never overridable: what "published" means here
                "enable.idempotence": True,
                "acks": "all",
                "error_cb": self._on_error,
            }
        )

    def _on_error(self, error: KafkaError) -> None:
        if error.code() == KafkaError._ALL_BROKERS_DOWN:
            self._down_since = time.monotonic()

    def budget(self) -> float:
        """Seconds a publish may take: ``publish_timeout``, or less when failing fast."""
        return min(self.timeout, self.fail_within or self.timeout)

    def publish(
        self, topic: str, messages: list[TransportMessage], deadline: float | None = None
    ) -> None:
        """Produce every message, then wait for every delivery report, until ``deadline``
        (time.monotonic(); by default ``budget()`` from now). Raises PublishRejected
        (``.failed`` ids) when the broker refused some, or when the client refused one before
        sending it (too large: it and every later one are ``.failed``, never produced);
        BackendUnavailable when some were not acknowledged in time — those may or may not be
        in the log."""
        errors: dict[str, Any] = {}
        reported = 0

        def on_delivery(message_id: str, error: Any, record: Any) -> None:
            # The id comes bound per produce: a delivery report's record carries no headers
            # (read back from it, every failure was "?", one dict entry for all of them, and
            # the caller was told the rest were stored). A success report is the only proof
            # a record is in the log; the broker may refuse a whole batch for one record.
            # Cost: ~1.3 µs of CPU a record (5.3 -> 6.7 µs, 20k-record batches, measured),
            # mostly garbage collection of the callables held until their reports.
            nonlocal reported
            reported += 1
            if error is not None:
                errors[message_id] = error

        started = time.monotonic()
        deadline = started + self.budget() if deadline is None else deadline
        produced, refused = 0, cast(TransportError | None, None)
        for message in messages:
            headers = to_headers(message)
            while True:
                try:
                    self.producer.produce(
                        topic,
                        value=message.body,
                        key=message.key,
                        headers=headers,
                        on_delivery=partial(on_delivery, message.id),
                    )
                    break
                except KafkaException as error:  # refused before sending (too large, ...)
                    # the later messages are not produced: none may overtake this one
                    failed = [m.id for m in messages[produced:]]
                    refused = produce_failure(topic, self.servers, message.id, error, failed)
                    break
                except BufferError:  # the local queue is full: backpressure, wait for room
                    if time.monotonic() > deadline:
                        raise BackendUnavailable(
                            f"Kafka at {self.servers} took no more messages in "
                            f"{self.timeout}s (local queue full)"
                        ) from None
                    self.producer.poll(0.05)
            if refused is not None:
                break
            produced += 1
        # flush() sends what lingers for batching at once and serves the delivery reports
        # (other threads' messages too: each caller still checks only its own).
        step = 1.0 if self.fail_within is None else 0.05
        while reported < produced and (now := time.monotonic()) < deadline:
            if self._given_up(started, now):
                break
            self.producer.flush(max(0.0, min(step, deadline - now)))
        if reported < produced:
            self._withdraw()
            down = " (every broker down)" if self._down_since is not None else ""
            raise BackendUnavailable(
                f"{produced - reported} message(s) to {topic!r} not acknowledged by Kafka at "
                f"{self.servers}{down} within {time.monotonic() - started:.1f}s; they may or "
                "may not be stored"
            )
        if errors:  # in the batch's order, whatever order the reports came in
            errors = {m.id: errors[m.id] for m in messages[:produced] if m.id in errors}
        if refused is not None:
            refused.failed = [*errors, *refused.failed]  # earlier ones refused by the broker
            raise refused
        if errors:
            raise delivery_failure(topic, len(messages), errors)
        self._down_since = None  # acknowledged: a broker is up

    def fail_fast(self, within: float) -> None:
        self.fail_within = within

    def _given_up(self, started: float, now: float) -> bool:
        """Failing fast, every broker down, and a reconnect had its chance."""
        return (
            self.fail_within is not None
            and self._down_since is not None
            and now - started >= _GRACE
        )

    def _withdraw(self) -> None:
        """Failing fast and giving up: drop what librdkafka still queues (never sent), so it
        is not delivered later next to the copy the fallback takes. Sent but unacknowledged
        records stay; they may arrive twice, with the same id."""
        if self.fail_within is None:
            return
        self.producer.purge(in_queue=True, in_flight=False, blocking=False)
        self.producer.poll(0)  # serve the purged records' reports now

    def close(self) -> None:
        left = self.producer.flush(self.timeout)  # deliver what was accepted
        if left:
            log.error("%d message(s) still unacknowledged when closing the Kafka producer", left)
