"""memory:// takes no options: any query option is refused, naming none as known."""

from __future__ import annotations

from interchange.adapters.urls import Options


class MemoryOptions(Options):
    """No options."""
