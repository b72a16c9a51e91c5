"""Validating a batch of columns in bulk: Arrow casts the whole column at once, and only when a
cast fails is the offending cell looked for (by bisection), so that the error can name it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tracker.validation import MAX_INT64

from .errors import RowError
from .readers import RawBatch

_REASONS = {
    "step": "is not an integer",
    "value": "is not a number",
    "timestamp": "is not a timestamp (milliseconds since the epoch, a non-negative integer)",
}


@dataclass(frozen=True)
class TypedBatch:
    """A batch whose cells are all well-formed; names (keys, runs) are dictionary-encoded."""

    run_refs: pa.DictionaryArray | None
    keys: pa.DictionaryArray
    steps: np.ndarray
    timestamps: np.ndarray
    values: np.ndarray
    is_nan: np.ndarray
    lines: np.ndarray
    unit: str

    def location_of(self, names: pa.DictionaryArray, value: str) -> str:
        """Where `value` first appears in a dictionary-encoded column: "line 12" (or "row 12")."""
        index = names.dictionary.index(value).as_py()
        position = int(np.flatnonzero(names.indices.to_numpy(zero_copy_only=False) == index)[0])
        return f"{self.unit} {self.lines[position]}"


def _error_at(raw: RawBatch, index: int, column: str, reason: str) -> RowError:
    return RowError(reason, location=f"{raw.unit} {raw.lines[index]}", column=column)


def _missing(array: pa.Array) -> np.ndarray:
    mask = pc.is_null(array)
    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        mask = pc.or_(mask, pc.equal(pc.utf8_trim_whitespace(array), ""))
    return np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)


def _first_failure(array: pa.Array, convert: Callable[[pa.Array], object]) -> int:
    """The index of the first cell `convert` refuses, by bisection: log2(n) casts, not n."""
    low, high = 0, len(array)
    while high - low > 1:
        middle = (low + high) // 2
        try:
            convert(array.slice(low, middle - low))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            high = middle
        else:
            low = middle
    return low


def _shown(array: pa.Array, index: int) -> str:
    return repr(array[index].as_py())[:100]


def _converted(raw: RawBatch, name: str, target: pa.DataType) -> np.ndarray:
    array = raw.columns[name]
    if pa.types.is_boolean(array.type):
        raise _error_at(raw, 0, name, f"{_REASONS[name]}: {_shown(array, 0)}")

    def convert(part: pa.Array) -> pa.Array:
        if not pa.types.is_string(part.type):
            return pc.cast(part, target)
        part = pc.utf8_trim_whitespace(part)
        try:
            return pc.cast(part, target)
        except pa.ArrowInvalid:
            if target != pa.int64():
                raise
            return _whole_numbers(part)

    try:
        converted = convert(array)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        index = _first_failure(array, convert)
        raise _error_at(raw, index, name, f"{_shown(array, index)} {_REASONS[name]}") from None
    return converted.to_numpy(zero_copy_only=False)


def _whole_numbers(text: pa.Array) -> pa.Array:
    """Integers written as decimals ("3.0", "1.7e12", as a float column of pandas writes them),
    which the JSON APIs and JSON Lines take too; a double is exact only below 2**53, so nothing
    beyond. Cells written as integers are cast as integers, exactly, whatever their neighbours."""
    integer = pc.match_substring_regex(text, r"^[+-]?\d+$")
    integers = pc.cast(pc.if_else(integer, text, pa.scalar(None, pa.string())), pa.int64())
    numbers = pc.cast(pc.if_else(integer, pa.scalar(None, pa.string()), text), pa.float64())
    whole = pc.and_(pc.equal(pc.floor(numbers), numbers), pc.less(pc.abs(numbers), 2.0**53))
    if not pc.all(whole).as_py():  # nulls (the integer cells) are skipped
        raise pa.ArrowInvalid("not a whole number")
    return pc.coalesce(integers, pc.cast(numbers, pa.int64()))


def _names(raw: RawBatch, name: str) -> pa.DictionaryArray:
    array = raw.columns[name]
    if not pa.types.is_string(array.type):
        index = int(np.flatnonzero(~_missing(array))[0]) if len(array) else 0
        raise _error_at(raw, index, name, f"must be text, not {_shown(array, index)}")
    return pc.dictionary_encode(pc.utf8_trim_whitespace(array))


def _clean_names(array: pa.Array) -> pa.DictionaryArray | None:
    """A text column dictionary-encoded, if no name in it is missing or has spaces to trim."""
    if not pa.types.is_string(array.type) or array.null_count:
        return None
    encoded = pc.dictionary_encode(array)
    names = encoded.dictionary
    if (
        not pc.all(pc.equal(pc.utf8_trim_whitespace(names), names)).as_py()
        or pc.any(pc.equal(names, "")).as_py()
    ):
        return None
    return encoded


def _well_formed(raw: RawBatch, *, run_column: str | None, default_timestamp: int) -> TypedBatch | None:
    """The fast path, for a batch whose cells are all well-formed (nearly every batch): one cast
    per column, without trimming or looking for missing cells first. Anything unusual (a cast that
    fails, a null, spaces, a negative timestamp) gives None, and the careful path then finds the
    exact cell, or accepts what only needed trimming."""
    numbers = [("step", pa.int64()), ("value", pa.float64())]
    if "timestamp" in raw.columns:
        numbers.append(("timestamp", pa.int64()))
    converted: dict[str, np.ndarray] = {}
    for name, target in numbers:
        array = raw.columns[name]
        if not pa.types.is_string(array.type) or array.null_count:
            return None
        try:
            cast = pc.cast(array, target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
        converted[name] = cast.to_numpy(zero_copy_only=False)
    if "timestamp" in converted:
        timestamps = converted["timestamp"]
        if len(timestamps) and timestamps.min() < 0:
            return None
    else:
        timestamps = np.full(len(raw.lines), default_timestamp, dtype=np.int64)
    keys = _clean_names(raw.columns["key"])
    run_refs = _clean_names(raw.columns[run_column]) if run_column else None
    if keys is None or (run_column and run_refs is None):
        return None
    values = converted["value"]
    is_nan = np.isnan(values)
    return TypedBatch(
        run_refs=run_refs,
        keys=keys,
        steps=converted["step"],
        timestamps=timestamps,
        values=np.where(is_nan, 0.0, values),
        is_nan=is_nan,
        lines=raw.lines,
        unit=raw.unit,
    )


def typed_batch(raw: RawBatch, *, run_column: str | None, default_timestamp: int) -> TypedBatch:
    """Check every cell of a batch; the first bad one raises, naming its line and column."""
    required = ["key", "step", "value", *([run_column] if run_column else [])]
    for name in required:
        if name not in raw.columns:
            raise RowError("is missing from the header", location="line 1", column=name)
    fast = _well_formed(raw, run_column=run_column, default_timestamp=default_timestamp)
    if fast is not None:
        return fast
    checked = [*required, *(["timestamp"] if "timestamp" in raw.columns else [])]
    # The first missing cell of the batch, whichever column it is in.
    first_missing: tuple[int, str] | None = None
    for name in required:
        missing = np.flatnonzero(_missing(raw.columns[name]))
        if len(missing) and (first_missing is None or missing[0] < first_missing[0]):
            first_missing = (int(missing[0]), name)
    if first_missing is not None:
        raise _error_at(raw, first_missing[0], first_missing[1], "is missing")
    # Columns are checked in file order within the batch: the earliest bad line wins.
    problems: list[RowError] = []
    converted: dict[str, np.ndarray] = {}
    for name, target in (("step", pa.int64()), ("value", pa.float64()), ("timestamp", pa.int64())):
        if name not in checked:
            continue
        array = raw.columns[name]
        if name == "timestamp":
            array = pc.if_else(_missing(array), pa.scalar(None, array.type), array)
        try:
            converted[name] = _converted(
                RawBatch({name: array}, raw.lines, raw.bytes_read, raw.unit), name, target
            )
        except RowError as error:
            problems.append(error)
    if problems:
        raise min(problems, key=lambda error: error.line or 0)
    if "timestamp" in converted:
        timestamps = converted["timestamp"]
        if timestamps.dtype != np.int64:  # nulls made it float: fill them with the default
            timestamps = np.where(np.isnan(timestamps), default_timestamp, timestamps).astype(np.int64)
        negative = np.flatnonzero(timestamps < 0)
        if len(negative):
            index = int(negative[0])
            raise _error_at(raw, index, "timestamp", f"{timestamps[index]} {_REASONS['timestamp']}")
    else:
        timestamps = np.full(len(raw.lines), default_timestamp, dtype=np.int64)
    values = converted["value"]
    is_nan = np.isnan(values)
    return TypedBatch(
        run_refs=_names(raw, run_column) if run_column else None,
        keys=_names(raw, "key"),
        steps=converted["step"].astype(np.int64, copy=False),
        timestamps=timestamps.clip(0, MAX_INT64),
        values=np.where(is_nan, 0.0, values),
        is_nan=is_nan,
        lines=raw.lines,
        unit=raw.unit,
    )
