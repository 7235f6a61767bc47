"""The memory broker's refusals, as our errors (it has no driver exceptions to map)."""

from __future__ import annotations

from interchange.adapters.errors import PublishRejected, RequestTimeout


def unroutable(exchange: str) -> PublishRejected:
    return PublishRejected(f"no queue is bound to exchange {exchange!r}: unroutable")


def requester_gone(address: str) -> PublishRejected:
    return PublishRejected(f"requester {address!r} is gone (timed out or closed)")


def no_reply(queue: str, timeout: float) -> RequestTimeout:
    return RequestTimeout(f"no reply on {queue!r} within {timeout}s")
