"""A consumer process for the kill test: handles events, records each effect in Redis, and runs
until it is killed.  python -m tests.integration.kafka_worker KAFKA_URL REDIS_URL PREFIX GROUP"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

import redis

from interchange import Bus, HandlerContext, Settings
from interchange.contracts import Event


def weigh_once(
    bus: Bus, effects: redis.Redis, prefix: str
) -> Callable[[Any, HandlerContext], None]:
    """The side effect and its dedupe record in one Redis transaction: a kill can fall before
    both or after both, never between them."""

    def weigh(evt: Any, ctx: HandlerContext) -> None:
        with effects.pipeline(transaction=True) as transaction:
            transaction.rpush(f"{prefix}effects", evt.seq)
            bus.dedupe.remember_in(transaction, ctx.dedupe_key)  # type: ignore[attr-defined]
            transaction.execute()

    return weigh


def main() -> None:
    class ParcelWeighed(Event, name="it.kafka.parcel_weighed", version=1):
        parcel: str
        seq: int

    kafka_url, redis_url, prefix, group = sys.argv[1:5]
    bus = Bus(
        Settings(
            backends={"commands": "memory://worker", "events": kafka_url},
            channel_prefix=prefix,
            dedupe=redis_url,
        )
    )
    bus.subscribes(ParcelWeighed, group=group)(
        weigh_once(bus, redis.Redis.from_url(redis_url), prefix)
    )
    with bus:
        threading.Event().wait()  # until killed


if __name__ == "__main__":
    main()
