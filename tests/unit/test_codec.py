"""The codec: CloudEvents binary mode out, and hostile input in."""

import contextlib
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from interchange.contracts import (
    AMQP_PREFIX,
    KAFKA_PREFIX,
    Codec,
    Command,
    Envelope,
    MalformedMessage,
    SchemaViolation,
    UnknownContract,
)
from interchange.contracts.codec import _CONTROL as CONTROL


class ShipParcel(Command, name="unit.codec.ship_parcel", version=1):
    parcel_id: str
    weight_grams: int


class ShipParcelV2(Command, name="unit.codec.ship_parcel", version=2):
    parcel_id: str
    weight_grams: int
    express: bool = False


class Ping(Command, name="unit.codec.ping", version=1):
    n: int


def _wire(prefix=KAFKA_PREFIX, **overrides):
    envelope = Envelope.wrap(
        ShipParcel(parcel_id="p-1", weight_grams=1200),
        source="unit-test",
        correlation_id="conv-1",
        causation_id="cause-1",
        partition_key="p-1",
        headers={"tenant": "acme"},
    )
    headers, body = Codec(prefix).encode(envelope)
    headers.update(overrides)
    return envelope, headers, body


@pytest.mark.parametrize("prefix", [KAFKA_PREFIX, AMQP_PREFIX])
def test_encode_writes_cloudevents_binary_mode_headers_and_json_body(prefix):
    envelope, headers, body = _wire(prefix)
    assert headers == {
        f"{prefix}id": envelope.id,
        f"{prefix}source": "unit-test",
        f"{prefix}type": "unit.codec.ship_parcel",
        f"{prefix}specversion": "1.0",
        f"{prefix}time": envelope.time.isoformat(),
        f"{prefix}dataversion": "1",
        f"{prefix}correlationid": "conv-1",
        f"{prefix}causationid": "cause-1",
        f"{prefix}partitionkey": "p-1",
        "content-type": "application/json",
        "tenant": "acme",
    }
    assert json.loads(body) == {"parcel_id": "p-1", "weight_grams": 1200}


@pytest.mark.parametrize("prefix", [KAFKA_PREFIX, AMQP_PREFIX])
def test_decode_restores_the_envelope(prefix):
    envelope, headers, body = _wire(prefix)
    assert Codec(prefix).decode(headers, body) == envelope


def test_the_version_on_the_wire_selects_the_model():
    headers, body = Codec().encode(
        Envelope.wrap(ShipParcelV2(parcel_id="p", weight_grams=1, express=True), source="s")
    )
    decoded = Codec().decode(headers, body)
    assert decoded.data == ShipParcelV2(parcel_id="p", weight_grams=1, express=True)
    assert decoded.version == 2


@pytest.mark.parametrize(
    ("body", "error", "says"),
    [
        (b'{"parcel_id": "p", "weight', MalformedMessage, "not valid JSON"),
        (b"\xff\xfe not utf8", MalformedMessage, "not valid JSON"),
        (b"[" * 100_000, MalformedMessage, "recursion limit"),
        (b'{"parcel_id": "p"}', SchemaViolation, "weight_grams: Field required"),
        (b'{"parcel_id": 5, "weight_grams": 1}', SchemaViolation, "parcel_id: Input should be"),
        (
            b'{"parcel_id": "p", "weight_grams": 1, "admin": true}',
            SchemaViolation,
            "admin: Extra inputs are not permitted",
        ),
        (b"[1, 2]", SchemaViolation, "unit.codec.ship_parcel v1"),
    ],
)
def test_bad_bodies_raise_typed_errors_that_say_what_is_wrong(body, error, says):
    _, headers, _ = _wire()
    with pytest.raises(error, match=says):
        Codec().decode(headers, body)


def test_a_huge_body_is_refused_before_it_is_parsed():
    _, headers, _ = _wire()
    with pytest.raises(MalformedMessage, match="body of 2049 bytes exceeds the limit of 2048"):
        Codec(max_body_bytes=2048).decode(headers, b"x" * 2049)


@pytest.mark.parametrize(
    "content_type", ["application/x-python-pickle", "application/x-yaml", "text/plain"]
)
def test_only_json_content_is_accepted(content_type):
    _, headers, body = _wire(**{"content-type": content_type})
    with pytest.raises(MalformedMessage, match=r"unsupported content type .* only JSON"):
        Codec().decode(headers, body)


def test_json_with_parameters_and_plus_json_suffix_is_accepted():
    for content_type in ("application/json; charset=utf-8", "application/cloudevents+json"):
        _, headers, body = _wire(**{"content-type": content_type})
        assert Codec().decode(headers, body).data.parcel_id == "p-1"


def test_unknown_type_and_future_version_are_unknown_contracts():
    _, headers, body = _wire(ce_type="unit.codec.no_such_thing")
    with pytest.raises(UnknownContract, match=r"unknown contract type 'unit.codec.no_such_thing'"):
        Codec().decode(headers, body)
    _, headers, body = _wire(ce_dataversion="7")
    with pytest.raises(UnknownContract, match=r"unknown version 7 .* known versions: \[1, 2\]"):
        Codec().decode(headers, body)


