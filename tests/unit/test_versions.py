"""Converters between versions: chains up and down, and a clear error where one is missing."""

import pytest

from interchange.contracts import Event, NoConverter, converters, downcaster, upcaster


class ParcelV1(Event, name="unit.versions.parcel", version=1):
    grams: int


class ParcelV2(Event, name="unit.versions.parcel", version=2):
    grams: int
    depot: str


class ParcelV3(Event, name="unit.versions.parcel", version=3):
    kilograms: float
    depot: str


@upcaster(ParcelV1, ParcelV2)
def _v1_to_v2(old: ParcelV1) -> ParcelV2:
    return ParcelV2(grams=old.grams, depot="unknown")


@upcaster(ParcelV2, ParcelV3)
def _v2_to_v3(old: ParcelV2) -> ParcelV3:
    return ParcelV3(kilograms=old.grams / 1000, depot=old.depot)


@downcaster(ParcelV2, ParcelV1)
def _v2_to_v1(new: ParcelV2) -> ParcelV1:
    return ParcelV1(grams=new.grams)


def test_an_upcaster_chain_reads_v1_as_v3():
    assert converters.convert(ParcelV1(grams=1500), 3) == ParcelV3(kilograms=1.5, depot="unknown")


def test_a_downcaster_derives_the_old_version():
    assert converters.convert(ParcelV2(grams=10, depot="north"), 1) == ParcelV1(grams=10)


def test_a_missing_step_names_both_ends_and_the_gap():
    with pytest.raises(
        NoConverter,
        match=r"no converter from v3 to v1 of unit.versions.parcel "
        r"\(missing v3 -> v2\)",
    ):
        converters.convert(ParcelV3(kilograms=1, depot="x"), 1)


def test_converters_join_adjacent_versions_of_one_contract():
    with pytest.raises(ValueError, match="an upcaster goes from vN to vN\\+1"):
        upcaster(ParcelV1, ParcelV3)
    with pytest.raises(ValueError, match="adjacent"):
        converters.register(ParcelV1, ParcelV3, lambda v: v)
