"""Files dropped by a legacy system, read row by row into contracts.

A row that cannot become a contract is not skipped silently: it comes back as a RejectedRow
with its line number and the reason, for the caller to report or park.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from pydantic import ValidationError

from interchange.contracts import Contract

C = TypeVar("C", bound=Contract)


@dataclass(frozen=True)
class FileRow(Generic[C]):
    line: int
    contract: C


@dataclass(frozen=True)
class RejectedRow:
    line: int
    raw: dict[str, str]
    reason: str


def read_csv_commands(
    path: Path, to_contract: Callable[[dict[str, str]], C]
) -> Iterator[FileRow[C] | RejectedRow]:
    """Yield each data row of a CSV file (with a header line) as a contract or a rejection."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        for row in reader:
            line = reader.line_num
            try:
                yield FileRow(line, to_contract(row))
            except ValidationError as error:
                problems = error.errors(include_input=False, include_url=False)
                reason = "; ".join(
                    f"{'.'.join(str(p) for p in problem['loc'])}: {problem['msg']}"
                    for problem in problems
                )
                yield RejectedRow(line, dict(row), reason)
            except (KeyError, ValueError) as error:
                yield RejectedRow(line, dict(row), f"{type(error).__name__}: {error}")
