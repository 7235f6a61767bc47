"""Finished OpenTelemetry spans, recorded by the SDK for the test that asks for them.

A process can set its global tracer provider only once, so the first test that records sets
one for the session; the recorder keeps spans only while a test records, so the rest of the
suite (traced all the same, at a cost) never piles them up."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider


class Recorder(SpanProcessor):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []
        self.active = False
        self._lock = threading.Lock()

    def on_end(self, span: ReadableSpan) -> None:
        if self.active:
            with self._lock:
                self.spans.append(span)

    def named(self, name: str) -> list[ReadableSpan]:
        with self._lock:
            return [s for s in self.spans if s.name == name]

    def finished(self) -> list[ReadableSpan]:
        with self._lock:
            return list(self.spans)


_recorder: Recorder | None = None
_lock = threading.Lock()


@contextmanager
def recording() -> Iterator[Recorder]:
    global _recorder
    with _lock:
        if _recorder is None:
            _recorder = Recorder()
            provider = TracerProvider()
            provider.add_span_processor(_recorder)
            trace.set_tracer_provider(provider)
    _recorder.spans = []
    _recorder.active = True
    try:
        yield _recorder
    finally:
        _recorder.active = False


def parent_of(span: ReadableSpan) -> Any:
    return span.parent.span_id if span.parent is not None else None
