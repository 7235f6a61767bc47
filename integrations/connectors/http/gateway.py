"""The HTTP gateway: legacy systems' calls become commands and events on the Bus.

``gateway(bus, expose=[...])`` is a FastAPI app; mount it in your own app or serve it with
uvicorn. Only the contracts named in ``expose`` have routes (and OpenAPI entries, so ``/docs``
shows the legacy team what to send):

    POST /commands/{name}    send       202 {"id": ...} once a broker (or the fallback) stored it
    POST /broadcasts/{name}  broadcast  202 {"id": ...}
    POST /events/{name}      publish    202 {"id": ...}
    POST /requests/{name}    request    200 the reply contract's JSON; 504 on RequestTimeout

Bodies are JSON or XML. Errors: 400 unreadable body (a DOCTYPE or entity in XML included),
401/403 missing or wrong credentials, 404 a name not exposed, 409 nothing routed (a broadcast
no group listens to), 413 over ``max_body_bytes``, 415 another content type, 422 every field
error (location, message), 503 with Retry-After when neither the primary nor the fallback took
the message — never 202 for something not stored. Client headers never set message ids,
routing or CloudEvents attributes: the gateway builds every envelope itself.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from fastapi import FastAPI, Request, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from interchange.adapters import BackendUnavailable, PublishRejected, RequestTimeout
from interchange.bus import Bus
from interchange.connectors.http import bodies
from interchange.connectors.http.auth import Denied, Guard
from interchange.connectors.http.coalescing import Coalescer
from interchange.connectors.http.idempotency import Answer, IdempotencyStore, message_id
from interchange.contracts import Command, Contract, Event

log = logging.getLogger("interchange.connectors.http")

RETRY_AFTER = 5
"""Seconds a client is asked to wait after a 503."""

VERBS = {
    "commands": (Command, "send"),
    "broadcasts": (Command, "broadcast"),
    "requests": (Command, "request"),
    "events": (Event, "publish"),
}


def _json(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        json.dumps(payload), status, headers=dict(headers or {}), media_type="application/json"
    )


def _error(status: int, message: str, **extra: Any) -> Response:
    headers = {"Retry-After": str(RETRY_AFTER)} if status == 503 else None
    return _json(status, {"error": message, **extra}, headers)


def _contract(bus: Bus, name: str) -> type[Contract]:
    model = bus.contracts.latest(name)
    if model is None:
        raise ValueError(f"expose names {name!r}, which no imported module declares")
    return model


def _schema(model: type[Contract]) -> dict[str, Any]:
    schema = model.model_json_schema()
    return {
        "required": True,
        "content": {"application/json": {"schema": schema}, "application/xml": {"schema": schema}},
    }


def gateway(
    bus: Bus,
    expose: Iterable[str],
    *,
    api_keys: Mapping[str, str] | None = None,
    webhook_secrets: list[str] | None = None,
    max_body_bytes: int = 1 << 20,
    idempotency: IdempotencyStore | None = None,
    coalesce: bool = True,
) -> FastAPI:
    """A FastAPI app exposing ``expose`` (contract names) on ``bus``. ``api_keys`` maps a
    caller's name to its key; ``webhook_secrets`` turns on Standard Webhooks verification.
    With ``coalesce`` (the default), concurrent sends and publishes of one contract are stored
    in pipelined batches; without, each request pays its own confirmed round trip."""
    app = FastAPI(title="Interchange HTTP gateway", version="1")
    guard = Guard(api_keys or {}, webhook_secrets or [])
    store = idempotency or IdempotencyStore()
    for name in expose:
        model = _contract(bus, name)
        for path, (kind, verb) in VERBS.items():
            if issubclass(model, kind):
                batcher = _batcher(bus, verb) if coalesce else None
                handler = _route(bus, model, verb, guard, store, max_body_bytes, batcher)
                app.add_api_route(
                    f"/{path}/{name}",
                    handler,
                    methods=["POST"],
                    name=f"{verb} {name}",
                    summary=f"{verb} {model.__name__} ({name} v{model.contract_version})",
                    openapi_extra={"requestBody": _schema(model)},
                    status_code=200 if verb == "request" else 202,
                )
    return app


def _batcher(bus: Bus, verb: str) -> Coalescer | None:
    if verb == "send":
        return Coalescer(lambda contracts, ids: bus.send_many(contracts, ids=ids))
    if verb == "publish":
        return Coalescer(lambda events, ids: bus.publish_many(events, ids=ids))
    return None


def _route(
    bus: Bus,
    model: type[Contract],
    verb: str,
    guard: Guard,
    store: IdempotencyStore,
    max_body_bytes: int,
    batcher: Coalescer | None,
) -> Callable[[Request], Awaitable[Response]]:
    async def handle(request: Request) -> Response:
        body = await _limited(request, max_body_bytes)
        if body is None:
            return _error(413, f"body over {max_body_bytes} bytes")
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            caller = guard.check(headers, body)
        except Denied as denied:
            return _error(denied.status, str(denied))
        key = caller.webhook_id or headers.get("idempotency-key")
        if not key:
            return await _answer(bus, model, verb, headers, body, None, batcher)
        fingerprint = hashlib.sha256(request.url.path.encode() + b"\0" + body).hexdigest()
        outcome, earlier = store.begin(caller.scope, key, fingerprint)
        if outcome == "replay" and earlier is not None:
            return Response(
                earlier.body,
                earlier.status,
                media_type=earlier.media_type,
                headers={"Idempotent-Replayed": "true"},
            )
        if outcome == "other-body":
            return _error(422, "this Idempotency-Key was used with another request body")
        if outcome == "in-flight":
            return _error(409, "a request with this Idempotency-Key is still being handled")
        response = await _answer(
            bus, model, verb, headers, body, message_id(caller.scope, key), batcher
        )
        if 200 <= response.status_code < 300:
            store.finish(
                caller.scope,
                key,
                Answer(
                    response.status_code,
                    bytes(response.body),
                    response.media_type or "application/json",
                ),
            )
        else:
            store.abandon(caller.scope, key)  # nothing was stored: the key is not used up
        return response

    return handle


async def _limited(request: Request, limit: int) -> bytes | None:
    """The body, or None once it is over ``limit`` bytes (read no further)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdecimal() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _answer(
    bus: Bus,
    model: type[Contract],
    verb: str,
    headers: Mapping[str, str],
    body: bytes,
    message: str | None,
    batcher: Coalescer | None,
) -> Response:
    try:
        content_type = headers.get("content-type")
        if bodies.is_json(content_type):  # pydantic parses and validates in one pass
            contract = model.model_validate_json(body)
        else:
            contract = model.model_validate(bodies.read(body, content_type, model))
    except bodies.BadBody as bad:
        return _error(bad.status, str(bad))
    except ValidationError as invalid:
        if invalid.errors()[0]["type"] == "json_invalid":
            return _error(400, f"body is not valid JSON: {invalid.errors()[0]['msg']}")
        errors = [
            {"loc": list(e["loc"]), "msg": e["msg"]}
            for e in invalid.errors(include_input=False, include_url=False)
        ]
        return _error(422, "the body is not a valid " + model.contract_name, errors=errors)
    options = {"id": message} if message else {}
    try:
        if batcher is not None:
            sent = await batcher.submit(contract, message or str(uuid.uuid4()))
            return _json(202, {"id": sent})
        if verb == "request":
            reply = await run_in_threadpool(bus.request, contract, **options)  # type: ignore[arg-type]
            return Response(reply.model_dump_json(), 200, media_type="application/json")
        sent = await run_in_threadpool(getattr(bus, verb), contract, **options)
    except RequestTimeout as late:
        return _error(504, str(late))
    except BackendUnavailable as down:
        log.error("%s %s not stored: %s", verb, model.contract_name, down)
        return _error(503, "the message could not be stored; retry later")
    except PublishRejected as refused:
        return _error(409, f"not taken: {refused}")
    return _json(202, {"id": sent})
