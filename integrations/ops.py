"""The ops port: what an orchestrator and a monitoring system ask a running service.

    GET /healthz   200 while the process serves at all (liveness)
    GET /readyz    200 when every consumer thread runs and every backend answers (a primary
                   that does not, while its fallback does, counts as degraded but ready:
                   publishing still stores every message); 503 otherwise. JSON body: backends,
                   consumers, failover circuits. Backends are probed at most once a second.
    GET /metrics   Prometheus text (prometheus-client, the ``ops`` extra): the Bus's counters
                   and histograms (interchange.metrics), consumers running, failover circuit
                   state, spool depth, messages spooled and drained.

What asks a broker is bounded (``ops_measure``): both answer within about 1.5 s whatever the
brokers do; a backend whose probe failed or did not answer is down, a gauge whose measurement
did not come is left out and counted in ``interchange_measure_errors_total``.

``serve_ops(bus, port)`` starts it on a daemon thread (``.close()`` stops it; it dies with the
process); ``interchange run|bridge --ops-port`` too. It binds 127.0.0.1 unless told otherwise:
the port shows topology, not secrets (URLs are redacted), but it is for the host's monitoring,
not for the world.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from interchange.metrics import BUCKETS, Metrics
from interchange.ops_measure import Measurer
from interchange.ops_ready import readiness

if TYPE_CHECKING:
    from interchange.bus import Bus

log = logging.getLogger("interchange.ops")


def collect(bus: Bus, measurer: Measurer) -> Iterator[Any]:
    """The Prometheus metric families of one Bus, built at scrape time. What asks a broker
    (backlogs, the spool's depth) is measured within ``measurer.within`` seconds in all: a
    gauge whose measurement failed or did not answer is left out, and counted in
    ``interchange_measure_errors_total``."""
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
    )

    yield from _meters(bus.meters, CounterMetricFamily, HistogramMetricFamily)
    consumers = bus.workers.consumers()
    running = GaugeMetricFamily(
        "interchange_consumers_running", "Consumer threads running (0 when stopped)"
    )
    running.add_metric([], sum(alive for _, alive in consumers))
    yield running
    waits = _waits(bus)
    jobs: dict[str, Callable[[], Any]] = {
        f"backlog:{channel}|{group or ''}": functools.partial(backlog, channel, group)
        for channel, group, backlog in waits
    }
    if bus.drainer is not None:
        jobs["spool_depth"] = bus.drainer.depth
        jobs["spool_refused"] = bus.drainer.refused
    readings = measurer.measure(jobs, reuse=0.0)  # a scrape sees what waits now
    backlog = GaugeMetricFamily(
        "interchange_backlog_messages",
        "Messages waiting for a handler's consumers: Kafka lag per partition (latest minus "
        "committed), RabbitMQ ready messages, Redis entries undelivered plus pending",
        labels=["channel", "group", "partition"],
    )
    for channel, group, _ in waits:
        parts = readings[f"backlog:{channel}|{group or ''}"].value or {}
        for part, waiting in parts.items():
            backlog.add_metric([channel, group or "", part], waiting)
    yield backlog
    status = bus.drainer.status(depth=False) if bus.drainer is not None else {}
    if status:
        circuit = GaugeMetricFamily(
            "interchange_failover_circuit_open",
            "1 while a side's primary is given up on (open or half-open), 0 when closed",
            labels=["side"],
        )
        depth = GaugeMetricFamily(
            "interchange_failover_spool_depth",
            "Messages waiting in the fallback spool for this Bus's primaries",
        )
        spooled = CounterMetricFamily(
            "interchange_failover_spooled", "Messages this Bus parked in the spool", labels=["side"]
        )
        drained = CounterMetricFamily(
            "interchange_failover_drained", "Messages this Bus drained back", labels=["side"]
        )
        rate = GaugeMetricFamily(
            "interchange_failover_drain_rate", "Messages drained per second", labels=["side"]
        )
        for side, values in status.items():
            circuit.add_metric([side], 0 if values["circuit"] == "closed" else 1)
            spooled.add_metric([side], values["spooled"])
            drained.add_metric([side], values["drained"])
            rate.add_metric([side], values["drain_rate"])
        refused = GaugeMetricFamily(
            "interchange_failover_refused",
            "Spooled messages the primary refused on drain, set aside for an operator",
        )
        for family, reading in (
            (depth, readings["spool_depth"]),
            (refused, readings["spool_refused"]),
        ):
            if reading.error is None:  # a spool that did not answer: left out, counted below
                family.add_metric([], reading.value)
        yield from (circuit, depth, refused, spooled, drained, rate)
    errors = CounterMetricFamily(
        "interchange_measure_errors",
        "Answers of this ops port without a measurement (backlog, spool_depth, probe) because "
        "its broker refused or did not answer in time: that gauge or backend was left out",
        labels=["measurement"],
    )
    for kind, count in sorted(measurer.errors().items()):
        errors.add_metric([kind], count)
    yield errors


Backlog = Callable[[str, str | None], dict[str, int]]


def _waits(bus: Bus) -> list[tuple[str, str | None, Backlog]]:
    """(channel, group, how to measure its backlog) of each handler whose backend can say what
    waits for it: Kafka lag per partition, queue depth."""
    from interchange.adapters import HasBacklog

    found: list[tuple[str, str | None, Backlog]] = []
    for handler in bus.handlers:
        transport: object
        if handler.verb == "subscribes":
            transport, channel, group = bus.events, bus.topic_of(handler.contract), handler.group
        elif handler.verb == "handles":
            transport, group = bus.commands, None
            channel = (
                bus.group_queue_of(handler.contract, handler.group)
                if handler.group
                else bus.queue_of(handler.contract)
            )
        else:
            continue
        if isinstance(transport, HasBacklog):
            found.append((channel, group, transport.backlog))
    return found


_COUNTERS = {
    "sent": ("interchange_sent_messages", "Commands stored by a broker or the spool"),
    "published": ("interchange_published_messages", "Events stored by a broker or the spool"),
    "publish_failed": ("interchange_publish_failures", "Messages a publishing call raised for"),
    "handled": ("interchange_handled_messages", "Deliveries whose handler returned"),
    "failed": ("interchange_handler_failures", "Deliveries whose handler raised"),
    "retried": ("interchange_retried_messages", "Deliveries to be tried again"),
    "dead_lettered": ("interchange_dead_lettered_messages", "Deliveries dead-lettered"),
    "duplicates": ("interchange_duplicate_messages", "Deliveries dropped as duplicates"),
}


def _meters(metrics: Metrics, counter: Any, histogram: Any) -> Iterator[Any]:
    families = {
        name: counter(metric, text, labels=["channel", "group"])
        for name, (metric, text) in _COUNTERS.items()
    }
    handler = histogram(
        "interchange_handler_duration_seconds",
        "Handler call time",
        labels=["channel", "group"],
    )
    publish = histogram(
        "interchange_publish_duration_seconds",
        "Publishing call time, until stored",
        labels=["channel", "group"],
    )
    for meter in metrics.meters():
        labels = [meter.channel, meter.group]
        with meter.lock:
            counts = dict(meter.counts)
            histograms = [
                (family, list(h.counts), h.total, h.count)
                for family, h in (
                    (handler, meter.handler_seconds),
                    (publish, meter.publish_seconds),
                )
            ]
        for name, value in counts.items():
            if value:
                families[name].add_metric(labels, value)
        for family, bucket_counts, total, count in histograms:
            if count:
                cumulative, buckets = 0, []
                for bound, n in zip([*map(str, BUCKETS), "+Inf"], bucket_counts, strict=True):
                    cumulative += n
                    buckets.append((bound, cumulative))
                family.add_metric(labels, buckets, total)
    yield from families.values()
    yield handler
    yield publish


class OpsEndpoints:
    """/healthz, /readyz and /metrics on a daemon thread, answered by two callables: whether
    the service is ready (with a JSON body saying why), and the Prometheus text."""

    def __init__(
        self,
        ready: Callable[[], tuple[bool, dict[str, Any]]],
        metrics: Callable[[], bytes],
        port: int = 0,
        host: str = "127.0.0.1",
    ) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/healthz":
                    self._answer(HTTPStatus.OK, b"ok\n", "text/plain; charset=utf-8")
                elif path == "/readyz":
                    try:
                        is_ready, body = ready()
                    except Exception as error:  # an answer, never an empty reply
                        log.exception("/readyz failed")
                        is_ready, body = False, {"ready": False, "error": repr(error)}
                    status = HTTPStatus.OK if is_ready else HTTPStatus.SERVICE_UNAVAILABLE
                    self._answer(status, json.dumps(body).encode(), "application/json")
                elif path == "/metrics":
                    try:
                        text = metrics()
                    except Exception as error:
                        log.exception("/metrics failed")
                        message = f"/metrics failed: {error!r}\n".encode()
                        self._answer(HTTPStatus.INTERNAL_SERVER_ERROR, message, "text/plain")
                        return
                    self._answer(HTTPStatus.OK, text, "text/plain; version=0.0.4; charset=utf-8")
                else:
                    self._answer(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")

            def _answer(self, status: HTTPStatus, body: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Scrapes every few seconds are not worth a log line each."""

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.host = host
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="interchange-ops", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


class OpsServer(OpsEndpoints):
    """/healthz, /readyz and /metrics for one Bus, on a daemon thread."""

    def __init__(self, bus: Bus, port: int = 0, host: str = "127.0.0.1") -> None:
        from prometheus_client import CollectorRegistry, generate_latest

        measurer = Measurer()
        registry = CollectorRegistry(auto_describe=False)
        registry.register(Collector(lambda: collect(bus, measurer)))
        backends = bus.settings.backends
        urls = {"commands": backends.commands, "events": backends.events}
        if backends.fallback:
            urls["fallback"] = backends.fallback
        super().__init__(
            lambda: readiness(bus, urls, measurer), lambda: generate_latest(registry), port, host
        )


@dataclass(frozen=True)
class Collector:
    """prometheus-client's custom collector: ``collect()`` yields metric families."""

    families: Callable[[], Iterator[Any]]

    def collect(self) -> Iterator[Any]:
        return self.families()


def serve_ops(bus: Bus, port: int = 0, host: str = "127.0.0.1") -> OpsServer:
    """Serve /healthz, /readyz and /metrics for ``bus`` on ``host:port`` (0: any free port;
    ``.port`` says which) on a daemon thread, until ``.close()``. Needs the ``ops`` extra
    (prometheus-client)."""
    return OpsServer(bus, port, host)
