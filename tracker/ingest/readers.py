"""Streaming readers: a stored upload file → batches of columns, never the whole file in memory.

Each reader yields `RawBatch`es of at most a few MB: the columns it found (Arrow arrays), the
line (or row) number of every row, and how far into the stored file it has read, for progress.
Text formats may be gzip-compressed; the magic bytes decide, not the file name.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.csv as pa_csv

from .errors import RowError

KNOWN_COLUMNS = ("run_id", "run_name", "key", "step", "value", "timestamp")
_GZIP_MAGIC = b"\x1f\x8b"
# About 100,000 CSV rows per batch: big enough for COPY to pay off, small enough for memory.
CSV_BLOCK_BYTES = 4 * 1024 * 1024
JSONL_BATCH_ROWS = 50_000
PARQUET_BATCH_ROWS = 100_000


@dataclass(frozen=True)
class RawBatch:
    columns: dict[str, pa.Array]
    lines: np.ndarray  # the line (or row) number of each row, for errors
    bytes_read: int  # of the stored (possibly compressed) file


class _CountingReader(io.RawIOBase):
    """Counts the bytes read from the stored file, so progress is in the file's own bytes."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        buffer[: len(data)] = data
        self.count += len(data)
        return len(data)


def _text_stream(raw: IO[bytes]) -> tuple[IO[bytes], _CountingReader]:
    counter = _CountingReader(raw)
    buffered = io.BufferedReader(counter, buffer_size=1024 * 1024)
    if buffered.peek(2)[:2] == _GZIP_MAGIC:
        return gzip.GzipFile(fileobj=buffered, mode="rb"), counter  # type: ignore[return-value]
    return buffered, counter


def check_header(names: list[str], *, unit: str = "line 1") -> None:
    """Unknown or repeated columns are refused before any row is read."""
    seen: set[str] = set()
    for name in names:
        if name not in KNOWN_COLUMNS:
            raise RowError(
                f"is not a known column; expected {', '.join(KNOWN_COLUMNS)}", location=unit, column=name
            )
        if name in seen:
            raise RowError("appears twice in the header", location=unit, column=name)
        seen.add(name)
    for name in ("key", "step", "value"):
        if name not in seen:
            raise RowError("is missing from the header", location=unit, column=name)


def _first_bad_csv_line(stream: IO[bytes], width: int) -> tuple[int, int]:
    """Slow path, only after the fast reader met a row of the wrong width: which line it is."""
    text = io.TextIOWrapper(stream, encoding="utf-8", errors="replace", newline="")
    for number, row in enumerate(csv.reader(text), start=1):
        if row and len(row) != width:
            return number, len(row)
    return 0, 0


