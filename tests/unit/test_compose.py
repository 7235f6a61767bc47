"""The Docker path and the native path offer the same brokers on the same ports."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _native_default(name: str) -> str:
    lib = (ROOT / "compose/native/lib.sh").read_text()
    match = re.search(rf'{name}="\$\{{INTERCHANGE_{name}:-(\d+)\}}"', lib)
    assert match, f"{name} default not found in lib.sh"
    return match.group(1)


def test_docker_compose_publishes_the_native_ports_on_loopback_only():
    services = yaml.safe_load((ROOT / "compose/docker-compose.yml").read_text())["services"]
    assert set(services) == {"rabbitmq", "kafka", "redis", "postgres", "toxiproxy"}
    published = {name: service["ports"][0] for name, service in services.items()}
    assert published["rabbitmq"] == f"127.0.0.1:{_native_default('AMQP_PORT')}:5672"
    assert published["kafka"] == f"127.0.0.1:{_native_default('KAFKA_PORT')}:9092"
    assert published["redis"] == f"127.0.0.1:{_native_default('REDIS_PORT')}:6379"
    assert published["postgres"] == f"127.0.0.1:{_native_default('POSTGRES_PORT')}:5432"
    brokers = {name: s for name, s in services.items() if name != "toxiproxy"}
    assert all("healthcheck" in service for service in brokers.values())
    assert all(port.startswith("127.0.0.1:") for s in services.values() for port in s["ports"])


def test_the_docker_toxiproxy_has_the_native_proxies_on_the_native_ports():
    import json

    proxies = json.loads((ROOT / "compose/toxiproxy.json").read_text())
    ports = {p["name"]: p["listen"].rsplit(":", 1)[1] for p in proxies}
    assert ports == {
        "rabbitmq": _native_default("AMQP_PROXY_PORT"),
        "redis": _native_default("REDIS_PROXY_PORT"),
        "kafka": _native_default("KAFKA_PROXY_PORT"),
    }
    upstreams = {p["name"]: p["upstream"] for p in proxies}
    assert upstreams["kafka"] == f"kafka:{_native_default('KAFKA_PROXIED_PORT')}"
    services = yaml.safe_load((ROOT / "compose/docker-compose.yml").read_text())["services"]
    published = {port.rsplit(":", 1)[1] for port in services["toxiproxy"]["ports"]}
    assert published == {*ports.values(), _native_default("TOXIPROXY_PORT")}


def test_the_kafka_cluster_file_has_three_voters_and_replicates_by_three():
    text = (ROOT / "compose/docker-compose.kafka-cluster.yml").read_text()
    services = yaml.safe_load(text)["services"]
    assert sorted(services) == ["kafka-1", "kafka-2", "kafka-3"]
    env = services["kafka-1"]["environment"]
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].count("@") == 3
    assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == 3
    assert env["KAFKA_MIN_INSYNC_REPLICAS"] == 2
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", env["CLUSTER_ID"])


def test_the_native_kafka_version_is_a_4x_release():
    pom = (ROOT / "compose/native/kafka/pom.xml").read_text()
    version = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom).group(1)
    assert version.startswith("4.")
    image = yaml.safe_load((ROOT / "compose/docker-compose.yml").read_text())
    assert image["services"]["kafka"]["image"] == f"apache/kafka:{version}"
