"""Streaming readers: a stored upload file → batches of columns, never the whole file in memory.

Each reader yields `RawBatch`es of at most a few MB: the columns it found (Arrow arrays), the
line (or row) number of every row, and how far into the stored file it has read, for progress.
Text formats may be gzip-compressed; the magic bytes decide, not the file name.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import wraps
from typing import IO, Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from django.conf import settings

from .errors import RowError

KNOWN_COLUMNS = ("run_id", "run_name", "key", "step", "value", "timestamp")
_GZIP_MAGIC = b"\x1f\x8b"
# About 20,000 CSV rows per batch: big enough for COPY to pay off, small enough for memory.
CSV_BLOCK_BYTES = 1024 * 1024
JSONL_BATCH_ROWS = 50_000
PARQUET_BATCH_ROWS = 100_000


@dataclass(frozen=True)
class RawBatch:
    columns: dict[str, pa.Array]
    lines: np.ndarray  # the line (or row) number of each row, for errors
    bytes_read: int  # of the stored (possibly compressed) file
    unit: str = "line"  # what errors call a row's number: a line, a Parquet row, an event record


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


class _ExpansionLimit(io.RawIOBase):
    """A gzip stream that fails the file once it has given more than `limit` decompressed bytes:
    MAX_UPLOAD_BYTES bounds only the stored (compressed) file, and a few kilobytes of gzip can
    hold gigabytes of repeated rows, hours of a worker's time."""

    def __init__(self, stream: io.BufferedIOBase, limit: int) -> None:
        self.stream = stream
        self.limit = limit
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        read = self.stream.readinto(buffer)
        self.count += read
        if self.count > self.limit:
            raise RowError(
                f"expands to more than {self.limit:,} bytes when decompressed, the limit for a "
                "compressed upload (MAX_UPLOAD_EXPANDED_BYTES); split it into smaller files",
                location="file",
                column="",
            )
        return read


def _text_stream(raw: IO[bytes]) -> tuple[IO[bytes], _CountingReader]:
    counter = _CountingReader(raw)
    buffered = io.BufferedReader(counter, buffer_size=1024 * 1024)
    if buffered.peek(2)[:2] == _GZIP_MAGIC:
        gunzipped = gzip.GzipFile(fileobj=buffered, mode="rb")
        limit = settings.MAX_UPLOAD_EXPANDED_BYTES
        if not limit:  # 0: no limit
            return gunzipped, counter  # type: ignore[return-value]
        return io.BufferedReader(_ExpansionLimit(gunzipped, limit), buffer_size=1024 * 1024), counter
    return buffered, counter


def _why_unreadable(error: Exception) -> str:
    if isinstance(error, EOFError):
        return "its gzip data ends early: the file was cut short, or is not gzip"
    if isinstance(error, (gzip.BadGzipFile, zlib.error)):
        return f"it starts like gzip but is not valid gzip ({error})"
    if isinstance(error, csv.Error) and "new-line character" in str(error):
        return "its lines end in a bare carriage return (\\r); save it with \\n or \\r\\n line endings"
    return f"it is not text this format can read ({error})"


def names_unreadable_files(read: Callable[[Any], Iterator[RawBatch]]) -> Callable[[Any], Iterator[RawBatch]]:
    """A text reader whose file cannot be decoded or split into lines (cut-off gzip, bare \\r line
    endings, binary bytes) fails as a bad file, naming why, like any bad row: the upload then ends
    `failed` instead of crashing its worker, which the stalled-upload sweep would retry forever."""

    @wraps(read)
    def reading(open_file: Any) -> Iterator[RawBatch]:
        try:
            yield from read(open_file)
        except (csv.Error, EOFError, gzip.BadGzipFile, zlib.error) as error:
            raise RowError(f"cannot be read: {_why_unreadable(error)}", location="file", column="") from None

    return reading


def check_header(names: list[str], *, unit: str = "line 1", holder: str = "header") -> None:
    """Unknown or repeated columns are refused before any row is read; `holder` says where the
    names were (a CSV's header, a JSON object, a Parquet schema)."""
    seen: set[str] = set()
    for name in names:
        if name not in KNOWN_COLUMNS:
            raise RowError(
                f"is not a known column; expected {', '.join(KNOWN_COLUMNS)}", location=unit, column=name
            )
        if name in seen:
            raise RowError(f"appears twice in the {holder}", location=unit, column=name)
        seen.add(name)
    for name in ("key", "step", "value"):
        if name not in seen:
            raise RowError(f"is missing from the {holder}", location=unit, column=name)


def _first_irregular_row(block: bytes, width: int) -> tuple[int, str]:
    """(line offset in `block` of the first row Arrow could not take as one line, why): a row of
    the wrong field count, or a quoted value that runs on to the next line; failing both, a
    carriage return inside a line, which Arrow and the csv module end a row at and \n counting
    does not."""
    text = io.StringIO(block.decode("utf-8", errors="replace"), newline="")
    reader = csv.reader(text)
    offset = 0
    for row in reader:
        if not row:  # a blank line: skipped later, never the error
            offset = reader.line_num
            continue
        if len(row) != width:
            return offset, f"has {len(row)} fields; the header has {width}"
        if reader.line_num != offset + 1:
            return offset, (
                "has a quoted value that runs on to the next line; a value may not hold a line break"
            )
        offset = reader.line_num
    bare = block.find(b"\r")
    while bare >= 0 and block[bare + 1 : bare + 2] == b"\n":
        bare = block.find(b"\r", bare + 1)
    return max(block.count(b"\n", 0, max(bare, 0)), 0), (
        "has a carriage return (\\r) inside the line; end lines with \\n or \\r\\n"
    )


NOT_UTF8 = "is not UTF-8 text; save the file as UTF-8"


def _csv_header(stream: IO[bytes]) -> list[str]:
    raw = stream.readline()
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in raw:
        raise RowError(f"{NOT_UTF8} (it looks like UTF-16)", location="line 1", column="")
    try:
        line = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RowError(NOT_UTF8, location="line 1", column="") from None
    names = [name.strip() for name in next(csv.reader([line]), [])]
    check_header(names)
    return names


def _parse_csv_block(block: bytes, names: list[str]) -> tuple[pa.Table, tuple[int, str] | None]:
    """Arrow parses one block of whole lines; also where and why a row is not one line of the
    header's width, if one is not (so every row keeps its line number)."""
    irregular = False

    def on_invalid_row(row: Any) -> str:
        nonlocal irregular
        irregular = True
        return "skip"

    table = pa_csv.read_csv(
        io.BytesIO(block),
        read_options=pa_csv.ReadOptions(column_names=names, use_threads=False, block_size=len(block) + 1),
        parse_options=pa_csv.ParseOptions(invalid_row_handler=on_invalid_row, ignore_empty_lines=False),
        convert_options=pa_csv.ConvertOptions(
            column_types={name: pa.string() for name in names}, strings_can_be_null=False
        ),
    )
    lines = block.count(b"\n") + (not block.endswith(b"\n"))
    if irregular or table.num_rows != lines:
        return table, _first_irregular_row(block, len(names))
    return table, None


def _first_undecodable_line(block: bytes) -> int | None:
    """The offset in `block` of its first line that is not UTF-8, None if every line is."""
    for offset, line in enumerate(block.split(b"\n")):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            return offset
    return None


def _whole_lines(stream: IO[bytes]) -> Iterator[bytes]:
    """Blocks of about CSV_BLOCK_BYTES that end at a line break (the last one may not)."""
    tail = b""
    while block := stream.read(CSV_BLOCK_BYTES):
        data = tail + block
        cut = data.rfind(b"\n") + 1
        data, tail = data[:cut], data[cut:]
        if data:
            yield data
    if tail:
        yield tail


