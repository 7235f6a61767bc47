"""Converters between versions of one contract: upcasters (vN -> vN+1) and downcasters
(vN -> vN-1), registered as plain functions and chained, so a v3 consumer can read a v1 event
from an old part of the log, and a producer of v2 can also publish the v1 its old consumers read.

    @upcaster(OrderPlacedV1, OrderPlacedV2)
    def add_currency(old: OrderPlacedV1) -> OrderPlacedV2:
        return OrderPlacedV2(**old.model_dump(), currency="EUR")

Only adjacent versions are registered; ``convert`` walks the chain and raises NoConverter
("no converter from v1 to v3 of orders.order_placed") when a step is missing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from interchange.contracts.base import Contract
from interchange.contracts.errors import DecodeError

Old = TypeVar("Old", bound=Contract)
New = TypeVar("New", bound=Contract)


class NoConverter(DecodeError):
    """No chain of registered converters leads from one version to another."""


class Converters:
    def __init__(self) -> None:
        self._steps: dict[tuple[str, int, int], Callable[[Contract], Contract]] = {}
        self._lock = threading.Lock()

    def register(
        self, source: type[Contract], target: type[Contract], step: Callable[[Contract], Contract]
    ) -> None:
        if source.contract_name != target.contract_name:
            raise ValueError(
                f"a converter stays within one contract: {source.contract_name} is not "
                f"{target.contract_name}"
            )
        if abs(source.contract_version - target.contract_version) != 1:
            raise ValueError(
                f"converters join adjacent versions (v{source.contract_version} -> "
                f"v{target.contract_version}); chains are walked step by step"
            )
        key = (source.contract_name, source.contract_version, target.contract_version)
        with self._lock:
            self._steps[key] = step

    def convert(self, value: Contract, version: int) -> Contract:
        """``value`` as ``version`` of its contract, through adjacent converters."""
        name, current = value.contract_name, value.contract_version
        direction = 1 if version > current else -1
        while current != version:
            with self._lock:
                step = self._steps.get((name, current, current + direction))
            if step is None:
                raise NoConverter(
                    f"no converter from v{value.contract_version} to v{version} of {name} "
                    f"(missing v{current} -> v{current + direction})"
                )
            value = step(value)
            if value.contract_version != current + direction:
                raise TypeError(
                    f"the converter v{current} -> v{current + direction} of {name} returned "
                    f"v{value.contract_version}"
                )
            current += direction
        return value


converters = Converters()
"""The process-wide converters that ``upcaster`` and ``downcaster`` register into."""


def upcaster(
    source: type[Old], target: type[New]
) -> Callable[[Callable[[Old], New]], Callable[[Old], New]]:
    """Register ``source`` (vN) -> ``target`` (vN+1)."""
    if target.contract_version != source.contract_version + 1:
        raise ValueError("an upcaster goes from vN to vN+1")

    def register(step: Callable[[Old], New]) -> Callable[[Old], New]:
        converters.register(source, target, step)  # type: ignore[arg-type]
        return step

    return register


def downcaster(
    source: type[Old], target: type[New]
) -> Callable[[Callable[[Old], New]], Callable[[Old], New]]:
    """Register ``source`` (vN) -> ``target`` (vN-1)."""
    if target.contract_version != source.contract_version - 1:
        raise ValueError("a downcaster goes from vN to vN-1")

    def register(step: Callable[[Old], New]) -> Callable[[Old], New]:
        converters.register(source, target, step)  # type: ignore[arg-type]
        return step

    return register
