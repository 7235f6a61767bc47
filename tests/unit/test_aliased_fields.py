"""A contract field with a pydantic alias goes out under the name it is read by: what a Bus
sends, its consumer handles (it was dead-lettered every time: written by field name, read by
alias), by send, by a batch, and through the HTTP gateway's XML."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
from pydantic import Field

from interchange import Bus, Command
from interchange.testing import wait_until


def _tagged() -> type[Command]:
    class Tagged(Command, name=f"alias{uuid.uuid4().hex[:8]}.order", version=1):
        order_id: str
        aliased: list[str] = Field(default=[], alias="Tag")

    return Tagged


def test_an_aliased_field_is_handled_not_dead_lettered(make_bus: Callable[..., Bus]) -> None:
    tagged = _tagged()
    bus = make_bus()
    got: list[Command] = []
    dead: list[object] = []
    bus.handles(tagged)(lambda command, ctx: got.append(command))
    bus.handles_dead_letters(tagged)(dead.append)
    with bus:
        bus.send(tagged(order_id="A", Tag=["x"]))
        bus.send_many([tagged(order_id="B", Tag=["y"]), tagged(order_id="C")])
        wait_until(lambda: len(got) + len(dead) >= 3, 5, message=lambda: f"{got} {dead}")
    assert dead == []
    assert sorted((c.order_id, c.aliased) for c in got) == [  # type: ignore[attr-defined]
        ("A", ["x"]),
        ("B", ["y"]),
        ("C", []),
    ]


def test_an_aliased_field_sent_as_xml_through_the_gateway_is_handled(
    make_bus: Callable[..., Bus], serve: Callable[[Any], httpx.Client]
) -> None:
    from interchange.connectors.http import gateway

    tagged = _tagged()
    bus = make_bus()
    got: list[Command] = []
    dead: list[object] = []
    bus.handles(tagged)(lambda command, ctx: got.append(command))
    bus.handles_dead_letters(tagged)(dead.append)
    app = gateway(bus, expose=[tagged.contract_name], api_keys={"svc": "s3cret"})
    with bus:
        client = serve(app)
        answer = client.post(
            f"/commands/{tagged.contract_name}",
            content="<o><order_id>A</order_id><Tag>x</Tag></o>",
            headers={"Authorization": "Bearer s3cret", "Content-Type": "application/xml"},
        )
        assert answer.status_code < 300, answer.text
        wait_until(lambda: bool(got or dead), 5)
    assert dead == []
    assert [(c.order_id, c.aliased) for c in got] == [("A", ["x"])]  # type: ignore[attr-defined]
