"""Each backend's URL options are one model: a typo or a bad value is an error that names the
known options, on every backend, before anything is connected."""

from __future__ import annotations

import pytest

from interchange.adapters import InvalidURL, open_commands, open_events


@pytest.mark.parametrize(
    ("open_transport", "url", "hint"),
    [
        (open_commands, "memory://opts?prefetch=10", "known options: none"),
        (open_commands, "amqp://127.0.0.1:1//?prefetc=10", "did you mean 'prefetch'"),
        (open_events, "kafka://127.0.0.1:1?partitons=6", "did you mean 'partitions'"),
        (open_commands, "redis://127.0.0.1:1/0?claim_idel=5", "did you mean 'claim_idle'"),
        (open_events, "redis://127.0.0.1:1/0?maxlenn=5", "did you mean 'maxlen'"),
    ],
)
def test_a_misspelt_option_is_an_error_naming_the_known_ones(open_transport, url, hint):
    with pytest.raises(InvalidURL, match=r"unknown .*:// option") as caught:
        open_transport(url)
    assert hint in str(caught.value)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("open_transport", "url", "where"),
    [
        (open_commands, "amqp://127.0.0.1:1//?queue_type=fast", "queue_type"),
        (open_commands, "amqp://127.0.0.1:1//?prefetch=-1", "prefetch"),
        (open_events, "kafka://127.0.0.1:1?publish_timeout=soon", "publish_timeout"),
        (open_commands, "redis://127.0.0.1:1/0?claim_idle=0", "claim_idle"),
    ],
)
def test_a_value_an_option_cannot_take_is_an_error_naming_the_option(open_transport, url, where):
    with pytest.raises(InvalidURL, match=rf"bad .*:// option .*{where}"):
        open_transport(url)


def test_options_of_the_drivers_pass_through():
    events = open_events("kafka://127.0.0.1:1?client.id=svc&partitions=2")
    assert events.config["client.id"] == "svc"  # type: ignore[attr-defined]
    events.close()
    commands = open_commands("redis://127.0.0.1:1/0?socket_keepalive=true&claim_idle=3")
    assert commands.options.claim_idle == 3  # type: ignore[attr-defined]
    commands.close()
