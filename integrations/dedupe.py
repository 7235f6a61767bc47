"""Dedupe stores: delivery is at least once, so consumers remember handled message ids.

The protocol and the stores live in the adapters (``memory://`` in this process, ``redis://``
shared by every process); a Bus opens the one its settings name through the backend registry.
"""

from __future__ import annotations

from interchange.adapters.backends import open_dedupe
from interchange.adapters.memory.stores import MemoryDedupeStore
from interchange.adapters.protocols import DedupeStore

__all__ = ["DedupeStore", "MemoryDedupeStore", "open_dedupe"]
