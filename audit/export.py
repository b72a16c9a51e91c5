"""The audit export as streamed text: CSV or JSON lines, one event per line, chain order."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator

from .chain import EXPORT_COLUMNS, ChainEvent, csv_row, export_record
from .hashing import canonical_json


class _Line:
    """A file-like sink for csv.writer that hands back each written line instead of storing it."""

    def write(self, text: str) -> str:
        return text


def csv_lines(events: Iterable[ChainEvent]) -> Iterator[str]:
    writer = csv.writer(_Line())
    yield writer.writerow(EXPORT_COLUMNS)
    for event in events:
        yield writer.writerow(csv_row(event))


def jsonl_lines(events: Iterable[ChainEvent]) -> Iterator[str]:
    for event in events:
        yield canonical_json(export_record(event)) + "\n"
