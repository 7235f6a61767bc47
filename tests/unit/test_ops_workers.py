"""Adding up workers' Prometheus texts: counters and histograms summed, gauges summed where each
worker holds a share and the largest taken where they all measure the same thing."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from interchange.ops import Collector
from interchange.ops_workers import added_up
from tests.scrape import metric_sum

_WORKER = """\
# HELP interchange_handled_messages_total Deliveries handled
# TYPE interchange_handled_messages_total counter
interchange_handled_messages_total{{channel="q",group=""}} {handled}
# HELP interchange_handler_duration_seconds One handler call
# TYPE interchange_handler_duration_seconds histogram
interchange_handler_duration_seconds_bucket{{channel="q",group="",le="0.1"}} {fast}
interchange_handler_duration_seconds_bucket{{channel="q",group="",le="+Inf"}} {handled}
interchange_handler_duration_seconds_count{{channel="q",group=""}} {handled}
interchange_handler_duration_seconds_sum{{channel="q",group=""}} {seconds}
# HELP interchange_consumers_running Consumer threads alive
# TYPE interchange_consumers_running gauge
interchange_consumers_running {running}
# HELP interchange_backlog_messages What waits
# TYPE interchange_backlog_messages gauge
interchange_backlog_messages{{channel="q",group="",partition=""}} {backlog}
"""


def _gathered(*workers: dict[str, float]) -> str:
    registry = CollectorRegistry(auto_describe=False)
    texts = [_WORKER.format(**w) for w in workers]
    registry.register(Collector(lambda: added_up(texts)))
    return generate_latest(registry).decode()


def test_counters_histograms_and_share_gauges_add_up_shared_gauges_take_the_largest():
    text = _gathered(
        {"handled": 10, "fast": 7, "seconds": 0.5, "running": 1, "backlog": 40},
        {"handled": 5, "fast": 5, "seconds": 0.25, "running": 2, "backlog": 38},
    )
    assert metric_sum(text, "interchange_handled_messages_total") == 15
    assert metric_sum(text, "interchange_handler_duration_seconds_count") == 15
    assert metric_sum(text, "interchange_handler_duration_seconds_sum") == 0.75
    assert 'interchange_handler_duration_seconds_bucket{channel="q",group="",le="0.1"} 12.0' in text
    assert metric_sum(text, "interchange_consumers_running") == 3
    assert metric_sum(text, "interchange_backlog_messages") == 40


def test_no_worker_answering_gives_no_families():
    assert list(added_up([])) == []