@names_unreadable_files
def read_csv(open_file: Any) -> Iterator[RawBatch]:
    """CSV with a header, cut into blocks of whole lines that Arrow parses one at a time.

    One block at a time (not Arrow's streaming reader, which reads dozens of blocks ahead) keeps
    memory flat. Every cell is read as text, so the validator can name the exact cell that is not
    a number; rows keep their line numbers, and blank lines are skipped. A quoted value may not
    span lines (no field of this format needs one), so a row is always one line.
    """
    stream, counter = _text_stream(open_file())
    names = _csv_header(stream)
    first_line = 2
    for block in _whole_lines(stream):
        try:
            table, irregular = _parse_csv_block(block, names)
        except (pa.ArrowInvalid, UnicodeDecodeError) as error:
            undecodable = _first_undecodable_line(block)
            if undecodable is not None:  # Arrow's own words name its internals, not the line
                raise RowError(NOT_UTF8, location=f"line {first_line + undecodable}", column="") from None
            raise RowError(
                f"cannot be read: {error}"[:300], location=f"line {first_line}", column=""
            ) from None
        if irregular is not None:
            # The rows before it are checked first: an earlier bad cell is reported instead.
            offset, why = irregular
            if offset:
                yield _csv_batch(table.slice(0, offset), names, first_line, counter.count)
            raise RowError(why, location=f"line {first_line + offset}", column="")
        yield _csv_batch(table, names, first_line, counter.count)
        first_line += table.num_rows


def _csv_batch(table: pa.Table, names: list[str], first_line: int, position: int) -> RawBatch:
    """The block's rows with their line numbers; a blank line (every cell empty) is left out, as
    JSON Lines leaves one out, so a file that ends in an empty line is not refused for it."""
    lines = np.arange(first_line, first_line + table.num_rows, dtype=np.int64)
    blank = None
    for column in table.columns:
        empty = pc.or_kleene(pc.is_null(column), pc.equal(column, ""))
        blank = empty if blank is None else pc.and_kleene(blank, empty)
        if not pc.any(blank).as_py():
            break  # the usual block: no row is blank, and the first column already says so
    else:
        if blank is not None:
            keep = pc.invert(blank)
            table, lines = table.filter(keep), lines[keep.to_numpy(zero_copy_only=False)]
    return RawBatch({name: table.column(i).combine_chunks() for i, name in enumerate(names)}, lines, position)


@names_unreadable_files
def read_jsonl(open_file: Any) -> Iterator[RawBatch]:
    """One JSON object per line with the CSV's fields; blank lines are skipped, and a UTF-8 byte
    order mark before the first line too (as the CSV reader does)."""
    stream, counter = _text_stream(open_file())
    columns: dict[str, list[Any]] = {}
    lines: list[int] = []
    for number, raw_line in enumerate(stream, start=1):
        if number == 1:
            raw_line = raw_line.removeprefix(codecs.BOM_UTF8)
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
        record = _python_json(raw_line)
        if record is None:
            raise RowError(f"is not valid JSON: {error}", location=f"line {number}", column="") from None
    if not isinstance(record, dict):
        raise RowError("must be a JSON object", location=f"line {number}", column="")
    if not columns:
        check_header(list(record), unit=f"line {number}", holder="object")
    elif record.keys() != columns.keys():
        missing = [name for name in columns if name not in record]
        extra = [name for name in record if name not in columns]
        raise RowError(
            "is missing" if missing else "is not in the first line's fields",
            location=f"line {number}",
            column=(missing or extra)[0],
        )
    return record


def _python_json(raw_line: bytes) -> Any:
    """A line as Python's json module writes it: `json.dumps` of a metric writes `NaN` and
    `Infinity`, which JSON has no spelling for; a number past a double's range (1e999) reads as
    Infinity, as log-batch reads it. UTF-8 only, as every line. None if it is not that."""
    try:
        record = json.loads(raw_line.decode("utf-8"))
        json.dumps(record, ensure_ascii=False).encode()  # a lone surrogate (\ud800) is no text
    except (ValueError, RecursionError):  # Unicode{De,En}codeError are ValueErrors
        return None
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
    check_header(names, unit="schema", holder="schema")
    first_row = 1
    total = parquet.metadata.num_rows or 1
    size = raw.seek(0, io.SEEK_END)
    for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS):
        lines = np.arange(first_row, first_row + batch.num_rows, dtype=np.int64)
        first_row += batch.num_rows
        position = size * (first_row - 1) // total
        columns = {name: _plain_text(batch.column(i)) for i, name in enumerate(names)}
        yield RawBatch(columns, lines, position, unit="row")


def _plain_text(array: pa.Array) -> pa.Array:
    """Text as pandas and pyarrow also write it (`large_string`, or a dictionary of strings, as a
    category column becomes) read as plain strings; every other column as it is."""
    kind = array.type
    if pa.types.is_dictionary(kind) and (
        pa.types.is_string(kind.value_type) or pa.types.is_large_string(kind.value_type)
    ):
        array = array.dictionary_decode()
        kind = array.type
    if pa.types.is_large_string(kind):
        return array.cast(pa.string())
    return array


# TFRecord framing: a little-endian u64 length, its masked CRC, the record, the record's CRC.
_RECORD_HEADER = struct.Struct("<Q4x")
_DT_FLOAT, _DT_DOUBLE = 1, 2
TENSORBOARD_BATCH_EVENTS = 50_000


def _scalar(value: Any) -> float | None:
    """A summary value's scalar: TF1's simple_value, or TF2's one-element float tensor."""
    kind = value.WhichOneof("value")
    if kind == "simple_value":
        return float(value.simple_value)
    if kind == "tensor" and value.tensor.dtype in (_DT_FLOAT, _DT_DOUBLE):
        tensor = value.tensor
        if tensor.float_val:
            return float(tensor.float_val[0])
        if tensor.double_val:
            return float(tensor.double_val[0])
        if tensor.tensor_content:
            return float(
                np.frombuffer(tensor.tensor_content, "<f4" if tensor.dtype == _DT_FLOAT else "<f8")[0]
            )
    return None


def read_tensorboard(open_file: Any) -> Iterator[RawBatch]:
    """A TensorBoard event file's scalars: tag → key, step, value, wall time → timestamp (ms).

    Events are parsed with tensorboardX's copy of TensorBoard's protobuf messages; other
    summaries (images, histograms, text) are skipped. A record cut short names its event.
    """
    from tensorboardX.proto import event_pb2

    counter = _CountingReader(open_file())
    stream = io.BufferedReader(counter, buffer_size=1024 * 1024)
    columns: dict[str, list[Any]] = {"key": [], "step": [], "value": [], "timestamp": []}
    lines: list[int] = []
    number = 0
    while header := stream.read(_RECORD_HEADER.size):
        number += 1
        if len(header) < _RECORD_HEADER.size:
            raise RowError(
                "is cut short (an incomplete record header)", location=f"record {number}", column=""
            )
        (length,) = _RECORD_HEADER.unpack(header)
        data = stream.read(length)
        if len(data) < length or len(stream.read(4)) < 4:
            raise RowError("is cut short (an incomplete record)", location=f"record {number}", column="")
        event = event_pb2.Event()
        try:
            event.ParseFromString(data)
        except Exception:  # protobuf's DecodeError
            raise RowError("is not a TensorBoard event", location=f"record {number}", column="") from None
        for value in event.summary.value:
            scalar = _scalar(value)
            if scalar is None:
                continue
            columns["key"].append(value.tag)
            columns["step"].append(event.step)
            columns["value"].append(scalar)
            columns["timestamp"].append(int(event.wall_time * 1000))
            lines.append(number)
        if len(lines) >= TENSORBOARD_BATCH_EVENTS:
            yield _tensorboard_batch(columns, lines, counter.count)
            columns = {name: [] for name in columns}
            lines = []
    if lines:
        yield _tensorboard_batch(columns, lines, counter.count)


def _tensorboard_batch(columns: dict[str, list[Any]], lines: list[int], position: int) -> RawBatch:
    arrays = {
        "key": pa.array(columns["key"], type=pa.string()),
        "step": pa.array(columns["step"], type=pa.int64()),
        "value": pa.array(columns["value"], type=pa.float64()),
        "timestamp": pa.array(columns["timestamp"], type=pa.int64()),
    }
    return RawBatch(arrays, np.asarray(lines, dtype=np.int64), position, unit="record")
