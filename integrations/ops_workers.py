"""The supervisor's ops port under ``interchange run --workers N --ops-port P``: one endpoint
for the whole service. Worker k serves its own on P + 1 + k; the supervisor's, on P, answers
/healthz while it lives, /readyz when every worker is ready (each one's answer in the body),
and /metrics with every worker's metrics added up — what prometheus-client's multiprocess mode
gives, without making each counted message write to a shared file.

Counters and histograms are summed across workers. Gauges are summed where each worker has its
own share (consumer threads, drain rate) and otherwise take the largest value: every worker
measures the same backlog of a queue and the same spool, and a circuit open in any is open. A
worker being replaced is missing from the sum until it answers again, so counters may drop
back, which Prometheus reads as a counter reset."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.request import urlopen

from interchange.ops import OpsEndpoints

SUMMED_GAUGES = frozenset({"interchange_consumers_running", "interchange_failover_drain_rate"})
_TIMEOUT = 2.5
"""Seconds a worker is waited for: its own measurements take up to ops_measure.WITHIN."""


def worker_port(ops_port: int, slot: int) -> int:
    """Where worker ``slot`` (0-based) serves its own ops endpoints."""
    return ops_port + 1 + slot


def _get(url: str) -> tuple[int, bytes] | None:
    try:
        with urlopen(url, timeout=_TIMEOUT) as answer:
            return int(answer.status), answer.read()
    except HTTPError as error:
        return int(error.code), error.read()
    except (URLError, OSError):
        return None


def added_up(texts: list[str]) -> Iterator[Any]:
    """The metric families of several workers' Prometheus texts, added up."""
    from prometheus_client.metrics_core import Metric
    from prometheus_client.parser import text_string_to_metric_families

    families: dict[str, Metric] = {}
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            if family.name not in families:
                families[family.name] = Metric(family.name, family.documentation, family.type)
                values[family.name] = {}
            seen = values[family.name]
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                if key not in seen:
                    seen[key] = sample.value
                elif sample.name.endswith("_created"):
                    seen[key] = min(seen[key], sample.value)
                elif family.type == "gauge" and family.name not in SUMMED_GAUGES:
                    seen[key] = max(seen[key], sample.value)
                else:
                    seen[key] += sample.value
    for name, family in families.items():
        for (sample_name, labels), value in values[name].items():
            family.add_sample(sample_name, dict(labels), value)
        yield family


class WorkersOps(OpsEndpoints):
    """The supervisor's ops endpoints, gathered from its workers' on ``ports``."""

    def __init__(self, ports: list[int], port: int, host: str = "127.0.0.1") -> None:
        from prometheus_client import CollectorRegistry, generate_latest
        from prometheus_client.metrics_core import GaugeMetricFamily

        from interchange.ops import Collector

        reach = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
        self.worker_urls = [f"http://{reach}:{p}" for p in ports]
        pool = ThreadPoolExecutor(max_workers=len(ports), thread_name_prefix="interchange-gather")

        def each(path: str) -> list[tuple[int, bytes] | None]:
            return list(pool.map(_get, [url + path for url in self.worker_urls]))

        def ready() -> tuple[bool, dict[str, Any]]:
            answers = each("/readyz")
            workers = []
            for url, answer in zip(self.worker_urls, answers, strict=True):
                body: Any = None
                if answer is not None:
                    try:
                        body = json.loads(answer[1])
                    except ValueError:
                        body = answer[1][:200].decode("utf-8", "replace")
                workers.append(
                    {"url": url, "ready": bool(answer and answer[0] == 200), "body": body}
                )
            return all(w["ready"] for w in workers), {"workers": workers}

        def families() -> Iterator[Any]:
            answers = each("/metrics")
            texts = [a[1].decode() for a in answers if a is not None and a[0] == 200]
            yield from added_up(texts)
            up = GaugeMetricFamily(
                "interchange_workers_up", "Worker processes whose metrics answered"
            )
            up.add_metric([], len(texts))
            yield up

        registry = CollectorRegistry(auto_describe=False)
        registry.register(Collector(families))
        super().__init__(ready, lambda: generate_latest(registry), port, host)
