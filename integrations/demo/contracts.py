"""The demo's contracts, as a real service would declare them."""

from interchange.contracts import Command, Event


class PlaceOrder(Command, name="orders.place_order", version=1):
    order_id: str
    sku: str
    quantity: int
    unit_price_cents: int


class OrderPlaced(Event, name="orders.order_placed", version=1):
    order_id: str
    sku: str
    quantity: int
    total_cents: int
