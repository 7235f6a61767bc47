"""``interchange demo``: a legacy-integration story, end to end on whatever backends the
configuration names (the embedded memory:// by default)."""

from interchange.demo.story import run_demo

__all__ = ["run_demo"]
