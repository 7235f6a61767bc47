"""``interchange health``: ask each configured backend, for real, whether it answers."""

from __future__ import annotations

import time
from dataclasses import dataclass

from interchange.adapters import ConfigurationError, TransportError, probe, redact


@dataclass(frozen=True)
class Health:
    url: str
    """Redacted: safe to print."""
    up: bool
    detail: str
    seconds: float


def check(urls: list[str], timeout: float = 5.0) -> list[Health]:
    """Probe each distinct URL once, in order."""
    results = []
    for url in dict.fromkeys(urls):
        started = time.monotonic()
        try:
            detail, up = probe(url, timeout), True
        except (TransportError, ConfigurationError, ImportError) as error:
            detail, up = str(error), False
        results.append(Health(redact(url), up, detail, time.monotonic() - started))
    return results
