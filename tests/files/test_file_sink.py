"""Drop folder out: events written to rolling files that appear only whole."""

from __future__ import annotations

import csv
import io
import json
import uuid

from interchange import Bus, Event, Settings
from interchange.config import FileSinkConnector
from interchange.connectors.folders import FileSink
from interchange.testing import wait_until


class Weighed(Event, name="files.out.weighed", version=1):
    parcel: str
    grams: int


def _finished(folder):
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def _sink(tmp_path, **options):
    bus = Bus(Settings(backends={"events": f"memory://{uuid.uuid4().hex}"}))
    sink = FileSink(
        FileSinkConnector(
            name="scale", path=tmp_path / "out", contract="files.out.weighed", **options
        )
    )
    sink.attach(bus)
    return bus, sink


def test_json_lines_roll_by_size_and_every_event_lands_once_in_order(tmp_path):
    bus, sink = _sink(tmp_path, roll_bytes=400)
    with bus:
        for n in range(50):
            bus.publish(Weighed(parcel=f"P{n}", grams=n))
        wait_until(
            lambda: (
                sum(len(p.read_text().splitlines()) for p in _finished(sink.folder))
                + (len(sink.current.read_text().splitlines()) if sink.current.exists() else 0)
                >= 50
            )
        )
    sink.close()
    files = _finished(sink.folder)
    assert len(files) > 3, "rolled by size"
    assert not sink.current.exists()
    records = [json.loads(line) for path in files for line in path.read_text().splitlines()]
    assert [r["grams"] for r in records] == list(range(50))
    assert len({r["message_id"] for r in records}) == 50
    assert all(path.name.startswith("scale-") and path.suffix == ".jsonl" for path in files)
    bus.close()


def test_csv_rolls_by_time_with_a_header_in_every_file(tmp_path):
    bus, sink = _sink(tmp_path, format="csv", roll_seconds=1)
    with bus:
        bus.publish(Weighed(parcel="P1", grams=1))
        wait_until(lambda: len(_finished(sink.folder)) == 1, 10)  # no close: the timer rolled
        bus.publish(Weighed(parcel="P2", grams=2))
        wait_until(lambda: len(_finished(sink.folder)) == 2, 10)
    sink.close()
    for path, parcel in zip(_finished(sink.folder), ["P1", "P2"], strict=True):
        header, row = list(csv.reader(io.StringIO(path.read_text())))
        assert header == ["message_id", "parcel", "grams"]
        assert row[1:] == [parcel, parcel[1:]]
    bus.close()


def test_a_working_file_left_by_a_crash_is_rolled_at_start(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / ".scale.current").write_text('{"message_id": "m1", "parcel": "P", "grams": 1}\n')
    sink = FileSink(FileSinkConnector(name="scale", path=folder, contract="files.out.weighed"))
    [rolled] = _finished(folder)
    assert json.loads(rolled.read_text())["message_id"] == "m1"
    sink.close()


def test_events_from_the_real_kafka_land_in_files_once_each(tmp_path, kafka_url):
    bus = Bus(
        Settings.without_environment(
            backends={"commands": "memory://", "events": kafka_url},
            channel_prefix=f"files-{uuid.uuid4().hex[:8]}.",
        )
    )
    sink = FileSink(
        FileSinkConnector(
            name="scale", path=tmp_path / "out", contract="files.out.weighed", roll_bytes=2000
        )
    )
    sink.attach(bus)
    with bus:
        bus.publish_many([Weighed(parcel=f"P{n}", grams=n) for n in range(200)])

        def lines() -> int:
            done = sum(len(p.read_text().splitlines()) for p in _finished(sink.folder))
            return done + (
                len(sink.current.read_text().splitlines()) if sink.current.exists() else 0
            )

        wait_until(lambda: lines() >= 200, 60)
    sink.close()
    records = [
        json.loads(line) for p in _finished(sink.folder) for line in p.read_text().splitlines()
    ]
    assert sorted(r["grams"] for r in records) == list(range(200))
    assert len({r["message_id"] for r in records}) == 200
    bus.close()
