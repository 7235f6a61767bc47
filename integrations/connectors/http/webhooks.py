"""Webhooks: events delivered to legacy receivers by HTTP POST.

Each endpoint is a consumer group of its own (``webhook.<name>``), so an endpoint that is down
never stalls the others; within it, a failing event holds its partition, so order per key is
kept. A new endpoint starts with the events published once it is attached (``start =
"latest"``), or with the whole retained log (``"earliest"``). A delivery is a POST of the
contract's JSON with Standard Webhooks headers (``webhook-id`` = the message id, a fresh
timestamp and one signature per secret, made with the ``standardwebhooks`` package) and the
CloudEvents HTTP binary-mode ``ce-*`` headers.

Outcomes: 2xx delivered. Connection errors, timeouts, 5xx and 408 are retried with the
endpoint's backoff (jitter added); 429 and 503 wait what Retry-After says (seconds or an HTTP
date, capped). A 3xx is a failure and is not followed. 410 stops delivering to the endpoint:
this and every later event are dead-lettered with the reason. Any other 4xx dead-letters at
once with the status and the first bytes of the answer. After the last attempt: dead letter.
"""

from __future__ import annotations

import ipaddress
import logging
import random
import socket
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from standardwebhooks import Webhook

from interchange.adapters import Start
from interchange.bus import Bus
from interchange.config import WebhookEndpoint
from interchange.context import HandlerContext
from interchange.contracts import Event
from interchange.dispatch import Reject, RetryLater

log = logging.getLogger("interchange.connectors.webhooks")
_SHOWN = 200
"""Bytes of a refusing answer kept in the dead letter's reason."""


def check_target(url: str, allow_private: bool) -> None:
    """Refuse a URL whose host is loopback, private or link-local, unless allowed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"webhook URL {url!r} must be http(s)://host/...")
    if allow_private:
        return
    for *_, address in socket.getaddrinfo(parts.hostname, parts.port or 443):
        ip = ipaddress.ip_address(address[0])
        if ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved:
            raise ValueError(
                f"webhook URL {url!r} reaches {ip}, a private or loopback address: set "
                "allow_private = true on the endpoint if that is meant"
            )


def retry_after(value: str | None, cap: float) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or an HTTP date), capped."""
    if not value:
        return None
    value = value.strip()
    if value.isdecimal():
        return min(float(value), cap)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return min(max(0.0, (when - datetime.now(UTC)).total_seconds()), cap)


class WebhookSink:
    """Delivers the endpoint's events; register it on a Bus with ``attach``."""

    def __init__(self, endpoint: WebhookEndpoint) -> None:
        check_target(endpoint.url, endpoint.allow_private)
        self.endpoint = endpoint
        self.signers = [Webhook(secret) for secret in endpoint.secrets]
        self.client = httpx.Client(timeout=endpoint.timeout, follow_redirects=False)
        self.gone: str | None = None

    def attach(self, bus: Bus) -> None:
        """Subscribe the endpoint's group to each of its events (registers, starts nothing).
        With ``start = "latest"`` a group that never committed begins with the events stored
        from now on: a time, not the log's end when its member joins, so what is published
        between attaching and the group's first assignment (seconds on Kafka) still goes."""
        group = f"webhook.{self.endpoint.name}"
        start: Start = "earliest" if self.endpoint.start == "earliest" else datetime.now(UTC)
        for name in self.endpoint.events:
            contract = bus.contracts.latest(name)
            if contract is None:
                raise ValueError(f"webhook {self.endpoint.name!r} names unknown event {name!r}")
            if not issubclass(contract, Event):
                raise ValueError(f"webhook {self.endpoint.name!r}: {name!r} is not an event")
            bus.subscribes(
                contract,
                group=group,
                start=start,
                concurrency=self.endpoint.concurrency,
                retry=self.endpoint.retry,
            )(self.deliver)

    def headers(self, ctx: HandlerContext, body: bytes) -> dict[str, str]:
        envelope = ctx.envelope
        now = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "webhook-id": envelope.id,
            "webhook-timestamp": str(int(now.timestamp())),
            "ce-specversion": "1.0",
            "ce-id": envelope.id,
            "ce-source": envelope.source,
            "ce-type": envelope.type,
            "ce-time": envelope.time.isoformat(),
            "ce-dataversion": str(envelope.version),
        }
        if envelope.correlation_id:
            headers["ce-correlationid"] = envelope.correlation_id
        if self.signers:
            text = body.decode()
            headers["webhook-signature"] = " ".join(
                signer.sign(envelope.id, now, text) for signer in self.signers
            )
        return headers

    def deliver(self, event: Any, ctx: HandlerContext) -> None:
        if self.gone is not None:
            raise Reject(self.gone)
        body = event.model_dump_json().encode()
        try:
            answer = self.client.post(
                self.endpoint.url, content=body, headers=self.headers(ctx, body)
            )
        except httpx.HTTPError as error:  # refused, reset, timed out: try again
            raise self._backoff(ctx, f"{type(error).__name__}: {error}") from None
        status = answer.status_code
        if 200 <= status < 300:
            return
        shown = answer.content[:_SHOWN].decode("utf-8", "replace")
        if status == 410:
            self.gone = f"{self.endpoint.url} answered 410 Gone: delivery to it stopped"
            log.error("%s", self.gone)
            raise Reject(f"{self.gone}: {shown}")
        if status in (429, 503):
            wait = retry_after(answer.headers.get("retry-after"), self.endpoint.max_retry_after)
            if wait is not None:
                raise RetryLater(wait, f"{status}, Retry-After {wait:.1f}s")
        if status == 408 or status >= 500 or 300 <= status < 400:
            raise self._backoff(ctx, f"{status}: {shown}")
        raise Reject(f"{self.endpoint.url} answered {status}: {shown}")

    def _backoff(self, ctx: HandlerContext, reason: str) -> RetryLater:
        """The endpoint's exponential backoff for this attempt, plus up to a quarter of it in
        jitter, so receivers coming back are not hit by every retry at once."""
        delay = self.endpoint.retry.delay(ctx.attempt)
        return RetryLater(delay + random.uniform(0, delay / 4), reason)

    def close(self) -> None:
        self.client.close()
