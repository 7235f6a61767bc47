"""``interchange asyncapi``: an AsyncAPI 3.0 document from the contracts and the routes.

One channel per queue and per topic (per version topic with the per-version layout), a send
and a receive operation on each, one message per contract version with its JSON Schema payload
and its CloudEvents headers (the binding's prefix: ``cloudEvents_`` on AMQP, ``ce_`` elsewhere).
"""

from __future__ import annotations

import re
from typing import Any

from interchange.bus import Bus
from interchange.contracts import Contract

_KEY = re.compile(r"[^A-Za-z0-9_.\-]")


def _key(text: str) -> str:
    return _KEY.sub("_", text)


def _headers(prefix: str, contract: type[Contract]) -> dict[str, Any]:
    string = {"type": "string"}
    return {
        "type": "object",
        "required": [prefix + a for a in ("id", "source", "type", "specversion")],
        "properties": {
            prefix + "id": {**string, "description": "CloudEvents id; consumers dedupe on it"},
            prefix + "source": string,
            prefix + "type": {"type": "string", "const": contract.contract_name},
            prefix + "specversion": {"type": "string", "const": "1.0"},
            prefix + "time": {"type": "string", "format": "date-time"},
            prefix + "dataversion": {"type": "string", "const": str(contract.contract_version)},
            prefix + "correlationid": string,
            prefix + "causationid": string,
            prefix + "partitionkey": string,
            "content-type": {"type": "string", "const": "application/json"},
        },
    }


def document(
    bus: Bus, contracts: list[type[Contract]], title: str = "Interchange"
) -> dict[str, Any]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for contract in contracts:
        is_event = contract.contract_kind == "event"
        address = bus.topic_of(contract) if is_event else bus.queue_of(contract)
        prefix = (bus.events if is_event else bus.commands).capabilities.header_prefix
        message_id = _key(f"{contract.contract_name}.v{contract.contract_version}")
        payload = contract.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(payload.pop("$defs", {}))
        messages[message_id] = {
            "name": contract.contract_name,
            "title": f"{contract.__name__} (v{contract.contract_version})",
            "summary": (contract.__doc__ or "").strip().split("\n")[0] or contract.contract_name,
            "contentType": "application/json",
            "headers": _headers(prefix, contract),
            "payload": payload,
        }
        channel_id = _key(address)
        channel = channels.setdefault(
            channel_id,
            {
                "address": address,
                "description": ("event log (topic)" if is_event else "command queue"),
                "messages": {},
            },
        )
        channel["messages"][message_id] = {"$ref": f"#/components/messages/{message_id}"}
        for action in ("send", "receive"):
            operation_id = _key(f"{action}.{address}")
            operation = operations.setdefault(
                operation_id,
                {
                    "action": action,
                    "channel": {"$ref": f"#/channels/{channel_id}"},
                    "messages": [],
                },
            )
            operation["messages"].append({"$ref": f"#/channels/{channel_id}/messages/{message_id}"})
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": title,
            "version": "1.0.0",
            "description": "Commands and events carried by Interchange, as CloudEvents 1.0 in "
            "binary content mode.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }
