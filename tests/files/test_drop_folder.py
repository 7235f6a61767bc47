"""Drop folder in: complete files only, each record sent once, rejects with line and reason,
every format legacy systems write, two readers on one folder, a crash mid-file."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from pydantic import BaseModel

from interchange import Bus, Command, Event, Settings
from interchange.adapters import BackendUnavailable
from interchange.config import DropFolderConnector, FixedColumn
from interchange.connectors.folders import DropFolder
from interchange.testing import wait_until


class Restock(Command, name="files.restock", version=1):
    sku: str
    quantity: int
    note: str = ""


class Shipped(Event, name="files.shipped", version=1):
    parcel: str
    depot: str


class Address(BaseModel):
    lines: list[str]
    city: str


class Pack(Command, name="files.pack", version=1):
    box: str
    items: list[str]
    to: Address


class Sent:
    """Wraps a Bus's batch verbs: which ids and contracts reached the Bus, in order."""

    def __init__(self, bus: Bus, fail_on: set[int] | None = None) -> None:
        self.ids: list[str] = []
        self.items: list = []
        self.calls = 0
        self.fail_on = fail_on or set()
        self._send_many, self._publish_many = bus.send_many, bus.publish_many
        self.lock = threading.Lock()
        bus.send_many = self.send_many  # type: ignore[method-assign]
        bus.publish_many = self.publish_many  # type: ignore[method-assign]

    def _record(self, items, ids) -> None:
        with self.lock:
            self.calls += 1
            if self.calls in self.fail_on:
                raise BackendUnavailable("every backend down")
            self.ids.extend(ids)
            self.items.extend(items)

    def send_many(self, items, *, ids=None, **options):
        self._record(items, ids)
        return self._send_many(items, ids=ids, **options)

    def publish_many(self, items, *, ids=None, keys=None, **options):
        self._record(items, ids)
        return self._publish_many(items, ids=ids, keys=keys, **options)


def _folder(tmp_path: Path, clock=time.time, **options) -> tuple[DropFolder, Sent, Bus]:
    bus = Bus(Settings(backends={"commands": f"memory://{uuid.uuid4().hex}"}))
    values = {
        "name": "shop",
        "path": tmp_path / "drop",
        "contract": "files.restock",
        "stable_checks": 1,
        **options,
    }
    sent = Sent(bus)
    return DropFolder(bus, DropFolderConnector(**values), clock=clock), sent, bus


def _rejects(folder: DropFolder, name: str) -> list[list[str]]:
    text = (folder.archive / f"{name}.rejects.csv").read_text(encoding="utf-8")
    return list(csv.reader(io.StringIO(text)))


def test_csv_with_bom_crlf_and_quoted_multiline_fields(tmp_path):
    folder, sent, _ = _folder(tmp_path)
    content = (
        "\ufeffsku,quantity,note\r\n"
        "A-1,5,plain\r\n"
        'B-2,7,"two\r\nlines, and a comma"\r\n'
        "C-3,many,bad quantity\r\n"
        "D-4,9,\r\n"
    )
    (folder.folder / "stock.csv").write_bytes(content.encode("utf-8"))
    assert folder.poll_once() == 3
    assert [(r.sku, r.quantity) for r in sent.items] == [("A-1", 5), ("B-2", 7), ("D-4", 9)]
    assert sent.items[1].note == "two\r\nlines, and a comma"
    assert (folder.archive / "stock.csv").exists()
    assert list(folder.processing.iterdir()) == []
    header, [line, reason, record] = _rejects(folder, "stock.csv")
    assert header == ["line", "reason", "record"]
    assert line == "5"
    assert reason.startswith("quantity: Input should be a valid integer")
    assert json.loads(record)["sku"] == "C-3"


def test_a_file_still_growing_is_not_read_until_it_holds_still(tmp_path):
    folder, sent, _ = _folder(tmp_path, stable_checks=2, poll_interval=0.2)
    dropped = folder.folder / "stock.csv"
    dropped.write_text("sku,quantity\nA-1,1\n")
    assert folder.poll_once() == 0  # first sight
    with dropped.open("a") as handle:
        handle.write("A-2,2\n")  # the copy goes on
    assert folder.poll_once() == 0  # changed since: wait again
    assert folder.poll_once() == 0  # a poll woken early (other files) does not count
    wait_until(lambda: folder.poll_once() == 2, 5)  # held still a poll interval later
    assert [r.sku for r in sent.items] == ["A-1", "A-2"]


def test_with_a_marker_a_file_is_read_only_once_its_done_file_exists(tmp_path):
    folder, sent, _ = _folder(tmp_path, complete="marker")
    assert sent.ids == []
    (folder.folder / "stock.csv").write_text("sku,quantity\nA-1,1\n")
    assert folder.poll_once() == 0
    (folder.folder / "stock.csv.done").touch()
    assert folder.poll_once() == 1
    assert not (folder.folder / "stock.csv.done").exists()


