"""A broker client that is not installed is an ImportError naming the extra that brings it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest


@pytest.mark.parametrize(
    ("blocked", "opener", "url", "extra"),
    [
        ("kombu", "open_commands", "amqp://127.0.0.1:5672//", "kombu"),
        ("amqp", "open_commands", "amqp://127.0.0.1:5672//", "kombu"),
        ("confluent_kafka", "open_events", "kafka://127.0.0.1:9092", "kafka"),
        ("redis", "open_commands", "redis://127.0.0.1:6379/0", "redis"),
        ("redis", "open_dedupe", "redis://127.0.0.1:6379/0", "redis"),
    ],
)
def test_a_missing_driver_names_the_extra_to_install(blocked, opener, url, extra):
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules[{blocked!r}] = None  # as if it were not installed
        from interchange.adapters import {opener}
        try:
            {opener}({url!r})
        except ImportError as error:
            print("ImportError:", error)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ImportError:"), done.stdout
    assert f"pip install 'interchange-bus[{extra}]'" in done.stdout


def test_the_memory_backend_and_the_facade_need_no_broker_client():
    script = textwrap.dedent(
        """
        import sys
        for name in ("kombu", "amqp", "confluent_kafka", "redis"):
            sys.modules[name] = None
        from interchange import Bus
        bus = Bus.from_config({})
        bus.close()
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.strip() == "ok", done.stderr


@pytest.mark.parametrize(
    ("blocked", "statement", "extra"),
    [
        ("sqlalchemy", "import interchange.connectors.sql", "sql"),
        (
            "psycopg",
            "from interchange.connectors.sql import engine_for; "
            "engine_for('postgresql://u:p@127.0.0.1:1/db')",
            "postgres",
        ),
        (
            "defusedxml",
            "from interchange.connectors.folders.formats import require_xml; require_xml()",
            "files",
        ),
    ],
)
def test_a_connector_without_its_extra_names_the_extra_to_install(blocked, statement, extra):
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules[{blocked!r}] = None  # as if it were not installed
        try:
            {statement}
        except ImportError as error:
            print("ImportError:", error)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ImportError:"), done.stdout
    assert f"pip install 'interchange-bus[{extra}]'" in done.stdout
