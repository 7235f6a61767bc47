"""A consumer process for the kill tests: handles messages, records each effect in Redis, and
runs until it is killed.

    python tests/faults/consumer_worker.py commands|events URL REDIS_URL PREFIX GROUP [N]

``commands``: handles Job on the commands backend URL (amqp:// or redis://); ``events``:
subscribes to ParcelWeighed in GROUP on the events backend URL (kafka://), with N handlers at
once in order per key (concurrency, default 1). Each effect appends
the message's ``seq`` to the Redis list ``<PREFIX>effects``.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from typing import Any

import redis

from interchange import Bus, HandlerContext, Settings
from interchange.contracts import Command, Event


class Job(Command, name="fault.kill.job", version=1):
    seq: int


class ParcelWeighed(Event, name="it.kafka.parcel_weighed", version=1):
    parcel: str
    seq: int


def record_once(
    bus: Bus, effects: redis.Redis, prefix: str
) -> Callable[[Any, HandlerContext], None]:
    """The side effect and its dedupe record in one Redis transaction: a kill can fall before
    both or after both, never between them."""

    def record(message: Any, ctx: HandlerContext) -> None:
        with effects.pipeline(transaction=True) as transaction:
            transaction.rpush(f"{prefix}effects", message.seq)
            bus.dedupe.remember_in(transaction, ctx.dedupe_key)  # type: ignore[attr-defined]
            transaction.execute()

    return record


def main() -> None:
    # the test keeps each worker's stderr and quotes it when a worker makes no progress
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(threadName)s %(message)s")
    kind, url, redis_url, prefix, group = sys.argv[1:6]
    concurrency = int(sys.argv[6]) if len(sys.argv) > 6 else 1
    other = "memory://worker"
    backends = (
        {"commands": url, "events": other}
        if kind == "commands"
        else {
            "commands": other,
            "events": url,
        }
    )
    bus = Bus(Settings(backends=backends, channel_prefix=prefix, dedupe=redis_url))
    record = record_once(bus, redis.Redis.from_url(redis_url), prefix)
    if kind == "commands":
        bus.handles(Job)(record)
    else:
        bus.subscribes(ParcelWeighed, group=group, concurrency=concurrency)(record)
    with bus:
        threading.Event().wait()  # until killed


if __name__ == "__main__":
    main()
