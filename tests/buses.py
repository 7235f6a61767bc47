"""Building Buses for a test: defaults of the test's own, every Bus closed afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from interchange import Bus, Settings


@contextmanager
def bus_factory(**defaults: Any) -> Iterator[Any]:
    """Yields ``make(**settings)``: a Bus on ``defaults`` overridden by ``settings``."""
    made: list[Bus] = []

    def make(**settings: Any) -> Bus:
        bus = Bus(Settings(**{**defaults, **settings}))
        made.append(bus)
        return bus

    try:
        yield make
    finally:
        for bus in made:
            bus.close()
