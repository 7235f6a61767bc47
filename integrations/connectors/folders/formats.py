"""Record readers for the file formats legacy systems drop: each yields ``(line, record)`` with
the 1-based line a record starts on, so a rejected record can be found in the file.

- CSV: a header line, then records; a UTF-8 BOM, CRLF line ends and quoted fields spanning
  lines are read as the csv module reads them.
- JSON Lines: one JSON object a line; blank lines are skipped.
- Fixed width: columns at declared positions, in a declared encoding (legacy files are often
  cp1252); values are stripped.
- XML: every ``record`` element (numbered by its ordinal, not its line), streamed
  (``iterparse``: memory stays flat whatever the file size) through defusedxml, so a DOCTYPE
  or an entity is refused, never resolved; a record's child elements become its fields (nested
  ones objects, repeated ones lists: ``xml_fields``), its attributes too.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from interchange.config import FixedColumn
from interchange.connectors.xml_fields import element_data

Record = dict[str, Any]


class BadFile(ValueError):
    """The file as a whole cannot be read (refused XML, undecodable bytes): no record of it
    can be trusted, so it is not sent at all."""


def read_csv(path: Path, encoding: str) -> Iterator[tuple[int, Record]]:
    codec = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    with path.open(newline="", encoding=codec) as handle:
        reader = csv.DictReader(handle)
        start = 2  # the line after the header
        for row in reader:
            yield start, dict(row)
            start = reader.line_num + 1


def read_jsonl(path: Path, encoding: str) -> Iterator[tuple[int, Record]]:
    with path.open(encoding=encoding) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as error:
                yield number, {"__error__": f"not JSON: {error}"}
                continue
            if not isinstance(value, dict):
                yield number, {"__error__": f"not a JSON object: {line.strip()[:80]}"}
                continue
            yield number, value


def read_fixed(
    path: Path, encoding: str, columns: list[FixedColumn]
) -> Iterator[tuple[int, Record]]:
    with path.open(encoding=encoding, newline="") as handle:
        for number, line in enumerate(handle, start=1):
            text = line.rstrip("\r\n")
            if not text.strip():
                continue
            yield (
                number,
                {
                    column.name: text[column.start - 1 : column.start - 1 + column.width].strip()
                    for column in columns
                },
            )


def require_xml() -> None:
    """XML needs the files extra; CSV, JSON Lines and fixed width need nothing beyond the core."""
    try:
        import defusedxml  # noqa: F401
    except ImportError as missing:
        raise ImportError(
            f"XML drop folders need defusedxml ({missing}): pip install 'interchange-bus[files]'"
        ) from missing


def read_xml(path: Path, record: str) -> Iterator[tuple[int, Record]]:
    require_xml()
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import iterparse

    try:
        events = iterparse(str(path), events=("start", "end"), forbid_dtd=True)
        depth_of_record = None
        depth = ordinal = 0
        for kind, element in events:
            if kind == "start":
                depth += 1
                if element.tag == record and depth_of_record is None:
                    depth_of_record = depth
                continue
            if element.tag == record and depth == depth_of_record:
                data = element_data(element)  # repeated children a list, nested an object
                fields = data if isinstance(data, dict) else {}
                fields.update(element.attrib)
                ordinal += 1
                yield ordinal, fields  # ElementTree keeps no line numbers: the record's ordinal
                element.clear()  # streamed: what was read is let go
                depth_of_record = None
            depth -= 1
    except DefusedXmlException as error:
        raise BadFile(f"XML refused: {type(error).__name__}: {error}") from None
    except SyntaxError as error:  # ElementTree.ParseError
        raise BadFile(f"not well-formed XML: {error}") from None


def records(
    path: Path,
    kind: str,
    *,
    encoding: str = "utf-8",
    columns: list[FixedColumn] | None = None,
    record: str = "record",
) -> Iterator[tuple[int, Record]]:
    """The records of a dropped file, by format."""
    try:
        if kind == "csv":
            yield from read_csv(path, encoding)
        elif kind == "jsonl":
            yield from read_jsonl(path, encoding)
        elif kind == "fixed":
            yield from read_fixed(path, encoding, columns or [])
        elif kind == "xml":
            yield from read_xml(path, record)
        else:
            raise BadFile(f"unknown format {kind!r}")
    except UnicodeDecodeError as error:
        raise BadFile(f"not {encoding}: {error}") from None
