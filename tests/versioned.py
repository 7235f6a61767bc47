"""Three versions of one event and the converters between them, shared by the version tests."""

from interchange.contracts import Event, downcaster, upcaster


class ShipmentV1(Event, name="test.versions.shipment_weighed", version=1):
    shipment_id: str
    grams: int


class ShipmentV2(Event, name="test.versions.shipment_weighed", version=2):
    shipment_id: str
    kilograms: float
    carrier: str


class ShipmentV3(Event, name="test.versions.shipment_weighed", version=3):
    shipment_id: str
    kilograms: float
    carrier: str
    insured: bool


@downcaster(ShipmentV2, ShipmentV1)
def _v2_to_v1(new: ShipmentV2) -> ShipmentV1:
    return ShipmentV1(shipment_id=new.shipment_id, grams=round(new.kilograms * 1000))


@upcaster(ShipmentV1, ShipmentV2)
def _v1_to_v2(old: ShipmentV1) -> ShipmentV2:
    return ShipmentV2(shipment_id=old.shipment_id, kilograms=old.grams / 1000, carrier="unknown")


@upcaster(ShipmentV2, ShipmentV3)
def _v2_to_v3(old: ShipmentV2) -> ShipmentV3:
    return ShipmentV3(**old.model_dump(), insured=False)


NAME = ShipmentV1.contract_name


def dual_publish_story(make_bus, layout: str, count: int = 20) -> None:
    """A v2 producer publishing v1 and v2; a v1-only and a v2-only consumer; both get all."""
    from interchange.testing import Recorder

    route = {NAME: {"versions": [1, 2], "layout": layout, "partition_key": "shipment_id"}}
    producer, old_service, new_service = (
        make_bus(routes=route),
        make_bus(routes=route),
        make_bus(routes=route),
    )
    old, new = Recorder(), Recorder()
    old_service.subscribes(ShipmentV1, group="old-billing")(old)
    new_service.subscribes(ShipmentV2, group="new-billing")(new)
    with old_service, new_service:
        producer.publish_many(
            [
                ShipmentV2(shipment_id=f"s{i}", kilograms=i + 0.5, carrier="dhl")
                for i in range(count)
            ]
        )
        old.wait_for(count, timeout=60)
        new.wait_for(count, timeout=60)
    assert sorted(old.contracts, key=lambda e: int(e.shipment_id[1:])) == [
        ShipmentV1(shipment_id=f"s{i}", grams=i * 1000 + 500) for i in range(count)
    ]
    assert sorted(new.contracts, key=lambda e: int(e.shipment_id[1:])) == [
        ShipmentV2(shipment_id=f"s{i}", kilograms=i + 0.5, carrier="dhl") for i in range(count)
    ]
    assert len(old) == count, "a v1 consumer must not also get the v2 twins"
    assert len(new) == count, "a v2 consumer must not also get the v1 twins"


def replay_old_log_as_v3(make_bus) -> None:
    """An old producer wrote v1 only; a v3 consumer replays the log and gets upcast values."""
    legacy = make_bus()
    legacy.publish_many([ShipmentV1(shipment_id=f"old{i}", grams=250 * i) for i in range(5)])
    reader = make_bus()
    replayed = sorted(reader.replay(ShipmentV3), key=lambda e: e.shipment_id)  # no global order
    assert replayed == [  # across partitions
        ShipmentV3(shipment_id=f"old{i}", kilograms=0.25 * i, carrier="unknown", insured=False)
        for i in range(5)
    ]
