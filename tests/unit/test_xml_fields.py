"""XML data shaped by a contract's field types: one element under a list field is a list."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from interchange.connectors.xml_fields import shaped


class Part(BaseModel):
    codes: tuple[int, ...]


class Order(BaseModel):
    ids: Annotated[set[str], Field(alias="id")]
    part: Part | None = None
    parts: list[Part] = []
    attributes: dict[str, str] = {}
    note: str = ""


def test_each_list_like_field_gets_a_list_whatever_the_wrapping_and_others_stay_as_read():
    data = {
        "id": "A",
        "part": {"codes": "7"},
        "parts": {"codes": ["1", "2"]},
        "attributes": {"colour": "red"},
        "note": ["kept", "as read"],  # two notes where one is due: pydantic says so
    }
    assert shaped(data, Order) == {
        "id": ["A"],
        "part": {"codes": ["7"]},
        "parts": [{"codes": ["1", "2"]}],
        "attributes": {"colour": "red"},
        "note": ["kept", "as read"],
    }
    order = Order.model_validate(shaped({**data, "note": "one"}, Order))
    assert (order.ids, order.part, order.parts) == ({"A"}, Part(codes=(7,)), [Part(codes=(1, 2))])


def test_an_empty_element_under_a_list_field_is_an_empty_list():
    assert shaped({"id": "", "parts": ""}, Order) == {"id": [], "parts": []}
