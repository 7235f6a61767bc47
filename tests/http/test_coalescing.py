"""Concurrent gateway requests ride in pipelined batches, each still answered for itself."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time

import pytest

from interchange.adapters import PublishRejected
from interchange.connectors.http import gateway
from interchange.connectors.http.coalescing import Coalescer
from interchange.testing import Recorder, wait_until
from tests.http.test_gateway import EXPOSED, PlaceOrder


def test_requests_arriving_together_are_stored_in_few_batches():
    batches: list[list[str]] = []

    def flush(contracts, ids):
        time.sleep(0.01)  # a broker round trip: what arrives meanwhile waits for the next batch
        batches.append(ids)

    async def main():
        coalescer = Coalescer(flush)
        return await asyncio.gather(*(coalescer.submit(n, f"m-{n}") for n in range(200)))

    answered = asyncio.run(main())
    assert answered == [f"m-{n}" for n in range(200)]
    assert sorted(i for batch in batches for i in batch) == sorted(answered)
    assert len(batches) < 10, f"{len(batches)} batches for 200 requests"


def test_only_the_requests_whose_messages_were_refused_fail():
    def flush(contracts, ids):
        raise PublishRejected("one refused", failed=["m-3"])

    async def main():
        coalescer = Coalescer(flush)
        return await asyncio.gather(
            *(coalescer.submit(n, f"m-{n}") for n in range(5)), return_exceptions=True
        )

    answered = asyncio.run(main())
    assert [a for a in answered if isinstance(a, str)] == ["m-0", "m-1", "m-2", "m-4"]
    [refused] = [a for a in answered if not isinstance(a, str)]
    assert isinstance(refused, PublishRejected)
    assert refused.failed == ["m-3"]


@pytest.mark.parametrize("coalesce", [True, False])
def test_concurrent_posts_are_each_handled_once(make_bus, serve, coalesce):
    bus = make_bus()
    orders = Recorder()
    bus.handles(PlaceOrder)(orders)
    client = serve(gateway(bus, EXPOSED, coalesce=coalesce))
    lock = threading.Lock()
    answers: list[int] = []

    def post(n: int) -> None:
        status = client.post(
            "/commands/http.place_order", json={"order_id": f"C-{n}", "quantity": 1}
        ).status_code
        with lock:
            answers.append(status)

    with bus, concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(post, range(300)))
        wait_until(lambda: len(orders) >= 300)
    assert answers == [202] * 300
    assert sorted(c.order_id for c in orders.contracts) == sorted(f"C-{n}" for n in range(300))