def test_a_missing_version_is_inferred_only_when_one_version_exists():
    headers, body = Codec().encode(Envelope.wrap(Ping(n=1), source="s"))
    del headers["ce_dataversion"]
    assert Codec().decode(headers, body).data == Ping(n=1)
    _, headers, body = _wire()
    del headers["ce_dataversion"]
    with pytest.raises(UnknownContract, match="has versions \\[1, 2\\] and the message names none"):
        Codec().decode(headers, body)


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"ce_dataversion": "two"}, "dataversion 'two' is not an integer"),
        ({"ce_specversion": "0.3"}, "unsupported CloudEvents specversion '0.3'"),
        ({"ce_time": "yesterday"}, "time 'yesterday' is not an RFC 3339 timestamp"),
        ({"x-spoofed": "a" * 5000}, "header 'x-spoofed' of 5009 characters exceeds"),
        ({f"h{i}": "v" for i in range(70)}, "headers exceed the limit of 64"),
        ({"x-note": "a\r\nSet-Cookie: x=1"}, "header 'x-note' carries a control character"),
        ({"x-nul": "a\x00b"}, "header 'x-nul' carries a control character"),
        ({"x\nname": "v"}, "carries a control character"),
    ],
)
def test_bad_headers_raise_malformed_message(overrides, says):
    _, headers, body = _wire(**overrides)
    with pytest.raises(MalformedMessage, match=says):
        Codec().decode(headers, body)


def test_tabs_and_non_ascii_spaces_in_header_values_are_not_control_characters():
    _, headers, body = _wire(**{"x-note": "a\tb\u00a0c\u2028d"})
    assert Codec().decode(headers, body).headers["x-note"] == "a\tb\u00a0c\u2028d"


def test_missing_required_attributes_are_named():
    _, headers, body = _wire()
    del headers["ce_id"], headers["ce_source"]
    with pytest.raises(
        MalformedMessage, match="missing CloudEvents header\\(s\\): ce_id, ce_source"
    ):
        Codec().decode(headers, body)


def test_non_string_headers_are_refused():
    _, headers, body = _wire()
    headers["count"] = 3
    with pytest.raises(MalformedMessage, match="header 'count' is not a string pair"):
        Codec().decode(headers, body)


def test_cr_and_lf_from_the_wire_never_reach_an_error_message_raw():
    _, headers, body = _wire(ce_type="evil\r\nINJECTED: yes")
    with pytest.raises(MalformedMessage, match="header 'ce_type' carries a control") as caught:
        Codec().decode(headers, body)
    assert "\n" not in str(caught.value)
    assert "\r" not in str(caught.value)
    _, headers, body = _wire(**{"x-evil\r\nINJECTED": "yes"})
    with pytest.raises(MalformedMessage) as caught:
        Codec().decode(headers, body)
    assert "\r" not in str(caught.value)
    assert "x-evil" in str(caught.value)
    assert "INJECTED" in str(caught.value)


def test_a_control_character_in_what_we_send_is_refused_before_it_is_sent():
    with pytest.raises(ValueError, match="header 'ce_correlationid' carries a control"):
        Codec().encode(Envelope.wrap(Ping(n=1), source="s", correlation_id="a\nb"))
    with pytest.raises(ValueError, match="header 'ce_id' carries a control"):
        Codec().encode_many([Ping(n=1)], ["id\r\n1"], [None], source="s")


def test_bare_json_needs_a_contract_to_assume():
    body = b'{"parcel_id": "legacy-1", "weight_grams": 500}'
    with pytest.raises(MalformedMessage, match="missing ce_type header: not a CloudEvent"):
        Codec().decode({}, body)
    first = Codec().decode({}, body, assume=ShipParcel)
    again = Codec().decode({}, body, assume=ShipParcel)
    assert first.data == ShipParcel(parcel_id="legacy-1", weight_grams=500)
    assert first.source == "legacy"
    assert first.id == again.id, "a redelivered bare message must keep its id for dedupe"


def test_a_time_without_zone_is_read_as_utc():
    _, headers, body = _wire(ce_time="2026-01-02T03:04:05")
    assert Codec().decode(headers, body).time == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@given(
    parcel_id=st.text(max_size=50),
    weight=st.integers(min_value=-(2**63), max_value=2**63 - 1),
    correlation=st.one_of(st.none(), st.text(min_size=1, max_size=30)),
    extra=st.dictionaries(st.from_regex(r"x-[a-z]{1,10}", fullmatch=True), st.text(max_size=40)),
)
def test_any_valid_envelope_survives_a_round_trip_or_is_refused_before_sending(
    parcel_id, weight, correlation, extra
):
    envelope = Envelope.wrap(
        ShipParcel(parcel_id=parcel_id, weight_grams=weight),
        source="prop",
        correlation_id=correlation,
        headers=extra,
    )
    codec = Codec(AMQP_PREFIX)
    if any(CONTROL.search(v) for v in [correlation or "", *extra.values()]):
        # a control character in a header: no consumer would take it, so it is not sent
        with pytest.raises(ValueError, match="carries a control character"):
            codec.encode(envelope)
        return
    headers, body = codec.encode(envelope)
    assert codec.decode(headers, body) == envelope


@given(st.binary(max_size=300), st.dictionaries(st.text(max_size=20), st.text(max_size=40)))
def test_arbitrary_bytes_and_headers_never_escape_as_anything_but_decode_errors(body, headers):
    from interchange.contracts import DecodeError

    with contextlib.suppress(DecodeError):
        Codec().decode(headers, body, assume=ShipParcel)
