"""Command and Event: the two kinds of contract, declared as pydantic models.

    class PlaceOrder(Command, name="orders.place_order", version=1):
        order_id: str

Declaring the class registers it in the default registry under (name, version). Contracts use a
*closed* content model (``extra="forbid"``): a field the model does not know is a schema
violation, so a consumer never half-reads a message meant for another version. Producers evolve
a contract by publishing a new version beside the old one. Instances are frozen: a message that
was sent must not change under the sender's feet.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,199}$")

Kind = Literal["command", "event"]


class Contract(BaseModel):
    """Common base of Command and Event. Do not subclass directly."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    contract_name: ClassVar[str]
    contract_version: ClassVar[int]
    contract_kind: ClassVar[Kind]
    contract_compatibility: ClassVar[str] = "BACKWARD"
    """How versions of this contract may evolve (contracts.compatibility.MODES)."""

    def __init_subclass__(
        cls,
        *,
        name: str | None = None,
        version: int = 1,
        compatibility: str | None = None,
        **kwargs: Any,
    ) -> None:
        # type.__init_subclass__ refuses class keywords; pydantic hands them on to
        # __pydantic_init_subclass__ below, once the fields exist.
        super().__init_subclass__(**kwargs)

    @classmethod
    def __pydantic_init_subclass__(
        cls,
        *,
        name: str | None = None,
        version: int = 1,
        compatibility: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if compatibility is not None:
            from interchange.contracts.compatibility import MODES

            if compatibility not in MODES:
                raise ValueError(f"compatibility must be one of {', '.join(MODES)}")
            cls.contract_compatibility = compatibility
        if name is None:
            return  # an abstract intermediate base; nothing to register
        if not _NAME.match(name):
            raise ValueError(
                f"contract name {name!r} must be lowercase letters, digits, '.', '_' or '-'"
            )
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise ValueError(f"contract version must be a positive int, got {version!r}")
        cls.contract_name = name
        cls.contract_version = version
        from interchange.contracts.registry import registry

        registry.register(cls)


class Command(Contract):
    """Asks for something to happen; its contract is shared by sender and receiver."""

    contract_kind: ClassVar[Kind] = "command"


class Event(Contract):
    """Says that something happened; its producer alone owns the contract."""

    contract_kind: ClassVar[Kind] = "event"
