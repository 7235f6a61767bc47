"""Requests that arrive together ride in one pipelined batch.

One confirmed send per request pays a broker round trip per request. The gateway instead hands
every request for one contract to a Coalescer: while a batch is being stored, the requests that
arrive meanwhile gather, and go out together as the next batch (``send_many`` /
``publish_many``: the broker's confirms are drained per window, not awaited one by one). Each
request still answers only once its own message was stored, or with its own error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool

from interchange.adapters import TransportError

Flush = Callable[[list[Any], list[str]], object]
"""Stores a batch: (contracts, their message ids); raises a TransportError naming the failed."""


class Coalescer:
    def __init__(self, flush: Flush, max_batch: int = 500) -> None:
        self._flush = flush
        self.max_batch = max_batch
        self._pending: list[tuple[Any, str, asyncio.Future[str]]] = []
        self._draining = False
        self._task: asyncio.Task[None] | None = None  # held: the loop keeps only weak refs

    async def submit(self, contract: Any, message_id: str) -> str:
        """Returns the id once the message was stored; raises the batch's TransportError if
        this message was among those not stored."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[str] = loop.create_future()
        self._pending.append((contract, message_id, future))
        if not self._draining:
            self._draining = True
            self._task = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                ids = [message_id for _, message_id, _ in batch]
                failed: set[str] = set()
                error: TransportError | None = None
                try:
                    await run_in_threadpool(self._flush, [c for c, _, _ in batch], ids)
                except TransportError as refused:
                    error, failed = refused, set(refused.failed) or set(ids)
                for _, message_id, future in batch:
                    if future.done():
                        continue  # the client went away
                    if error is not None and message_id in failed:
                        future.set_exception(type(error)(str(error), failed=[message_id]))
                    else:
                        future.set_result(message_id)
        finally:
            self._draining = False
