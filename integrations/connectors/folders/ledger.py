"""The drop folder's ledger of finished files (``archive/.finished``): the content hash of each
file read to its end, with when it finished, so an identical file dropped again sends nothing.

Retention: an entry is kept ``ledger_days`` (30 by default) after its file finished, then
forgotten, so the ledger holds about one window of files instead of every file ever dropped.
A lookup ignores expired entries;
they are dropped from the file when the folder starts and whenever an append finds a quarter of
the lines expired: the file never holds more than a third more lines than entries still within
the window (plus the one being added). An identical file dropped again after its entry expired
is read again, with the same message ids as the first time (they come from the content hash),
so consumers that dedupe still see it once.

Lines are ``<sha256> <unix seconds>``; a line with a hash alone (written before retention
existed) is kept and stamped with the time of the first compaction that sees it. Every read and
write holds ``flock`` on ``.finished.lock``: two bridges on one folder never lose each other's
entries while one of them rewrites the file.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

_DAY = 86400.0
_TEMPORARY = re.compile(r"^\..+\.(\d+)\.tmp$")  # .<name>.<pid>.tmp, as written atomically


def remove_stale_temporaries(directory: Path) -> list[Path]:
    """Delete the temporary files (``.<name>.<pid>.tmp``) a killed writer left in ``directory``:
    those of a pid no longer alive, and of this process's own pid (after a restart in a
    container the bridge is often pid 1 again; a folder starting has no write of its own in
    flight). Another live process's are left alone. Returns the files deleted."""
    removed: list[Path] = []
    for path in directory.iterdir():
        match = _TEMPORARY.match(path.name)
        if match is None or not path.is_file():
            continue
        pid = int(match.group(1))
        if pid != os.getpid():
            try:
                os.kill(pid, 0)  # signal 0: only asks whether the process exists
                continue
            except ProcessLookupError:
                pass  # dead: its temporary file is stale
            except PermissionError:  # alive, another user's
                continue
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return removed


class Ledger:
    """The finished files' hashes in ``path``, each kept ``keep_days`` after it was added."""

    def __init__(
        self, path: Path, keep_days: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.path, self.keep_days, self.clock = path, keep_days, clock
        self._lock_path = path.with_name(path.name + ".lock")

    def __contains__(self, digest: object) -> bool:
        """Whether a file of this content finished within the retention window. An expired
        entry still in the file (compaction runs at start and on appends) counts as absent:
        a running folder forgets on time, not at its next compaction."""
        with self._locked():
            return any(seen == digest for seen, _ in self._live(list(self._entries())))

    def add(self, digest: str) -> None:
        """Record a finished file (flushed to disk before it returns); compacts the ledger
        when a quarter of its lines have expired."""
        with self._locked():
            entries = list(self._entries())
            live = self._live(entries)
            if (len(entries) - len(live)) * 4 >= len(entries) > 0:
                self._rewrite([*live, (digest, self.clock())])
                return
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(f"{digest} {self.clock():.0f}\n")
                handle.flush()
                os.fsync(handle.fileno())

    def compact(self) -> int:
        """Drop expired entries (stamping hash-only lines with now); returns the entries kept."""
        with self._locked():
            entries = list(self._entries())
            live = self._live(entries)
            stamped = [(digest, when if when else self.clock()) for digest, when in live]
            if len(live) != len(entries) or any(not when for _, when in live):
                self._rewrite(stamped)
            return len(stamped)

    def _live(self, entries: list[tuple[str, float]]) -> list[tuple[str, float]]:
        oldest = self.clock() - self.keep_days * _DAY
        return [(digest, when) for digest, when in entries if not when or when >= oldest]

    def _entries(self) -> Iterator[tuple[str, float]]:
        """(hash, finished at; 0.0 for a hash-only line) for every line, expired or not."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        for line in text.splitlines():
            digest, _, when = line.partition(" ")
            if digest:
                yield digest, float(when) if when else 0.0

    def _rewrite(self, entries: list[tuple[str, float]]) -> None:
        # a new file renamed over the old: a crash leaves the old ledger or the new, never half
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with temporary.open("w", encoding="utf-8") as handle:
            handle.writelines(f"{digest} {when:.0f}\n" for digest, when in entries)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(self.path)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        # a lock file of its own: the ledger itself is replaced by rename when compacted
        with self._lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
