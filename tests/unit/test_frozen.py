"""Per-message objects built quickly: still what their class promises."""

import dataclasses
from datetime import UTC, datetime
from types import MappingProxyType

import pytest

from interchange.adapters.kafka.wire import text_headers
from interchange.contracts import Command, Envelope
from interchange.contracts.frozen import quick


class Parcel(Command, name="unit.frozen.parcel", version=1):
    parcel_id: str


def _fields(**overrides):
    fields = dict(
        data=Parcel(parcel_id="p-1"),
        id="m-1",
        source="unit",
        type="unit.frozen.parcel",
        version=1,
        time=datetime(2026, 11, 27, tzinfo=UTC),
        headers=MappingProxyType({"traceparent": "00-x"}),
    )
    return fields | overrides


def test_a_quickly_built_envelope_is_an_envelope_equal_to_one_built_plainly():
    made = quick(Envelope)(**_fields())
    plain = Envelope(**_fields())
    assert type(made) is Envelope
    assert made == plain
    assert made.specversion == "1.0"
    assert made.correlation_id is None
    assert repr(made) == repr(plain)


def test_a_quickly_built_envelope_still_refuses_to_be_changed():
    made = quick(Envelope)(**_fields())
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.id = "other"  # type: ignore[misc]
    assert made.id == "m-1"


def test_quick_refuses_classes_it_cannot_build_faithfully():
    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        a: int

    @dataclasses.dataclass(frozen=True, slots=True)
    class Checked:
        a: int

        def __post_init__(self) -> None:
            raise ValueError

    for cls in (NoSlots, Checked):
        with pytest.raises(TypeError):
            quick(cls)


def test_record_headers_become_text_whatever_their_bytes():
    assert text_headers([]) == {}
    assert text_headers([("ce_id", b"1"), ("x", "é".encode())]) == {"ce_id": "1", "x": "é"}
    # invalid UTF-8 is replaced (never raised), a header without a value reads as empty
    assert text_headers([("a", b"\xff\xfeok"), ("b", None), ("c", b"z")]) == {
        "a": "\ufffd\ufffdok",
        "b": "",
        "c": "z",
    }
