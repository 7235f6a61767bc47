"""What may be registered as a handler, checked when it is registered, not when it first fails.

A handler is any callable taking ``(msg)`` or ``(msg, ctx)``, plain or ``async def``, but not a
generator function, plain or async (its body would never run). A coroutine handler is awaited on
an event loop owned by the consumer thread that calls it (one loop per thread, kept between
messages, so loop-bound clients such as an ``httpx.AsyncClient`` keep working); its retries,
dead letters and dedupe follow the same rules as any handler.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from interchange.context import HandlerContext

HandlerFunc = Callable[[Any, HandlerContext], Any]
ACCEPTED = "a handler takes (msg) or (msg, ctx), and may be async def"


def _takes(func: Callable[..., Any], count: int) -> bool:
    try:
        inspect.signature(func).bind(*range(count))
    except TypeError:
        return False
    return True


def _name(func: Callable[..., Any]) -> str:
    return getattr(func, "__qualname__", None) or type(func).__name__


def _refuse_generators(func: Callable[..., Any], role: str) -> None:
    """A TypeError for a generator function (``yield`` in its body, ``async def`` or not):
    calling one only creates a generator, so its body would never run while each message
    counted as handled."""
    call = getattr(func, "__call__", None)  # noqa: B004 - an object with a generator __call__
    for candidate in (func, call):
        if inspect.isasyncgenfunction(candidate) or inspect.isgeneratorfunction(candidate):
            kind = "an async generator" if inspect.isasyncgenfunction(candidate) else "a generator"
            raise TypeError(
                f"{_name(func)} is {kind} function (it contains `yield`): calling it would only "
                f"create a generator, its body would never run, yet each message would count "
                f"as handled; remove the `yield` ({role})"
            )


def _is_async(func: Callable[..., Any]) -> bool:
    if inspect.iscoroutinefunction(func):
        return True
    call = getattr(func, "__call__", None)  # noqa: B004 - an object with an async __call__
    return call is not None and inspect.iscoroutinefunction(call)


class EventLoops:
    """One event loop per consumer thread, for coroutine handlers; closed with ``close()``."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._runners: list[asyncio.Runner] = []
        self._lock = threading.Lock()

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        runner: asyncio.Runner | None = getattr(self._local, "runner", None)
        if runner is None:
            runner = self._local.runner = asyncio.Runner()
            with self._lock:
                self._runners.append(runner)
        return runner.run(coroutine)

    def close(self) -> None:
        """Close every thread's loop (call once its consumers stopped)."""
        with self._lock:
            runners, self._runners = self._runners, []
        for runner in runners:
            runner.close()
        self._local = threading.local()


def check_handler(func: Callable[..., Any]) -> bool:
    """Whether ``func`` takes ``ctx``. Raises TypeError, saying what is accepted, for anything
    that cannot be called as a handler (a Bus checks before it records a registration)."""
    if not callable(func):
        raise TypeError(f"{func!r} is not callable: {ACCEPTED}")
    _refuse_generators(func, ACCEPTED)
    if _no_signature(func) or _takes(func, 2):  # a builtin without one: trust it with both
        return True
    if _takes(func, 1):
        return False
    raise TypeError(f"{_name(func)}{inspect.signature(func)} cannot be a handler: {ACCEPTED}")


def as_handler(func: Callable[..., Any], loops: EventLoops) -> HandlerFunc:
    """``func`` as a ``(msg, ctx)`` handler. Raises TypeError, saying what is accepted, for
    anything that cannot be called as one."""
    with_ctx = check_handler(func)
    if _is_async(func):

        @functools.wraps(func)
        def awaited(msg: Any, ctx: HandlerContext) -> Any:
            return loops.run(func(msg, ctx) if with_ctx else func(msg))

        return awaited
    if with_ctx:
        return func

    @functools.wraps(func)
    def without_ctx(msg: Any, ctx: HandlerContext) -> Any:
        return func(msg)

    without_ctx.__interchange_plain__ = func  # type: ignore[attr-defined]  # see plain_handler
    return without_ctx


def plain_handler(handler: HandlerFunc) -> Callable[[Any], Any] | None:
    """The ``(msg)`` function behind a handler made by ``as_handler``, or None when it takes
    ``ctx`` (or is async): a dispatcher then calls it without building a context."""
    return getattr(handler, "__interchange_plain__", None)


def as_reader(func: Callable[..., Any], loops: EventLoops) -> Callable[[Any], Any]:
    """``func`` as a one-argument reader (of dead letters), plain or ``async def``."""
    check_reader(func)
    if _is_async(func):

        @functools.wraps(func)
        def awaited(record: Any) -> Any:
            return loops.run(func(record))

        return awaited
    return func


def check_reader(func: Callable[..., Any]) -> None:
    """Raises TypeError unless ``func`` can read dead letters: ``(record)``, may be async."""
    if callable(func):
        _refuse_generators(func, "a reader takes (record), and may be async def")
    if not callable(func) or not (_no_signature(func) or _takes(func, 1)):
        raise TypeError(f"{_name(func)} cannot read dead letters: a reader takes (record)")


def _no_signature(func: Callable[..., Any]) -> bool:
    try:
        inspect.signature(func)
    except (TypeError, ValueError):
        return True
    return False
