"""Who may call the gateway: API keys (compared in constant time, never logged) and Standard
Webhooks signatures (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``), checked on
the raw bytes with the ``standardwebhooks`` package; several secrets may be valid at once
(rotation)."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


class Denied(Exception):
    """401 (no credentials) or 403 (wrong ones)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Caller:
    scope: str
    """Whose idempotency keys these are: the API key's name, or ``webhook``."""
    webhook_id: str | None = None


class Guard:
    def __init__(self, api_keys: Mapping[str, str], webhook_secrets: list[str]) -> None:
        self._keys = [(name, key.encode()) for name, key in api_keys.items()]
        self._webhooks = [Webhook(secret) for secret in webhook_secrets]

    def check(self, headers: Mapping[str, str], body: bytes) -> Caller:
        caller = Caller("anonymous")
        if self._keys:
            caller = Caller(self._api_key(headers))
        if self._webhooks:
            caller = Caller(caller.scope if self._keys else "webhook", self._signed(headers, body))
        return caller

    def _api_key(self, headers: Mapping[str, str]) -> str:
        given = headers.get("x-api-key") or ""
        authorization = headers.get("authorization") or ""
        if not given and authorization.lower().startswith("bearer "):
            given = authorization[7:].strip()
        if not given:
            raise Denied("missing API key (Authorization: Bearer <key> or X-API-Key)", 401)
        found = None
        for name, key in self._keys:  # compare with every key: the time says nothing
            if hmac.compare_digest(key, given.encode()):
                found = name
        if found is None:
            raise Denied("API key not accepted", 403)
        return found

    def _signed(self, headers: Mapping[str, str], body: bytes) -> str:
        names = ("webhook-id", "webhook-timestamp", "webhook-signature")
        if not all(headers.get(name) for name in names):
            raise Denied("missing Standard Webhooks headers: " + ", ".join(names), 401)
        plain = {name: headers[name] for name in names}
        for webhook in self._webhooks:
            try:
                webhook.verify(body, plain, json_parse=False)
            except (WebhookVerificationError, ValueError):
                continue
            return plain["webhook-id"]
        raise Denied("webhook signature not valid (or timestamp outside the tolerance)", 403)
