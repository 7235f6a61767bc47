"""Trimming an event stream to ``maxlen`` / ``retention_ms``, never past what a group needs."""

from __future__ import annotations

import time
from typing import Any


def trim_stream(client: Any, stream: str, retention_ms: int | None, maxlen: int | None) -> int:
    """Apply ``maxlen`` / ``retention_ms``, but never past the first entry a group still
    needs: its oldest pending entry, or the first after its last-delivered id. Returns how
    many entries were deleted."""
    if not client.exists(stream):  # a partition nothing was published to yet
        return 0
    cut = _wanted_cut(client, stream, retention_ms, maxlen)
    if cut is None:
        return 0
    for group in client.xinfo_groups(stream):
        oldest = client.xpending(stream, group["name"])["min"]
        needed = _id(oldest) if oldest else _after(_id(group["last-delivered-id"]))
        cut = min(cut, needed)
    # exact: approximate trimming ("~") only drops whole 100-entry nodes
    return int(client.xtrim(stream, minid=f"{cut[0]}-{cut[1]}", approximate=False))


def _wanted_cut(
    client: Any, stream: str, retention_ms: int | None, maxlen: int | None
) -> tuple[int, int] | None:
    cuts = []
    if retention_ms is not None:
        cuts.append((int(time.time() * 1000) - retention_ms, 0))
    if maxlen is not None:
        newest = client.xrevrange(stream, count=maxlen)
        if len(newest) == maxlen:
            cuts.append(_id(newest[-1][0]))
    return max(cuts) if cuts else None


def _id(raw: bytes | str) -> tuple[int, int]:
    text = raw.decode() if isinstance(raw, bytes) else raw
    millis, _, seq = text.partition("-")
    return int(millis), int(seq or 0)


def _after(entry: tuple[int, int]) -> tuple[int, int]:
    return entry[0], entry[1] + 1