def test_fixed_width_in_cp1252(tmp_path):
    folder, sent, _ = _folder(
        tmp_path,
        format="fixed",
        encoding="cp1252",
        fixed=[
            FixedColumn(name="sku", start=1, width=6),
            FixedColumn(name="quantity", start=7, width=4),
            FixedColumn(name="note", start=11, width=10),
        ],
    )
    lines = ["A-1   0005Caf\u00e9      ", "B-2   0012na\u00efve     "]
    (folder.folder / "stock.txt").write_bytes("\r\n".join(lines).encode("cp1252"))
    assert folder.poll_once() == 2
    assert [(r.sku, r.quantity, r.note) for r in sent.items] == [
        ("A-1", 5, "Caf\u00e9"),
        ("B-2", 12, "na\u00efve"),
    ]


def test_json_lines_with_a_bad_line(tmp_path):
    folder, sent, _ = _folder(tmp_path, format="jsonl")
    (folder.folder / "stock.jsonl").write_text(
        '{"sku": "A-1", "quantity": 1}\n\nnot json\n{"sku": "B-2", "quantity": 2}\n'
    )
    assert folder.poll_once() == 2
    assert [r.sku for r in sent.items] == ["A-1", "B-2"]
    [_, [line, reason, _]] = _rejects(folder, "stock.jsonl")
    assert line == "3"
    assert reason.startswith("not JSON")


def test_xml_records_are_streamed_and_a_doctype_is_refused(tmp_path):
    folder, sent, _ = _folder(
        tmp_path, format="xml", record="item", key="parcel", contract="files.shipped"
    )
    rows = "".join(
        f"<item><parcel>P{n}</parcel><depot>D{n % 3}</depot></item>" for n in range(2000)
    )
    (folder.folder / "big.xml").write_text(f"<?xml version='1.0'?><items>{rows}</items>")
    assert folder.poll_once() == 2000
    assert sent.items[1999].parcel == "P1999"
    (folder.folder / "evil.xml").write_text(
        '<?xml version="1.0"?><!DOCTYPE items [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        "<items><item><parcel>&x;</parcel><depot>D</depot></item></items>"
    )
    assert folder.poll_once() == 0
    [_, [line, reason, _]] = _rejects(folder, "evil.xml")
    assert line == "0"  # the file as a whole
    assert reason.startswith("XML refused: DTDForbidden")
    assert (folder.archive / "evil.xml").exists()


def test_xml_records_fill_list_fields_from_one_element_or_many_nested_models_too(tmp_path):
    """A record with one <items> element read as a string where the contract wants a list
    (rejected), and repeated elements kept only the last: now both become the list."""
    folder, sent, _ = _folder(tmp_path, format="xml", record="pack", contract="files.pack")
    (folder.folder / "packs.xml").write_text(
        "<?xml version='1.0'?><packs>"
        "<pack><box>B1</box><items>tea</items>"
        "<to><lines>1 Main St</lines><city>Oslo</city></to></pack>"
        "<pack><box>B2</box><items>tea</items><items>cup</items>"
        "<to><lines>Flat 2</lines><lines>9 High St</lines><city>Bergen</city></to></pack>"
        "</packs>"
    )
    assert folder.poll_once() == 2
    assert not (folder.archive / "packs.xml.rejects.csv").exists()
    assert sent.items == [
        Pack(box="B1", items=["tea"], to=Address(lines=["1 Main St"], city="Oslo")),
        Pack(
            box="B2", items=["tea", "cup"], to=Address(lines=["Flat 2", "9 High St"], city="Bergen")
        ),
    ]


def test_an_identical_file_dropped_again_sends_nothing(tmp_path):
    folder, sent, _ = _folder(tmp_path)
    (folder.folder / "stock.csv").write_text("sku,quantity\nA-1,1\n")
    assert folder.poll_once() == 1
    (folder.folder / "again.csv").write_text("sku,quantity\nA-1,1\n")
    assert folder.poll_once() == 0
    assert len(sent.ids) == 1
    assert (folder.archive / "again.csv").exists()


def test_a_crash_mid_file_resumes_after_the_last_confirmed_batch(tmp_path):
    folder, sent, _ = _folder(tmp_path, batch=2)
    sent.fail_on = {2}  # the second batch meets every backend down
    lines = "".join(f"S-{n},{n}\n" for n in range(1, 6))
    (folder.folder / "stock.csv").write_text("sku,quantity\n" + lines)
    with pytest.raises(BackendUnavailable):
        folder.poll_once()
    assert (folder.processing / "stock.csv").exists()
    restarted = DropFolder(folder.bus, folder.config)  # a new process finds it in processing/
    assert restarted.poll_once() == 3
    assert [r.sku for r in sent.items] == [f"S-{n}" for n in range(1, 6)]  # none twice
    assert len(set(sent.ids)) == 5
    assert sent.ids[0].endswith("-1")


