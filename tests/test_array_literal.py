"""config.db.array_literal and column_arrays: what PostgreSQL reads back is exactly what was sent."""

from __future__ import annotations

import math

import pytest

from config.db import array_literal, column_arrays

FLOATS = [0.1, -2.5, 1e-300, 5e-324, 1.7976931348623157e308, math.inf, -math.inf, math.nan, None, 0.0]
INTEGERS = [0, -1, 2**63 - 1, -(2**63), None, 7]
BOOLEANS = [True, False, None]


def test_the_text_form_is_postgresqls_array_syntax():
    assert array_literal([1, None, 3]) == "{1,NULL,3}"
    assert array_literal([]) == "{}"


def test_rows_become_one_array_per_column_and_a_ragged_row_is_refused():
    assert column_arrays([(1, 0.5, True), (2, None, False)]) == ["{1,2}", "{0.5,NULL}", "{True,False}"]
    with pytest.raises(ValueError):
        column_arrays([(1, 2), (3,)])


@pytest.mark.parametrize(
    ("values", "kind"),
    [(FLOATS, "float8"), (INTEGERS, "bigint"), (BOOLEANS, "boolean"), ([1, 2], "smallint")],
)
def test_postgresql_reads_every_value_back_exactly(postgres, values, kind):
    with postgres.cursor() as cursor:
        cursor.execute(f"SELECT %s::{kind}[]", [array_literal(values)])
        (read,) = cursor.fetchone()
    assert len(read) == len(values)
    for sent, got in zip(values, read, strict=True):
        if isinstance(sent, float) and math.isnan(sent):
            assert math.isnan(got)
        else:
            assert got == sent and type(got) is type(sent)
