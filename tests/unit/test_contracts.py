"""Declaring contracts: names, versions, the registry, and the closed content model."""

import pytest
from pydantic import ValidationError

from interchange.contracts import (
    Command,
    DuplicateContract,
    Event,
    Registry,
    UnknownContract,
    registry,
)


class ReserveStock(Command, name="unit.contracts.reserve_stock", version=1):
    sku: str
    quantity: int


class StockReserved(Event, name="unit.contracts.stock_reserved", version=2):
    sku: str


def test_declaring_a_contract_registers_it_under_name_and_version():
    assert registry.get("unit.contracts.reserve_stock", 1) is ReserveStock
    assert registry.get("unit.contracts.stock_reserved", 2) is StockReserved
    assert ReserveStock.contract_kind == "command"
    assert StockReserved.contract_kind == "event"
    assert StockReserved.contract_version == 2


def test_a_second_model_cannot_claim_a_taken_name_and_version():
    with pytest.raises(DuplicateContract, match=r"unit.contracts.reserve_stock v1 is already"):

        class Impostor(Command, name="unit.contracts.reserve_stock", version=1):
            sku: str


def test_a_new_version_of_the_same_name_is_welcome():
    class ReserveStockV2(Command, name="unit.contracts.reserve_stock", version=2):
        sku: str
        quantity: int
        warehouse: str = "main"

    assert registry.versions("unit.contracts.reserve_stock") == [1, 2]


@pytest.mark.parametrize(
    ("name", "version", "problem"),
    [
        ("Bad Name", 1, "must be lowercase"),
        ("unit.ok", 0, "positive int"),
        ("unit.ok", True, "positive int"),
    ],
)
def test_invalid_names_and_versions_are_refused(name, version, problem):
    with pytest.raises(ValueError, match=problem):

        class Broken(Command, name=name, version=version):
            x: int


def test_unknown_type_and_unknown_version_are_told_apart():
    with pytest.raises(UnknownContract, match=r"unknown contract type 'unit.nope'"):
        registry.get("unit.nope", 1)
    with pytest.raises(UnknownContract, match=r"unknown version 9 .* known versions: \[1, 2\]"):
        registry.get("unit.contracts.reserve_stock", 9)


def test_contracts_are_closed_and_frozen():
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        ReserveStock(sku="a", quantity=1, colour="red")
    cmd = ReserveStock(sku="a", quantity=1)
    with pytest.raises(ValidationError, match="frozen"):
        cmd.quantity = 2


def test_validation_errors_do_not_echo_the_input():
    with pytest.raises(ValidationError) as caught:
        ReserveStock(sku="a", quantity="secret-token-123")
    assert "secret-token-123" not in str(caught.value)


def test_a_separate_registry_is_independent():
    mine = Registry()
    mine.register(ReserveStock)
    assert mine.all() == [ReserveStock]


def test_latest_is_the_newest_registered_version_or_none():
    assert registry.latest("unit.contracts.reserve_stock").contract_version == max(
        registry.versions("unit.contracts.reserve_stock")
    )
    assert registry.latest("unit.contracts.nobody_declared_this") is None
