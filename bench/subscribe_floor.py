"""How fast a Kafka subscriber's Python could be: today's path against a fused batch path.

    .venv/bin/python bench/subscribe_floor.py     # in-process, no broker

Both handle the same 50,000 records, made as confluent-kafka hands them over, in batches of
100 (what the member's consume() takes):

    layered   what a member runs per record today: to_delivery (Delivery, TransportMessage,
              Position), Dispatcher (Codec.decode, the version check, dedupe, HandlerContext,
              metrics, the tracing check), the handler
    fused     the same checks and results without the per-layer objects and calls: header
              text, the size and CR/LF checks, the CloudEvents attributes, validation, an
              Envelope, dedupe, the handler call, its timing

The fused path is not a design: it drops what a real one must keep (dead letters, retries,
version decisions, metrics, tracing). It measures the floor a batch path would start from,
the evidence for issue 15's "only a different shape gets to 100k/s".
"""

from __future__ import annotations

import time
from datetime import datetime
from types import MappingProxyType
from typing import Any

from interchange.adapters.kafka.wire import to_delivery
from interchange.adapters.lifecycle import run_handler
from interchange.config import RetryPolicy
from interchange.contracts import Codec, Event
from interchange.contracts.codec import _envelope
from interchange.dedupe import MemoryDedupeStore
from interchange.dispatch import Dispatcher
from interchange.encoding import new_ids
from interchange.metrics import Meter

COUNT, BATCH = 50_000, 100


class Measured(Event, name="bench.subscribe_floor.measured", version=1):
    sensor: str
    seq: int
    note: str


class Record:
    """A confluent-kafka Message's reading side."""

    __slots__ = ("_headers", "_offset", "_value")

    def __init__(self, headers: list[tuple[str, bytes]], value: bytes, offset: int) -> None:
        self._headers, self._value, self._offset = headers, value, offset

    def headers(self) -> list[tuple[str, bytes]]:
        return self._headers

    def value(self) -> bytes:
        return self._value

    def key(self) -> bytes:
        return b"s0"

    def topic(self) -> str:
        return "measured"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_700_000_000_000)

    def error(self) -> None:
        return None


def records() -> list[Record]:
    events = [Measured(sensor=f"s{i % 10}", seq=i, note="x" * 55) for i in range(COUNT)]
    keys: list[str | None] = [f"s{i % 10}" for i in range(COUNT)]
    encoded = Codec("ce_").encode_many(events, new_ids(COUNT), keys, source="bench")
    return [
        Record([(k, v.encode()) for k, v in headers.items()], body, offset)
        for offset, (headers, body) in enumerate(encoded)
    ]


def layered(batch: list[Record], dispatcher: Dispatcher) -> None:
    for record in batch:
        run_handler(dispatcher, to_delivery(record))


def fused(batch: list[Record], dedupe: MemoryDedupeStore, handler: Any) -> None:
    validate = Measured.__pydantic_validator__.validate_json
    seen, remember, scope, empty = dedupe.seen, dedupe.remember, "measured|g|", MappingProxyType({})
    for record in batch:
        headers = {k: v.decode() for k, v in record.headers()}
        names, values = "".join(headers), "".join(headers.values())
        if len(names) + len(values) > 4096 or not (names.isprintable() and values.isprintable()):
            raise ValueError("refused header")
        get = headers.get
        message_id = get("ce_id")
        envelope = _envelope(
            validate(record.value()),
            message_id,
            get("ce_source"),
            get("ce_type"),
            1,
            datetime.fromisoformat(get("ce_time")),
            "1.0",
            "application/json",
            None,
            None,
            get("ce_partitionkey"),
            empty,
        )
        key = scope + str(message_id)
        if seen(key):
            continue
        started = time.perf_counter()
        handler(envelope.data, envelope)
        _ = time.perf_counter() - started
        remember(key)


def timed(run: Any, made: list[Record]) -> float:
    """Best of five, in µs a record."""
    best = float("inf")
    for _ in range(5):
        step = run()
        started = time.perf_counter()
        for start in range(0, len(made), BATCH):
            step(made[start : start + BATCH])
        best = min(best, time.perf_counter() - started)
    return best / len(made) * 1e6


def main() -> None:
    made = records()

    def no_op(data: Any, ctx: Any) -> None:
        return None

    def today() -> Any:
        dispatcher = Dispatcher(
            sender=None,  # type: ignore[arg-type]
            reply=lambda *_: None,
            contract=Measured,
            func=no_op,
            channel="measured",
            group="g",
            codec=Codec("ce_"),
            retry=RetryPolicy(),
            dedupe=MemoryDedupeStore(),
            meter=Meter("measured", "g"),
        )
        return lambda batch: layered(batch, dispatcher)

    def floor() -> Any:
        dedupe = MemoryDedupeStore()
        return lambda batch: fused(batch, dedupe, no_op)

    now, best = timed(today, made), timed(floor, made)
    print(f"layered (today): {now:5.2f} us a record -> {1e6 / now:9,.0f}/s in-process")
    print(f"fused batch:     {best:5.2f} us a record -> {1e6 / best:9,.0f}/s in-process")
    print(f"ratio: {now / best:.2f}x")


if __name__ == "__main__":
    main()
