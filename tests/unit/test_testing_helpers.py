"""What a team needs to test its own service: its module-level bus with handlers intact,
handlers called directly, fixtures that ignore the shell's INTERCHANGE_* variables."""

from __future__ import annotations

import pytest

from interchange import Bus, Settings
from interchange.contracts import Command, Event
from interchange.testing import Outbox, isolated, make_context, wait_until
from tests.net import closed_port

pytest_plugins = ["pytester"]


class Pack(Command, name="unit.helpers.pack", version=1):
    order_id: str


class Packed(Event, name="unit.helpers.packed", version=1):
    order_id: str


def _app_bus() -> tuple[Bus, list[str]]:
    """A service's bus as its module declares it: real brokers in its config (here, brokers
    nobody runs), handlers registered at import time."""
    port = closed_port()
    app = Bus(
        Settings.without_environment(
            backends={"commands": f"amqp://127.0.0.1:{port}//", "events": "memory://app"},
            routes={"unit.helpers.pack": {"retry": {"max_attempts": 2, "initial_delay": 0.01}}},
        )
    )
    audit: list[str] = []

    @app.handles(Pack)
    def pack(cmd, ctx):
        ctx.publish(Packed(order_id=cmd.order_id))

    @app.subscribes(Packed, group="audit")
    async def record(evt):
        audit.append(evt.order_id)

    return app, audit


def test_isolated_runs_the_apps_own_bus_and_handlers_on_memory():
    app, audit = _app_bus()
    with isolated(app) as bus:
        assert bus.settings.backends.commands.startswith("memory://")
        assert bus.settings.route("unit.helpers.pack").retry.max_attempts == 2
        bus.send(Pack(order_id="A-1"))
        wait_until(lambda: audit == ["A-1"])
    assert not app.workers.started, "the app's own bus is never started"
    app.close()


def test_make_context_lets_a_handler_be_called_directly_and_records_what_it_sends():
    def pack(cmd, ctx):
        ctx.publish(Packed(order_id=cmd.order_id))

    ctx = make_context(Pack(order_id="A-2"), correlation_id="conv-1")
    pack(Pack(order_id="A-2"), ctx)
    assert isinstance(ctx.sender, Outbox)
    assert ctx.sender.published == [Packed(order_id="A-2")]
    assert ctx.sender.options[0]["correlation_id"] == "conv-1"
    assert ctx.sender.options[0]["causation_id"] == ctx.message_id


def test_the_readme_exactly_once_pattern_runs_on_the_memory_dedupe_store(bus):
    effects = []

    class Tx:  # stands in for the user's own transaction
        def __init__(self):
            self.queued = []

    @bus.subscribes(Packed, group="billing")
    def bill(evt, ctx):
        tx = Tx()
        effects.append(evt.order_id)
        bus.dedupe.remember_in(tx, ctx.dedupe_key)

    with bus:
        bus.publish(Packed(order_id="A-3"), id="evt-1")
        bus.publish(Packed(order_id="A-3"), id="evt-1")  # redelivered
        bus.publish(Packed(order_id="A-4"))
        wait_until(lambda: len(effects) >= 2)
    assert effects == ["A-3", "A-4"]


def test_the_bus_fixture_ignores_interchange_variables_of_the_shell(pytester, monkeypatch):
    monkeypatch.setenv("INTERCHANGE_BACKENDS__COMMANDS", "amqp://127.0.0.1:1//")
    monkeypatch.setenv("INTERCHANGE_CHANNEL_PREFIX", "shared.")
    pytester.makepyfile(
        """
        def test_fixture(bus):
            assert bus.settings.backends.commands.startswith("memory://test-")
            assert bus.settings.channel_prefix.startswith("t-")
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_the_bus_fixture_takes_the_variables_when_asked(pytester, monkeypatch):
    monkeypatch.setenv("INTERCHANGE_CHANNEL_PREFIX", "shared.")
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture
        def interchange_use_environment():
            return True

        def test_fixture(bus):
            assert bus.settings.channel_prefix == "shared."
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


@pytest.mark.parametrize("name", ["amqp_url", "kafka_url", "redis_url", "bus"])
def test_every_fixture_says_what_it_gives(pytester, name):
    result = pytester.runpytest("--fixtures")
    text = result.stdout.str()
    [heading] = [line for line in text.splitlines() if line.startswith(f"{name} ")]
    explained = text.split(heading, 1)[1].splitlines()[1].strip()
    assert explained, f"{name} has no docstring"
    assert "no docstring" not in explained
