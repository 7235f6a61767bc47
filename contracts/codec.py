"""Codec: Envelope <-> (string headers, body bytes) in CloudEvents binary content mode.

The body is the contract's JSON. Attributes travel as headers named by each broker's
CloudEvents binding: ``ce_<attr>`` for Kafka (and Redis, which has no binding and follows
Kafka's), ``cloudEvents_<attr>`` for AMQP. ``datacontenttype`` travels as ``content-type``.

Decoding treats everything as hostile input: header count, size and type are checked, the
body size is checked before parsing, only JSON is accepted (never pickle or YAML), and every
failure is a DecodeError subclass whose message says what was wrong without echoing the input.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Final, NamedTuple

from pydantic import ValidationError

from interchange.contracts.base import Contract
from interchange.contracts.envelope import JSON, SPECVERSION, Envelope
from interchange.contracts.errors import MalformedMessage, SchemaViolation, UnknownContract
from interchange.contracts.frozen import quick
from interchange.contracts.registry import Registry, registry

KAFKA_PREFIX: Final = "ce_"
AMQP_PREFIX: Final = "cloudEvents_"
REDIS_PREFIX: Final = KAFKA_PREFIX
CONTENT_TYPE: Final = "content-type"

# CloudEvents attribute -> Envelope field. Extensions are lowercase alphanumerics per the spec.
_ATTRIBUTES: Final = {
    "id": "id",
    "source": "source",
    "type": "type",
    "specversion": "specversion",
    "time": "time",
    "dataversion": "version",
    "correlationid": "correlation_id",
    "causationid": "causation_id",
    "partitionkey": "partition_key",
}
_REQUIRED: Final = ("id", "source", "type", "specversion")


class _AttributeHeaders(NamedTuple):
    """The header of each CloudEvents attribute in one binding, named once (``ce_id``...)."""

    id: str
    source: str
    type: str
    specversion: str
    time: str
    dataversion: str
    correlationid: str
    causationid: str
    partitionkey: str


_NO_HEADERS: Final[Mapping[str, str]] = MappingProxyType({})
_envelope: Final = quick(Envelope)


def escape(text: str, limit: int = 200) -> str:
    """Make untrusted text safe for one log line or error message: no CR/LF, bounded length."""
    cut = text if len(text) <= limit else text[:limit] + "…"
    return cut.encode("unicode_escape").decode("ascii")


class Codec:
    """Encodes and decodes envelopes for one broker binding (its header prefix)."""

    def __init__(
        self,
        prefix: str = KAFKA_PREFIX,
        *,
        contracts: Registry = registry,
        max_body_bytes: int = 1 << 20,
        max_headers: int = 64,
        max_header_bytes: int = 4096,
    ) -> None:
        self.prefix = prefix
        self.contracts = contracts
        self.max_body_bytes = max_body_bytes
        self.max_headers = max_headers
        self.max_header_bytes = max_header_bytes
        self._reserved = {prefix + a for a in _ATTRIBUTES} | {CONTENT_TYPE}
        self._headers = _AttributeHeaders(**{a: prefix + a for a in _ATTRIBUTES})
        self._content_type_header = prefix + "datacontenttype"

    # -- encode ---------------------------------------------------------------------------

    def encode(self, envelope: Envelope) -> tuple[dict[str, str], bytes]:
        p = self.prefix
        headers = {k: v for k, v in envelope.headers.items() if k not in self._reserved}
        headers[p + "id"] = envelope.id
        headers.update(
            self._attributes(
                envelope.source,
                envelope.type,
                envelope.version,
                envelope.time,
                envelope.specversion,
                envelope.datacontenttype,
            )
        )
        if envelope.correlation_id is not None:
            headers[p + "correlationid"] = envelope.correlation_id
        if envelope.causation_id is not None:
            headers[p + "causationid"] = envelope.causation_id
        if envelope.partition_key is not None:
            headers[p + "partitionkey"] = envelope.partition_key
        refuse_controls(headers, ValueError)  # never send what no consumer would take
        # by alias, as decode validates it: a field with ``alias="Tag"`` goes out as "Tag"
        body = type(envelope.data).__pydantic_serializer__.to_json(envelope.data, by_alias=True)
        return headers, body

    def _attributes(
        self,
        source: str,
        type_: str,
        version: int,
        time: datetime,
        specversion: str = SPECVERSION,
        content_type: str = JSON,
    ) -> dict[str, str]:
        """Every attribute header but the id and the optional ones."""
        p = self.prefix
        return {
            p + "source": source,
            p + "type": type_,
            p + "specversion": specversion,
            p + "time": time.isoformat(),
            p + "dataversion": str(version),
            CONTENT_TYPE: content_type,
        }

    def encode_many(
        self,
        contracts: Sequence[Contract],
        ids: Sequence[str],
        keys: Sequence[str | None],
        *,
        source: str,
    ) -> list[tuple[dict[str, str], bytes]]:
        """Headers and body of each of a batch of one contract, stamped with one time (they
        are published by one call). The same headers ``encode`` gives, built from one
        template instead of one envelope each."""
        if not contracts:
            return []
        p, first = self.prefix, contracts[0]
        now = datetime.now(UTC)
        template = self._attributes(source, first.contract_name, first.contract_version, now)
        serialize = type(first).__pydantic_serializer__.to_json
        id_header, key_header, copy = p + "id", p + "partitionkey", template.copy
        # the batch's own values at once, under the header names they go out as
        given = {id_header: "".join(ids), key_header: "".join(k for k in keys if k is not None)}
        refuse_controls({**template, **given}, ValueError)
        encoded = []
        for contract, message_id, key in zip(contracts, ids, keys, strict=True):
            headers = copy()  # a dict copy is a memcpy; {**template} inserts key by key
            headers[id_header] = message_id
            if key is not None:
                headers[key_header] = key
            encoded.append((headers, serialize(contract, by_alias=True)))  # as decode reads
        return encoded

    # -- decode ---------------------------------------------------------------------------

    def decode(
        self,
        headers: Mapping[str, str],
        body: bytes,
        *,
        assume: type[Contract] | None = None,
    ) -> Envelope:
        """Decode a transport message.

        ``assume`` names the contract of a legacy route: a body that arrives without CloudEvents
        headers is then read as that contract, with an id derived from the body's hash so a
        redelivered copy deduplicates. Without ``assume``, a message lacking ``type`` is
        malformed.
        """
        self._check_headers(headers)
        if len(body) > self.max_body_bytes:
            raise MalformedMessage(
                f"body of {len(body)} bytes exceeds the limit of {self.max_body_bytes} bytes"
            )
        # One look-up per attribute, straight-line: this runs for every message consumed, and
        # a dict of the attributes built first cost a tenth of a Kafka subscriber's time.
        get, h = headers.get, self._headers
        content_type = get(CONTENT_TYPE) or get(self._content_type_header)
        name = get(h.type)
        if content_type is not None and content_type != JSON and not _is_json(content_type):
            # A legacy producer's client often labels JSON generically; a bare-JSON route reads
            # it as JSON all the same. Serialisation formats (pickle, YAML...) stay refused.
            if not (name is None and assume is not None and _is_generic(content_type)):
                raise MalformedMessage(
                    f"unsupported content type {escape(content_type)!r}: only JSON is accepted"
                )
            content_type = None
        if name is None:
            if assume is None:
                raise MalformedMessage(
                    f"missing {self.prefix}type header: not a CloudEvent, and this route "
                    "names no contract to assume for bare JSON"
                )
            return self._bare(headers, body, assume)
        message_id, source, specversion = get(h.id), get(h.source), get(h.specversion)
        if message_id is None or source is None or specversion is None:
            missing = [self.prefix + a for a in _REQUIRED if self.prefix + a not in headers]
            raise MalformedMessage(f"missing CloudEvents header(s): {', '.join(missing)}")
        if specversion != SPECVERSION:
            raise MalformedMessage(f"unsupported CloudEvents specversion {escape(specversion)!r}")
        raw_version = get(h.dataversion)
        if raw_version is not None and raw_version.isdecimal():  # the usual case: no call
            model = self.contracts.get(name, int(raw_version))
        else:
            model = self.contracts.get(name, self._version(name, raw_version))
        time = get(h.time)
        if headers.keys() <= self._reserved:
            free = _NO_HEADERS  # the usual case: every header is an attribute
        else:
            free = MappingProxyType({k: v for k, v in headers.items() if k not in self._reserved})
        try:
            data = model.__pydantic_validator__.validate_json(body)  # model_validate_json's own
        except ValidationError as error:
            raise _invalid(model, error) from None
        return _envelope(
            data,
            message_id,
            source,
            name,
            model.contract_version,
            datetime.now(UTC) if time is None else _parse_time(time),
            specversion,
            content_type or JSON,
            get(h.correlationid),
            get(h.causationid),
            get(h.partitionkey),
            free,
        )

    def _bare(self, headers: Mapping[str, str], body: bytes, model: type[Contract]) -> Envelope:
        digest = hashlib.sha256(body).hexdigest()[:32]
        return Envelope(
            data=_validate(model, body),
            id=f"bare-{digest}",
            source="legacy",
            type=model.contract_name,
            version=model.contract_version,
            time=datetime.now(UTC),
            headers=MappingProxyType(dict(headers)),
        )

    def _check_headers(self, headers: Mapping[str, str]) -> None:
        if len(headers) > self.max_headers:
            raise MalformedMessage(f"{len(headers)} headers exceed the limit of {self.max_headers}")
        try:  # the usual case in a few C calls: all strings, all of them within one header's limit
            names, values = "".join(headers), "".join(headers.values())
        except TypeError:
            names = values = ""
            fits = False  # not all strings: the loop below says which
        else:
            fits = len(names) + len(values) <= self.max_header_bytes
        if fits:
            if not (names.isprintable() and values.isprintable()):
                refuse_controls(headers, MalformedMessage)
            return
        for key, value in headers.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise MalformedMessage(
                    f"header {escape(str(key))!r} is not a string pair "
                    f"({type(key).__name__}: {type(value).__name__})"
                )
            if len(key) + len(value) > self.max_header_bytes:
                raise MalformedMessage(
                    f"header {escape(key)!r} of {len(key) + len(value)} characters exceeds "
                    f"the limit of {self.max_header_bytes}"
                )
        refuse_controls(headers, MalformedMessage)

    def _version(self, name: str, raw: str | None) -> int:
        if raw is None:
            known = self.contracts.versions(name)
            if len(known) == 1:
                return known[0]
            if not known:
                raise UnknownContract(f"unknown contract type {escape(name)!r}")
            raise UnknownContract(
                f"{escape(name)!r} has versions {known} and the message names none "
                f"(header {self.prefix}dataversion)"
            )
        try:
            version = int(raw)
        except ValueError:
            raise MalformedMessage(
                f"{self.prefix}dataversion {escape(raw)!r} is not an integer"
            ) from None
        return version


_CONTROL: Final = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
"""C0 controls and DEL, but tab (allowed in HTTP header values)."""


def refuse_controls(headers: Mapping[str, str], error: type[Exception]) -> None:
    """Raise ``error`` when a header name or value carries a control character: CR and LF
    would inject headers wherever a value is passed on (HTTP, logs). One C-speed look at
    everything first; the search per header runs only when something is not printable
    (non-ASCII spaces are not either, and pass it)."""
    if "".join(headers).isprintable() and "".join(headers.values()).isprintable():
        return
    for key, value in headers.items():
        if _CONTROL.search(key) or _CONTROL.search(value):
            raise error(
                f"header {escape(key)!r} carries a control character (CR, LF, NUL...): "
                "refused, it could inject headers wherever it is passed on"
            )


_GENERIC: Final = frozenset(
    {"", "application/octet-stream", "binary/octet-stream", "application/data", "text/plain"}
)
"""Content types that say nothing of the format: what clients put on bytes by default (kombu
sends ``application/data``)."""


def _is_generic(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() in _GENERIC


def _is_json(content_type: str) -> bool:
    if content_type == JSON:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media == JSON or media.endswith("+json")


def _parse_time(raw: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise MalformedMessage(f"time {escape(raw)!r} is not an RFC 3339 timestamp") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _validate(model: type[Contract], body: bytes) -> Contract:
    try:
        return model.model_validate_json(body)
    except ValidationError as error:
        raise _invalid(model, error) from None


def _invalid(model: type[Contract], error: ValidationError) -> MalformedMessage | SchemaViolation:
    """What was wrong with a body, without echoing it."""
    problems = error.errors(include_input=False, include_url=False)
    if any(p["type"] == "json_invalid" for p in problems):
        return MalformedMessage(f"body is not valid JSON: {escape(problems[0]['msg'])}")
    shown = "; ".join(
        f"{'.'.join(str(part) for part in p['loc']) or '<body>'}: {p['msg']}" for p in problems[:10]
    )
    more = f" (+{len(problems) - 10} more)" if len(problems) > 10 else ""
    return SchemaViolation(
        f"{model.contract_name} v{model.contract_version}: {escape(shown, 600)}{more}"
    )