def test_two_readers_on_one_folder_read_each_file_once(tmp_path):
    first, sent, bus = _folder(tmp_path)
    second = DropFolder(bus, first.config)
    for n in range(20):
        (first.folder / f"f{n:02}.csv").write_text(f"sku,quantity\nF-{n},{n}\n")
    threads = [threading.Thread(target=reader.poll_once) for reader in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(r.sku for r in sent.items) == sorted(f"F-{n}" for n in range(20))
    assert len(list(first.archive.glob("f*.csv"))) == 20


def test_a_started_folder_is_woken_by_a_drop_before_its_poll_interval(tmp_path):
    folder, sent, _ = _folder(tmp_path, complete="marker", poll_interval=30)
    folder.start()
    try:
        wait_until(lambda: folder._thread is not None, 5)
        (folder.folder / "stock.csv").write_text("sku,quantity\nA-1,1\n")
        (folder.folder / "stock.csv.done").touch()
        wait_until(lambda: len(sent.ids) == 1, 10)  # watchfiles woke it, not the 30 s poll
    finally:
        folder.stop()


class Clock:
    """Wall-clock time the test moves on: days pass in a test of a second."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_the_ledger_holds_about_one_retention_window_over_many_files(tmp_path):
    clock = Clock()
    folder, sent, _ = _folder(tmp_path, clock, ledger_days=1)
    ledger = folder.archive / ".finished"
    longest = 0
    for n in range(200):  # a file an hour for 200 hours: about 24 within one day
        clock.now += 3600
        (folder.folder / f"f{n:03}.csv").write_text(f"sku,quantity\nF-{n},{n}\n")
        assert folder.poll_once() == 1
        longest = max(longest, len(ledger.read_text().splitlines()))
    assert len(sent.ids) == 200
    assert longest <= 34, f"the ledger reached {longest} lines for 25 files within a day"
    assert len(list(folder.archive.glob("f*.csv"))) == 200  # retention forgets, never deletes


def test_a_file_finished_within_the_window_is_not_read_again_after_a_restart(tmp_path):
    clock = Clock()
    folder, sent, bus = _folder(tmp_path, clock, ledger_days=1)
    (folder.folder / "stock.csv").write_text("sku,quantity\nA-1,1\n")
    assert folder.poll_once() == 1
    clock.now += 23 * 3600  # within the day: a restart still knows the content
    restarted = DropFolder(bus, folder.config, clock=clock)
    (folder.folder / "again.csv").write_text("sku,quantity\nA-1,1\n")
    assert restarted.poll_once() == 0
    assert len(sent.ids) == 1
    clock.now += 2 * 3600  # past the day: forgotten, read again with the very same id
    restarted = DropFolder(bus, folder.config, clock=clock)
    assert len((folder.archive / ".finished").read_text().splitlines()) == 0
    (folder.folder / "third.csv").write_text("sku,quantity\nA-1,1\n")
    assert restarted.poll_once() == 1
    assert sent.ids == [sent.ids[0]] * 2


def test_a_running_folder_reads_an_identical_file_again_once_its_entry_expired(tmp_path):
    clock = Clock()
    folder, sent, _ = _folder(tmp_path, clock, ledger_days=1)
    (folder.folder / "stock.csv").write_text("sku,quantity\nA-1,1\n")
    assert folder.poll_once() == 1
    clock.now += 25 * 3600  # past the day, and no restart, no append to compact the ledger
    (folder.folder / "again.csv").write_text("sku,quantity\nA-1,1\n")
    assert folder.poll_once() == 1, "an expired entry blocked the identical file"
    assert sent.ids == [sent.ids[0]] * 2  # the same id as the first time: consumers dedupe
    (folder.folder / "third.csv").write_text("sku,quantity\nA-1,1\n")
    assert folder.poll_once() == 0  # its new entry is within the window


def test_a_ledger_written_before_retention_is_kept_and_stamped_at_start(tmp_path):
    clock = Clock()
    first, sent, bus = _folder(tmp_path, clock, ledger_days=1)
    (first.folder / "stock.csv").write_text("sku,quantity\nA-1,1\n")
    assert first.poll_once() == 1
    ledger = first.archive / ".finished"
    ledger.write_text(ledger.read_text().split()[0] + "\n")  # the old format: the hash alone
    clock.now += 5 * 86400
    restarted = DropFolder(bus, first.config, clock=clock)
    assert ledger.read_text().split()[1] == f"{clock.now:.0f}"  # its window starts now
    (first.folder / "again.csv").write_text("sku,quantity\nA-1,1\n")
    assert restarted.poll_once() == 0
    assert len(sent.ids) == 1


def test_temporary_files_of_a_killed_writer_are_removed_at_start(tmp_path):
    folder, _, bus = _folder(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a writer killed mid-write: its pid is gone, its temporary file stays
    stale = [
        folder.processing / f".h.csv.progress.{dead.pid}.tmp",
        folder.archive / f".finished.{dead.pid}.tmp",
    ]
    live = folder.processing / f".k.csv.progress.{os.getppid()}.tmp"  # a live writer's
    for path in [*stale, live]:
        path.write_text("{}")
    DropFolder(bus, folder.config)
    assert [path.exists() for path in stale] == [False, False]
    assert live.exists(), "a live process's temporary file was removed"
