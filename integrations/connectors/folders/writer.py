"""Drop folder out: events written to rolling CSV or JSON Lines files, for systems that only
read files.

Events are appended to a hidden working file (``.<prefix>.current``) in the folder; when it
reaches ``roll_bytes`` or ``roll_seconds`` (checked every second, even when no event comes) it
is flushed to disk and renamed to ``<prefix>-<UTC time>-<n>.<ext>``: a reader that takes only
files without a leading dot never sees half a file. An event is acknowledged once its line is
written (and flushed to the operating system); a working file left by a crash is rolled when
the sink starts again. Each record carries the message id first (``message_id``), so a reader
can drop the rare duplicate that at-least-once delivery allows.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import threading
import time
from datetime import UTC, datetime
from typing import IO, Any

from interchange.bus import Bus
from interchange.config import FileSinkConnector
from interchange.context import HandlerContext
from interchange.contracts import Event

log = logging.getLogger("interchange.connectors.folders")


class FileSink:
    """Appends one event contract to rolling files; ``attach`` subscribes it."""

    def __init__(self, config: FileSinkConnector) -> None:
        self.config = config
        self.folder = config.path
        self.folder.mkdir(parents=True, exist_ok=True)
        self.prefix = config.prefix or config.name
        self.current = self.folder / f".{self.prefix}.current"
        self._handle: IO[str] | None = None
        self._opened = 0.0
        self._written = 0
        self._columns: list[str] | None = None
        self._sequence = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        if self.current.exists() and self.current.stat().st_size:
            self._rename()  # left by a crash: its lines were acknowledged
        self._timer = threading.Thread(target=self._roll_on_time, name=f"files-{config.name}")
        self._timer.daemon = True
        self._timer.start()

    def attach(self, bus: Bus) -> None:
        contract = bus.contracts.latest(self.config.contract)
        if contract is None or not issubclass(contract, Event):
            raise ValueError(
                f"file sink {self.config.name!r}: {self.config.contract!r} is not a known event"
            )
        group = self.config.group or f"files.{self.config.name}"
        bus.subscribes(contract, group=group)(self.write)

    def write(self, event: Any, ctx: HandlerContext) -> None:
        record = {"message_id": ctx.envelope.id, **event.model_dump(mode="json")}
        with self._lock:
            handle = self._open()
            if self.config.format == "jsonl":
                line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
            else:
                line = self._csv_line(record)
            handle.write(line)
            handle.flush()  # in the operating system's hands before the ack
            self._written += len(line.encode())
            if self._written >= self.config.roll_bytes:
                self._roll()

    def _csv_line(self, record: dict[str, Any]) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        if self._columns is None:
            self._columns = list(record)
            if self._written == 0:
                writer.writerow(self._columns)
        writer.writerow(
            json.dumps(record.get(c), default=str)
            if isinstance(record.get(c), dict | list)
            else record.get(c)
            for c in self._columns
        )
        return buffer.getvalue()

    def _open(self) -> IO[str]:
        if self._handle is None:
            self._handle = self.current.open("a", encoding="utf-8", newline="")
            self._opened = time.monotonic()
            self._written = self.current.stat().st_size
        return self._handle

    def _roll(self) -> None:
        """Flush the working file to disk and give it its final name. Holds the lock."""
        if self._handle is None:
            return
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        self._handle = None
        self._columns = None
        if self._written:
            self._rename()
        self._written = 0

    def _rename(self) -> None:
        extension = "jsonl" if self.config.format == "jsonl" else "csv"
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        self._sequence += 1
        target = self.folder / f"{self.prefix}-{stamp}-{self._sequence}.{extension}"
        self.current.replace(target)
        log.info("%s: rolled %s", self.config.name, target.name)

    def _roll_on_time(self) -> None:
        while not self._stop.wait(1.0):
            with self._lock:
                if self._handle and time.monotonic() - self._opened >= self.config.roll_seconds:
                    self._roll()

    def close(self) -> None:
        """Roll what was written; stop the timer."""
        self._stop.set()
        with self._lock:
            self._roll()
