"""Drop folder in: files a legacy system drops into a directory, each record sent as a command
or published as an event, as Apache Camel's file component reads them.

The folder's life cycle: ``<dir>/FILE`` → claimed by atomic rename into ``<dir>/processing/``
(two bridges watching one folder: the rename succeeds for one of them) → each record sent →
``<dir>/archive/FILE`` with, if any record was refused, ``archive/FILE.rejects.csv`` (line,
reason, record).

- A file is read only once complete: its size and modification time unchanged across
  ``stable_checks`` polls, or (``complete = "marker"``) once ``FILE.done`` exists.
- A record's message id is the file's content hash and the record's ordinal, so a crash
  mid-file resumes after the last batch the Bus confirmed (``processing/FILE.progress``), and
  any record sent again carries its old id: consumers dedupe it. An identical file dropped
  again is recognised by its hash (``archive/.finished``) and sends nothing, for
  ``ledger_days`` after the first one finished (the ledger forgets older entries: see
  ``ledger``).
- The folder is watched with watchfiles (inotify) where it is installed, and polled every
  ``poll_interval`` in any case.
- While a file is processed it is locked (``flock``): a second bridge that finds it in
  ``processing/`` after a restart leaves it to the one still working on it.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError

from interchange.bus import Bus
from interchange.config import DropFolderConnector
from interchange.connectors.folders.formats import BadFile, records, require_xml
from interchange.connectors.folders.ledger import Ledger, remove_stale_temporaries
from interchange.connectors.sql.rounds import Rounds
from interchange.connectors.xml_fields import shaped
from interchange.contracts import Command, Contract, Event

log = logging.getLogger("interchange.connectors.folders")


def write_atomically(target: Path, content: str) -> None:
    """Write to a temporary name, flush to disk, then rename: a reader never sees half a
    file, and a crash leaves the old content or the new, never a mix."""
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with temporary.open("w", encoding="utf-8", newline="") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(target)


class DropFolder(Rounds):
    """Reads the files dropped into one folder; ``start()`` watches it on a thread."""

    def __init__(
        self, bus: Bus, config: DropFolderConnector, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__()
        self.bus, self.config = bus, config
        self.name, self.batch = f"folder-{config.name}", config.batch
        self.poll_interval = config.poll_interval
        contract = bus.contracts.latest(config.contract)
        if contract is None or not issubclass(contract, Command | Event):
            raise ValueError(f"drop folder {config.name!r}: unknown contract {config.contract!r}")
        self.contract = contract
        if config.format == "xml":
            require_xml()  # at start, not at the first file
        self.folder = config.path
        self.processing = self.folder / "processing"
        self.archive = self.folder / "archive"
        for directory in (self.folder, self.processing, self.archive):
            directory.mkdir(parents=True, exist_ok=True)
        self.ledger = Ledger(self.archive / ".finished", config.ledger_days, clock)
        self.ledger.compact()  # at start: what expired while the bridge was down
        for directory in (self.processing, self.archive):  # what a kill -9 left mid-write
            for stale in remove_stale_temporaries(directory):
                log.warning("%s: removed %s, left by a writer that died", self.name, stale)
        # name -> (size and mtime, sightings unchanged, when last counted)
        self._sightings: dict[str, tuple[tuple[int, int], int, float]] = {}
        self._wake = threading.Event()

    # -- watching ------------------------------------------------------------------------------

    def start(self) -> DropFolder:
        """Poll on a thread; with watchfiles (inotify) installed, a change in the folder wakes
        the poll at once instead of after ``poll_interval``. Stability is still judged by
        polls, so a file still being copied is never taken early."""
        super().start()
        try:
            import watchfiles
        except ImportError:  # polling alone: every poll_interval
            return self

        def watch() -> None:
            try:
                for _ in watchfiles.watch(self.folder, stop_event=self._stop, recursive=False):
                    self._wake.set()
            except Exception as error:  # e.g. no inotify here: polling covers
                log.warning("%s: not watching %s (%s); polling", self.name, self.folder, error)

        threading.Thread(target=watch, name=f"{self.name}-watch", daemon=True).start()
        return self

    def wait_for_rows(self) -> None:
        self._wake.wait(self.poll_interval)
        self._wake.clear()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()  # out of the wait at once
        super().stop(timeout)

    # -- one poll ------------------------------------------------------------------------------

    def round(self) -> int:
        return self.poll_once()

    def poll_once(self) -> int:
        """Resume files left in processing/, claim complete new ones, read them; returns the
        number of records sent."""
        sent = 0
        for path in sorted(self.processing.iterdir()):  # left by a crash: resume
            bookkeeping = path.name.endswith((".progress", ".rejects.partial"))
            if path.is_file() and not path.name.startswith(".") and not bookkeeping:
                sent += self._process(path)
        for path in self._complete():
            claimed = self.processing / path.name
            try:
                path.rename(claimed)  # atomic: of two bridges, one wins
            except FileNotFoundError:
                continue
            with contextlib.suppress(FileNotFoundError):
                path.with_name(path.name + ".done").unlink()
            sent += self._process(claimed)
        return sent

    def _complete(self) -> Iterator[Path]:
        """Dropped files that are whole: stable across polls, or with their marker."""
        seen_now: set[str] = set()
        for path in sorted(self.folder.glob(self.config.pattern)):
            if not path.is_file() or path.name.startswith(".") or path.suffix == ".done":
                continue
            if self.config.complete == "marker":
                if path.with_name(path.name + ".done").exists():
                    yield path
                continue
            seen_now.add(path.name)
            try:
                status = path.stat()
            except FileNotFoundError:
                continue  # claimed by another reader meanwhile
            shape, now = (status.st_size, status.st_mtime_ns), time.monotonic()
            previous, count, counted = self._sightings.get(path.name, (None, 0, 0.0))
            if previous != shape:
                count, counted = 1, now
            elif now - counted >= self.poll_interval * 0.9:
                # a sighting counts only a poll interval after the last: polls woken early by
                # other files' changes must not make a paused copy look finished
                count, counted = count + 1, now
            self._sightings[path.name] = (shape, count, counted)
            if count >= self.config.stable_checks:
                del self._sightings[path.name]
                yield path
        for gone in set(self._sightings) - seen_now:
            del self._sightings[gone]

    # -- one file ------------------------------------------------------------------------------

    def _process(self, path: Path) -> int:
        try:
            locked = path.open("rb")
        except FileNotFoundError:
            return 0  # another reader finished it
        with locked:
            try:
                fcntl.flock(locked, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0  # another bridge is on it
            if not path.exists():
                return 0  # finished by another bridge between listing and locking
            return self._read(path, _hash(locked))

    def _read(self, path: Path, digest: str) -> int:
        if digest in self.ledger:
            log.warning(
                "%s: %s was read before (same content): archived, nothing sent",
                self.config.name,
                path.name,
            )
            self._archive(path, digest, finished=False)  # its window runs from the first
            return 0
        progress = path.with_name(path.name + ".progress")
        start = _resume_at(progress, digest)
        rejects = path.with_name(path.name + ".rejects.partial")
        sent = 0
        batch: list[tuple[int, Contract]] = []
        refused: list[tuple[int, str, dict[str, Any]]] = []
        try:
            for ordinal, (line, record) in enumerate(self._records(path), start=1):
                if ordinal < start:
                    continue
                try:
                    batch.append((ordinal, self._contract(record)))
                except (ValidationError, ValueError) as error:
                    refused.append((line, _reason(error), record))
                if len(batch) + len(refused) >= self.batch:
                    sent += self._send(batch, digest)
                    self._checkpoint(progress, digest, ordinal + 1, rejects, refused)
                    batch, refused = [], []
        except BadFile as error:
            refused.append((0, str(error), {}))
        sent += self._send(batch, digest)
        self._checkpoint(progress, digest, 0, rejects, refused)
        self._archive(path, digest)
        return sent

    def _records(self, path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
        config = self.config
        return records(
            path,
            config.format,
            encoding=config.encoding,
            columns=config.fixed,
            record=config.record,
        )

    def _contract(self, record: dict[str, Any]) -> Contract:
        if "__error__" in record:
            raise ValueError(record["__error__"])
        mapping = self.config.columns
        fields = {mapping.get(name, name): value for name, value in record.items()}
        if mapping:
            fields = {field: fields[field] for field in mapping.values() if field in fields}
        if self.config.format == "xml":  # one <tag> under a list field: a one-element list
            fields = shaped(fields, self.contract)
        return self.contract.model_validate(fields)

    def _send(self, batch: list[tuple[int, Contract]], digest: str) -> int:
        """Send one batch; returns once the Bus confirmed every record (or raises)."""
        if not batch:
            return 0
        ids = [f"{digest[:16]}-{ordinal}" for ordinal, _ in batch]
        items = [item for _, item in batch]
        if issubclass(self.contract, Event):
            key = self.config.key
            keys = [str(getattr(item, key)) if key else None for item in items]
            self.bus.publish_many(items, ids=ids, keys=keys)  # type: ignore[arg-type]
        else:
            self.bus.send_many(items, ids=ids)  # type: ignore[arg-type]
        return len(batch)

    def _checkpoint(
        self,
        progress: Path,
        digest: str,
        next_ordinal: int,
        rejects: Path,
        refused: list[tuple[int, str, dict[str, Any]]],
    ) -> None:
        """After a confirmed batch: its refused records, then where to resume."""
        if refused:
            fresh = not rejects.exists()
            with rejects.open("a", encoding="utf-8", newline="") as handle:
                _write_rejects(handle, refused, header=fresh)
                handle.flush()
                os.fsync(handle.fileno())
        if next_ordinal:
            write_atomically(progress, json.dumps({"hash": digest, "next": next_ordinal}))

    def _archive(self, path: Path, digest: str, finished: bool = True) -> None:
        target = self.archive / path.name
        if target.exists():  # a file of that name was archived before: keep both
            target = self.archive / f"{path.stem}.{int(time.time() * 1000)}{path.suffix}"
        rejects = path.with_name(path.name + ".rejects.partial")
        if rejects.exists():
            rejects.replace(target.with_name(target.name + ".rejects.csv"))
        if finished:
            self.ledger.add(digest)
        path.replace(target)
        with contextlib.suppress(FileNotFoundError):
            path.with_name(path.name + ".progress").unlink()
        log.info("%s: %s archived", self.config.name, path.name)


def _hash(handle: IO[bytes]) -> str:
    digest = hashlib.sha256()
    handle.seek(0)
    for chunk in iter(lambda: handle.read(1 << 20), b""):
        digest.update(chunk)
    return digest.hexdigest()


def _resume_at(progress: Path, digest: str) -> int:
    """The ordinal to resume at: after the last confirmed batch of this very content."""
    try:
        saved = json.loads(progress.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return 1
    return int(saved["next"]) if saved.get("hash") == digest else 1


def _reason(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(
            f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
            for problem in error.errors(include_input=False, include_url=False)
        )
    return str(error)


def _write_rejects(
    handle: IO[str], refused: list[tuple[int, str, dict[str, Any]]], header: bool
) -> None:
    writer = csv.writer(handle)
    if header:
        writer.writerow(["line", "reason", "record"])
    for line, reason, record in refused:
        writer.writerow([line, reason, json.dumps(record, default=str)])
