"""Column types inferred from values, widened within a file."""

from __future__ import annotations

from datetime import datetime, timezone

import pyarrow as pa
import pytest

from collector.destinations.parquet.columns import arrow_table, kind_of, parse_datetime


@pytest.mark.parametrize(("value", "kind"), [
    (True, "boolean"), (3, "int"), (2**63, "string"), (2.5, "float"), ("2024-11-28T13:26:00.373Z", "datetime"),
    ("2024-11-28", "datetime"), ("2024-13-45", "string"), ("hello", "string"), ("2024-11-28T13:26:00Z" + "x", "string"),
])
def test_kind_of(value: object, kind: str) -> None:
    assert kind_of(value) == kind


def test_parse_datetime_normalises_to_utc() -> None:
    assert parse_datetime("2024-11-28T14:26:00+01:00") == datetime(2024, 11, 28, 13, 26, tzinfo=timezone.utc)
    assert parse_datetime("2024-11-28 13:26") == datetime(2024, 11, 28, 13, 26, tzinfo=timezone.utc)


def test_the_schema_is_the_union_of_the_rows_columns_with_widened_types() -> None:
    rows = [
        {"id": "a", "received_at": "2024-11-28T13:26:00.373Z", "n": 1, "mixed": 1, "flag": True, "at": "2024-01-02"},
        {"id": "b", "received_at": "not a time", "n": 2.5, "mixed": "x", "only_b": "b", "at": "later"},
        {"id": "c", "received_at": "2024-11-28T13:26:01Z", "flag": False, "mixed": True},
    ]
    table = arrow_table(rows)
    assert table.schema == pa.schema([
        ("id", pa.string()), ("received_at", pa.timestamp("ms", tz="UTC")), ("at", pa.string()),
        ("flag", pa.bool_()), ("mixed", pa.string()), ("n", pa.float64()), ("only_b", pa.string()),
    ])
    assert table.to_pylist() == [
        {"id": "a", "received_at": datetime(2024, 11, 28, 13, 26, 0, 373000, tzinfo=timezone.utc),
         "at": "2024-01-02", "flag": True, "mixed": "1", "n": 1.0, "only_b": None},
        {"id": "b", "received_at": None, "at": "later", "flag": None, "mixed": "x", "n": 2.5, "only_b": "b"},
        {"id": "c", "received_at": datetime(2024, 11, 28, 13, 26, 1, tzinfo=timezone.utc),
         "at": None, "flag": False, "mixed": "true", "n": None, "only_b": None},
    ]


def test_system_columns_keep_their_type_whatever_comes() -> None:
    table = arrow_table([{"id": 5, "user_id": 42, "name": 1.5}])
    assert table.to_pylist() == [{"id": "5", "user_id": "42", "name": "1.5"}]