def read_csv(open_file: Any) -> Iterator[RawBatch]:
    """CSV with a header, parsed by Arrow's streaming reader block by block.

    Every cell is read as text, so the validator can name the exact cell that is not a number;
    an empty line is kept (as empty cells) so that row numbers stay line numbers.
    """
    stream, counter = _text_stream(open_file())
    bad_rows: list[int] = []

    def on_invalid_row(row: Any) -> str:
        bad_rows.append(row.actual_columns)
        return "skip"

    try:
        reader = pa_csv.open_csv(
            stream,
            read_options=pa_csv.ReadOptions(block_size=CSV_BLOCK_BYTES),
            parse_options=pa_csv.ParseOptions(invalid_row_handler=on_invalid_row, ignore_empty_lines=False),
            convert_options=pa_csv.ConvertOptions(
                column_types={name: pa.string() for name in KNOWN_COLUMNS}, strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as error:
        raise RowError(f"is not a CSV header: {error}"[:300], location="line 1", column="") from None
    names = reader.schema.names
    check_header(names)
    first_line = 2
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            break
        except pa.ArrowInvalid as error:
            raise RowError(
                f"cannot be read: {error}"[:300], location=f"after line {first_line - 1}", column=""
            ) from None
        if bad_rows:
            # Arrow reports neither the line nor the position of a row of the wrong width, and may
            # have read ahead: find it by reading the file again (an error path, so it may be slow).
            line, width = _first_bad_csv_line(_text_stream(open_file())[0], len(names))
            rows_before_it = line - first_line
            # The skipped row is not in the batch: it came right after the batch's rows before it.
            if rows_before_it <= batch.num_rows:
                if rows_before_it > 0:
                    yield _csv_batch(batch.slice(0, rows_before_it), names, first_line, counter.count)
                raise RowError(
                    f"has {width} fields; the header has {len(names)}", location=f"line {line}", column=""
                )
        yield _csv_batch(batch, names, first_line, counter.count)
        first_line += batch.num_rows


def _csv_batch(batch: pa.RecordBatch, names: list[str], first_line: int, position: int) -> RawBatch:
    lines = np.arange(first_line, first_line + batch.num_rows, dtype=np.int64)
    return RawBatch({name: batch.column(i) for i, name in enumerate(names)}, lines, position)


def read_jsonl(open_file: Any) -> Iterator[RawBatch]:
    """One JSON object per line with the CSV's fields; blank lines are skipped."""
    stream, counter = _text_stream(open_file())
    columns: dict[str, list[Any]] = {}
    lines: list[int] = []
    for number, raw_line in enumerate(stream, start=1):
        if not raw_line.strip():
            continue
        try:
            record = _json_record(raw_line, number, columns)
        except RowError:
            if lines:  # the lines before it are checked first: the earliest error wins
                yield _jsonl_batch(columns, lines, counter.count)
            raise
        if not columns:
            columns = {name: [] for name in record}
        for name, values in columns.items():
            values.append(_json_cell(record[name]))
        lines.append(number)
        if len(lines) >= JSONL_BATCH_ROWS:
            yield _jsonl_batch(columns, lines, counter.count)
            columns = {name: [] for name in columns}
            lines = []
    if lines:
        yield _jsonl_batch(columns, lines, counter.count)


def _json_record(raw_line: bytes, number: int, columns: dict[str, list[Any]]) -> dict[str, Any]:
    try:
        record = orjson.loads(raw_line)
    except orjson.JSONDecodeError as error:
        raise RowError(f"is not valid JSON: {error}", location=f"line {number}", column="") from None
    if not isinstance(record, dict):
        raise RowError("must be a JSON object", location=f"line {number}", column="")
    if not columns:
        check_header(list(record), unit=f"line {number}")
    elif record.keys() != columns.keys():
        missing = [name for name in columns if name not in record]
        extra = [name for name in record if name not in columns]
        raise RowError(
            "is missing" if missing else "is not in the first line's fields",
            location=f"line {number}",
            column=(missing or extra)[0],
        )
    return record


def _json_cell(value: Any) -> Any:
    # A boolean is no number; as text it fails validation with a message that shows it.
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _jsonl_batch(columns: dict[str, list[Any]], lines: list[int], position: int) -> RawBatch:
    arrays = {}
    for name, values in columns.items():
        try:
            arrays[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            # Mixed types (a number here, "NaN" there): as text, validated cell by cell.
            arrays[name] = pa.array([None if v is None else str(v) for v in values], type=pa.string())
    return RawBatch(arrays, np.asarray(lines, dtype=np.int64), position)


def read_parquet(open_file: Any) -> Iterator[RawBatch]:
    """Parquet, read one batch of a row group at a time; errors name the row (1-based)."""
    import pyarrow.parquet as pq

    raw = open_file()
    try:
        parquet = pq.ParquetFile(raw)
    except (pa.ArrowInvalid, OSError) as error:
        raise RowError(f"is not a Parquet file: {error}"[:300], location="file", column="") from None
    names = parquet.schema_arrow.names
    check_header(names, unit="schema")
    first_row = 1
    total = parquet.metadata.num_rows or 1
    size = raw.seek(0, io.SEEK_END)
    for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS):
        lines = np.arange(first_row, first_row + batch.num_rows, dtype=np.int64)
        first_row += batch.num_rows
        position = size * (first_row - 1) // total
        yield RawBatch({name: batch.column(i) for i, name in enumerate(names)}, lines, position)
