"""The compatibility checker over pydantic JSON Schemas, Schema Registry's modes and rules."""

from __future__ import annotations

from enum import StrEnum

import pytest
from pydantic import BaseModel, ConfigDict

from interchange.contracts.compatibility import MODES, check


class Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Size(StrEnum):
    S = "S"
    M = "M"
    L = "L"


class SmallerSize(StrEnum):
    S = "S"
    M = "M"


class V1(Closed):
    order_id: str
    quantity: int
    size: Size = Size.M


def _breaks(new: type[BaseModel], mode: str = "BACKWARD", old: type[BaseModel] = V1) -> list[str]:
    found = check(
        "orders.order_placed", 2, new.model_json_schema(), {1: old.model_json_schema()}, mode
    )
    return [str(b) for b in found]


def test_adding_an_optional_field_passes_backward():
    class AddsOptional(Closed):
        order_id: str
        quantity: int
        size: Size = Size.M
        note: str | None = None

    assert _breaks(AddsOptional) == []


def test_a_removed_required_field_is_named():
    class DropsQuantity(Closed):
        order_id: str
        size: Size = Size.M

    assert _breaks(DropsQuantity) == [
        "orders.order_placed v2 is not BACKWARD-compatible with v1 at quantity: "
        "field 'quantity' removed"
    ]


def test_a_type_change_from_int_to_str_is_named():
    class QuantityAsText(Closed):
        order_id: str
        quantity: str
        size: Size = Size.M

    [problem] = _breaks(QuantityAsText)
    assert problem.endswith("at quantity: type changed from integer to string")


def test_a_new_required_field_without_default_is_named():
    class NeedsCurrency(Closed):
        order_id: str
        quantity: int
        size: Size = Size.M
        currency: str

    [problem] = _breaks(NeedsCurrency)
    assert problem.endswith("at currency: required field 'currency' added without default")


def test_a_removed_enum_member_is_named():
    class FewerSizes(Closed):
        order_id: str
        quantity: int
        size: SmallerSize = SmallerSize.M

    [problem] = _breaks(FewerSizes)
    assert problem.endswith("at size: enum value 'L' removed")


def test_widening_int_to_number_passes_but_narrowing_breaks():
    class Widened(Closed):
        order_id: str
        quantity: float
        size: Size = Size.M

    assert _breaks(Widened) == []
    assert _breaks(V1, old=Widened) == [
        "orders.order_placed v2 is not BACKWARD-compatible with v1 at quantity: "
        "type narrowed from number to integer"
    ]


def test_forward_and_full_check_the_other_direction():
    class AddsOptional(Closed):
        order_id: str
        quantity: int
        size: Size = Size.M
        note: str | None = None

    # old readers are closed: they reject the new field
    assert _breaks(AddsOptional, "FORWARD") == [
        "orders.order_placed v2 is not FORWARD-compatible with v1 at note: field 'note' removed"
    ]
    assert len(_breaks(AddsOptional, "FULL")) == 1


def test_an_open_content_model_makes_adding_an_optional_field_breaking():
    class OpenV1(BaseModel):
        order_id: str

    class OpenV2(BaseModel):
        order_id: str
        note: str | None = None

    assert _breaks(OpenV2, old=OpenV1) == [
        "orders.order_placed v2 is not BACKWARD-compatible with v1 at note: "
        "optional field 'note' added to an open content model"
    ]


def test_transitive_modes_check_every_earlier_version():
    class QuantityText(Closed):
        quantity: str

    class QuantityNumber(Closed):  # registered while the mode was NONE
        quantity: int

    earlier = {1: QuantityText.model_json_schema(), 2: QuantityNumber.model_json_schema()}
    latest = QuantityNumber.model_json_schema()
    assert check("c", 3, latest, earlier, "BACKWARD") == []
    [problem] = check("c", 3, latest, earlier, "BACKWARD_TRANSITIVE")
    assert (problem.against, problem.path) == (1, "quantity")
    assert problem.problem == "type changed from string to integer"
    assert check("c", 3, latest, earlier, "NONE") == []


def test_nested_models_are_compared_through_their_refs():
    class Line(Closed):
        sku: str
        quantity: int

    class Line2(Closed):
        sku: str
        quantity: str

    class Order1(Closed):
        lines: list[Line]

    class Order2(Closed):
        lines: list[Line2]

    [problem] = _breaks(Order2, old=Order1)
    assert problem.endswith("at lines[].quantity: type changed from integer to string")


def test_unknown_modes_are_refused():
    assert "BACKWARD" in MODES
    with pytest.raises(ValueError, match="unknown compatibility mode 'SIDEWAYS'"):
        check("c", 2, {}, {1: {}}, "SIDEWAYS")
