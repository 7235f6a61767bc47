"""The idempotent producer, and publishing a batch that returns only when every delivery report
came back."""

from __future__ import annotations

import logging
import time
from typing import Any

from confluent_kafka import Producer

from interchange.adapters.errors import BackendUnavailable
from interchange.adapters.kafka.errors import delivery_failure
from interchange.adapters.kafka.options import KafkaOptions
from interchange.adapters.kafka.wire import record_id, to_headers
from interchange.adapters.message import TransportMessage

log = logging.getLogger("interchange.adapters.kafka")


class Publisher:
    def __init__(self, config: dict[str, Any], options: KafkaOptions) -> None:
        self.servers = str(config["bootstrap.servers"])
        self.timeout = options.publish_timeout
        self.producer = Producer(
            {
                # our defaults first: options given in the URL override them
                "linger.ms": 5,
                "delivery.timeout.ms": int(self.timeout * 1000),
                **config,
                # never overridable: what "published" means here
                "enable.idempotence": True,
                "acks": "all",
            }
        )

    def publish(self, topic: str, messages: list[TransportMessage]) -> None:
        """Produce every message, then wait for every delivery report. Raises PublishRejected
        (``.failed`` ids) when the broker refused some, BackendUnavailable when some were not
        acknowledged in time — those may or may not be in the log."""
        errors: dict[str, Any] = {}
        reported = 0

        def on_delivery(error: Any, record: Any) -> None:
            # one callback for the batch: the id is read back only for a failed record
            nonlocal reported
            reported += 1
            if error is not None:
                errors[record_id(record)] = error

        deadline = time.monotonic() + self.timeout
        for message in messages:
            headers = to_headers(message)
            while True:
                try:
                    self.producer.produce(
                        topic,
                        value=message.body,
                        key=message.key,
                        headers=headers,
                        on_delivery=on_delivery,
                    )
                    break
                except BufferError:  # the local queue is full: backpressure, wait for room
                    if time.monotonic() > deadline:
                        raise BackendUnavailable(
                            f"Kafka at {self.servers} took no more messages in "
                            f"{self.timeout}s (local queue full)"
                        ) from None
                    self.producer.poll(0.05)
        # flush() sends what lingers for batching at once and serves the delivery reports
        # (other threads' messages too: each caller still checks only its own).
        while reported < len(messages) and time.monotonic() < deadline:
            self.producer.flush(max(0.0, min(1.0, deadline - time.monotonic())))
        if reported < len(messages):
            raise BackendUnavailable(
                f"{len(messages) - reported} message(s) to {topic!r} not acknowledged by Kafka at "
                f"{self.servers} within {self.timeout}s; they may or may not be stored"
            )
        if errors:
            raise delivery_failure(topic, len(messages), errors)

    def close(self) -> None:
        left = self.producer.flush(self.timeout)  # deliver what was accepted
        if left:
            log.error("%d message(s) still unacknowledged when closing the Kafka producer", left)
