"""Registry: (contract name, version) -> model class.

Thread safe. A second, different class claiming a taken (name, version) is refused with
DuplicateContract; re-declaring the very same class (same module and qualified name, as happens
when a module is reloaded) replaces it.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from interchange.contracts.errors import DuplicateContract, UnknownContract

if TYPE_CHECKING:
    from interchange.contracts.base import Contract


class Registry:
    def __init__(self) -> None:
        self._models: dict[tuple[str, int], type[Contract]] = {}
        self._lock = threading.Lock()

    def register(self, model: type[Contract]) -> None:
        key = (model.contract_name, model.contract_version)
        with self._lock:
            taken = self._models.get(key)
            if taken is not None and _identity(taken) != _identity(model):
                raise DuplicateContract(
                    f"{key[0]} v{key[1]} is already declared by {_identity(taken)}; "
                    f"{_identity(model)} cannot claim it too"
                )
            self._models[key] = model

    def get(self, name: str, version: int) -> type[Contract]:
        # Called for every message consumed: a hit reads the dict without the lock (one dict
        # look-up is atomic; register() replaces an entry in one step, never half of it).
        model = self._models.get((name, version))
        if model is not None:
            return model
        with self._lock:
            known = sorted(v for (n, v) in self._models if n == name)
        if known:
            raise UnknownContract(f"unknown version {version} of {name!r}; known versions: {known}")
        raise UnknownContract(f"unknown contract type {name!r}")

    def versions(self, name: str) -> list[int]:
        with self._lock:
            return sorted(v for (n, v) in self._models if n == name)

    def latest(self, name: str) -> type[Contract] | None:
        """The newest registered version of ``name``, or None when no module declared it."""
        with self._lock:
            found = [(v, m) for (n, v), m in self._models.items() if n == name]
        return max(found, key=lambda pair: pair[0])[1] if found else None

    def all(self) -> list[type[Contract]]:
        with self._lock:
            return [self._models[k] for k in sorted(self._models)]


def _identity(model: type[Contract]) -> str:
    return f"{model.__module__}.{model.__qualname__}"


registry = Registry()
"""The process-wide registry that declaring a Command or Event writes to."""
