"""interchange replay on the real Kafka: a window of the log printed as JSON lines equals what
was published in it; --to-group re-delivers the window to that group alone."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from interchange import Bus, Settings
from interchange.cli import app
from interchange.contracts import Event
from interchange.testing import Recorder

pytestmark = pytest.mark.kafka


class Shipped(Event, name="it.replay.shipped", version=1):
    parcel: str
    n: int


def _lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_replay_prints_a_window_of_the_log_and_re_delivers_it_to_one_group(kafka_url, tmp_path):
    prefix = f"replay-{uuid.uuid4().hex[:8]}."
    backends = {"commands": f"memory://{uuid.uuid4().hex}", "events": kafka_url}
    config = tmp_path / "interchange.toml"
    config.write_text(
        f'channel_prefix = "{prefix}"\n[backends]\n'
        + "".join(f'{name} = "{url}"\n' for name, url in backends.items())
    )
    settings = Settings.without_environment(backends=backends, channel_prefix=prefix)
    bus = Bus(settings)
    audit, billing = Recorder(), Recorder()
    bus.subscribes(Shipped, group="audit")(audit)
    bus.subscribes(Shipped, group="billing")(billing)
    first = [Shipped(parcel=f"p{n % 3}", n=n) for n in range(5)]
    later = [Shipped(parcel=f"p{n % 3}", n=n) for n in range(5, 10)]
    bus.publish_many(first)
    time.sleep(0.02)  # a millisecond clock: the window's edge falls between the two batches
    middle = datetime.now(UTC)
    time.sleep(0.02)
    bus.publish_many(later)
    with bus:
        audit.wait_for(10, timeout=60)
        billing.wait_for(10, timeout=60)
    bus.close()
    run = CliRunner()
    arguments = ["--config", str(config), "--module", __name__]

    everything = run.invoke(app, ["replay", "it.replay.shipped", *arguments, "--jsonl"])
    window = run.invoke(
        app, ["replay", "it.replay.shipped", *arguments, "--jsonl", "--since", middle.isoformat()]
    )
    assert everything.exit_code == 0, everything.output
    published = [event.model_dump(mode="json") for event in first + later]
    assert sorted(_lines(everything.stdout), key=lambda e: e["n"]) == published
    assert sorted(_lines(window.stdout), key=lambda e: e["n"]) == published[5:]

    moved = run.invoke(
        app,
        [
            "replay",
            "it.replay.shipped",
            *arguments,
            "--to-group",
            "audit",
            "--since",
            middle.isoformat(),
        ],
    )
    assert moved.exit_code == 0, moved.output
    again = Bus(settings)
    audit_again, billing_again = Recorder(), Recorder()
    again.subscribes(Shipped, group="audit")(audit_again)
    again.subscribes(Shipped, group="billing")(billing_again)
    with again:
        got = audit_again.wait_for(5, timeout=60)
        # billing was not moved: nothing comes to it again (checked once audit's came)
    again.close()
    assert sorted(event.n for event in got) == [5, 6, 7, 8, 9]
    assert len(audit_again) == 5
    assert len(billing_again) == 0

    neither = run.invoke(app, ["replay", "it.replay.shipped", *arguments])
    assert neither.exit_code != 0
