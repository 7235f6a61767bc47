"""The shipped pytest plugin: a missing broker skips, and fails where brokers are required."""

from __future__ import annotations

import pytest

from tests.net import closed_port

pytest_plugins = ["pytester"]

USES_RABBITMQ = """
def test_needs_rabbitmq(amqp_url):
    assert amqp_url
"""


@pytest.fixture
def no_docker(monkeypatch):
    monkeypatch.setattr("interchange.testing.brokers.docker_engine_available", lambda: False)


def test_where_brokers_are_required_a_url_on_a_closed_port_fails_naming_the_broker(
    pytester, monkeypatch, no_docker
):
    port = closed_port()
    monkeypatch.setenv("INTERCHANGE_REQUIRE_BROKERS", "1")
    monkeypatch.setenv("INTERCHANGE_BACKENDS__COMMANDS", f"amqp://guest:secret@127.0.0.1:{port}//")
    pytester.makepyfile(USES_RABBITMQ)
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [f"*RabbitMQ is not reachable at amqp://guest:***@127.0.0.1:{port}// *REQUIRE_BROKERS=1*"]
    )
    assert "secret" not in result.stdout.str()


def test_on_a_laptop_the_same_test_is_skipped_with_the_reason(pytester, monkeypatch, no_docker):
    monkeypatch.delenv("INTERCHANGE_REQUIRE_BROKERS", raising=False)
    monkeypatch.setenv("INTERCHANGE_BACKENDS__COMMANDS", f"amqp://127.0.0.1:{closed_port()}//")
    pytester.makepyfile(USES_RABBITMQ)
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*RabbitMQ is not reachable*"])


def test_where_required_no_broker_at_all_fails_and_says_how_to_get_one(
    pytester, monkeypatch, no_docker
):
    monkeypatch.setenv("INTERCHANGE_REQUIRE_BROKERS", "1")
    monkeypatch.delenv("INTERCHANGE_BACKENDS__EVENTS", raising=False)
    pytester.makepyfile("def test_needs_kafka(kafka_url):\n    assert kafka_url\n")
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*no Kafka for this test: set INTERCHANGE_BACKENDS__EVENTS to the URL of a Kafka you run*"]
    )
    assert "compose/native" not in result.stdout.str(), "a user has no such script"


def test_ci_true_alone_does_not_turn_a_users_broker_skips_into_failures(
    pytester, monkeypatch, no_docker
):
    monkeypatch.setenv("CI", "true")  # every hosted CI sets it, broker or not
    monkeypatch.delenv("INTERCHANGE_REQUIRE_BROKERS", raising=False)
    monkeypatch.delenv("INTERCHANGE_BACKENDS__EVENTS", raising=False)
    pytester.makepyfile("def test_needs_kafka(kafka_url):\n    assert kafka_url\n")
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*make a Docker engine reachable*"])


def test_the_bus_fixture_gives_each_test_its_own_channel_names(pytester):
    pytester.makepyfile(
        """
        from interchange.contracts import Command

        class Note(Command, name="plugin.note", version=1):
            text: str

        seen = []

        def test_first(bus):
            seen.append(bus.queue_of(Note))
            bus.send(Note(text="hi"))

        def test_second(bus):
            seen.append(bus.queue_of(Note))
            assert seen[0] != seen[1]
            assert seen[1].endswith("plugin.note")
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_looking_for_a_docker_engine_that_is_not_there_leaks_no_socket(monkeypatch, tmp_path):
    import gc

    from interchange.testing.brokers import docker_engine_available

    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/docker.sock")
    assert docker_engine_available() is False
    gc.collect()  # a leaked socket's ResourceWarning is an error under this suite's filters
