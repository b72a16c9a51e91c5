"""The run table's pure helpers: search identifiers, sort state and value formatting."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from dashboard.tables import current_order, format_duration, format_metric, search_identifier
from tracker.selectors import MetricValue


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("lr", "params.lr"),
        ("train/loss", "params.train/loss"),
        ("val.f1-score", "params.val.f1-score"),
        ("val loss", "params.`val loss`"),
        ("a:b", "params.`a:b`"),
        ("odd`key", 'params."odd`key"'),
    ],
)
def test_search_identifier_quotes_only_keys_that_need_it(key, expected):
    assert search_identifier("params", key) == expected


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        ([], ("attributes.start_time", True)),
        ([""], ("attributes.start_time", True)),
        (["metrics.val_f1 DESC"], ("metrics.val_f1", True)),
        (["metrics.val_f1 desc", "params.lr"], ("metrics.val_f1", True)),
        (["params.lr"], ("params.lr", False)),
        (["metrics.`val loss` ASC"], ("metrics.`val loss`", False)),
    ],
)
def test_current_order_reads_the_first_sort_key(order_by, expected):
    assert current_order(order_by) == expected


def metric(value: float | None, *, is_nan: bool = False) -> MetricValue:
    return MetricValue("m", value, is_nan, 3, 0, None, None, 1)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (metric(None, is_nan=True), "NaN"),
        (metric(0.912345678), "0.912346"),
        (metric(12.0), "12"),
        (metric(math.inf), "Infinity"),
        (metric(-math.inf), "-Infinity"),
    ],
)
def test_format_metric(value, expected):
    assert format_metric(value) == expected


@pytest.mark.parametrize(
    ("duration", "expected"),
    [
        (None, ""),
        (timedelta(seconds=4.25), "4.2s"),
        (timedelta(minutes=3, seconds=7), "3m 07s"),
        (timedelta(hours=2, minutes=5), "2h 05m"),
        (timedelta(days=3, hours=4), "3d 4h"),
    ],
)
def test_format_duration(duration, expected):
    assert format_duration(duration) == expected
