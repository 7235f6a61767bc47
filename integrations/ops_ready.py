"""/readyz's answer: every consumer running and every backend answering, each backend probed
and the fallback spool's depth read within the ops port's bounded time (``ops_measure``)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from interchange.health import Health, check
from interchange.ops_measure import Measurer

if TYPE_CHECKING:
    from interchange.bus import Bus


def probes(urls: dict[str, str]) -> dict[str, Callable[[], Any]]:
    """The measurement of each backend's health (side → URL), named ``probe:<side>``."""
    return {f"probe:{side}": functools.partial(_probe, url) for side, url in urls.items()}


def _probe(url: str) -> Health:
    return check([url], _PROBE_TIMEOUT)[0]


_PROBE_TIMEOUT = 2.0
"""A probe's own timeout; the request answers within ops_measure.WITHIN whatever it does."""


def readiness(bus: Bus, urls: dict[str, str], measurer: Measurer) -> tuple[bool, dict[str, Any]]:
    """(ready, the JSON body of /readyz). A backend whose probe failed or did not answer in
    time is down; so is the fallback when its spool's depth could not be read."""
    from interchange.adapters import redact

    jobs = probes(urls)
    if bus.drainer is not None:
        jobs["spool_depth"] = bus.drainer.depth
    readings = measurer.measure(jobs)
    backends: dict[str, Health] = {}
    for side, url in urls.items():
        reading = readings[f"probe:{side}"]
        backends[side] = reading.value or Health(redact(url), False, str(reading.error), 0.0)
    spool = readings.get("spool_depth")
    if spool is not None and spool.error is not None and "fallback" in backends:
        fallback = backends["fallback"]
        if fallback.up:
            detail = f"the spool's depth could not be read: {spool.error}"
            backends["fallback"] = Health(fallback.url, False, detail, fallback.seconds)
    consumers = bus.workers.consumers()
    dead = [name for name, alive in consumers if not alive]
    fallback_up = "fallback" in backends and backends["fallback"].up
    degraded = [
        side
        for side in ("commands", "events")
        if side in backends and not backends[side].up and fallback_up
    ]
    down = [side for side, health in backends.items() if not health.up and side not in degraded]
    ready = bus.workers.started and not dead and not down
    failover = bus.drainer.status(depth=False) if bus.drainer is not None else {}
    for values in failover.values():
        values["spool_depth"] = spool.value if spool is not None else None
    body = {
        "ready": ready,
        "backends": {
            side: {"url": h.url, "up": h.up, "detail": h.detail} for side, h in backends.items()
        },
        "degraded": degraded,
        "consumers": {"running": len(consumers) - len(dead), "stopped": dead},
        "started": bus.workers.started,
        "failover": failover,
    }
    return ready, body
