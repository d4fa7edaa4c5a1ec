"""The parquet destination's contract fake: a local lake directory of the test's own, read back
with DuckDB."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from collector.destinations.base import Envelope
from collector.destinations.parquet.tables import rows_for
from tests.destinations.fakes import ErrorCase, Fake
from tests.destinations.parquet.lake import read_table, tables_in


def _path_is_a_file(fake: ContractFake) -> None:
    fake.root.parent.mkdir(parents=True, exist_ok=True)
    fake.root.write_text("not a directory")


class ContractFake(Fake):
    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path)
        self.root = tmp_path / "lake"

    def point(self, example: dict[str, Any]) -> dict[str, Any]:
        return {**copy.deepcopy(example), "path": str(self.root)}

    def assert_delivered(self, batch: list[Envelope]) -> None:
        expected: dict[str, list[str]] = {}
        for envelope in batch:
            for table, _ in rows_for(envelope.event, envelope.received_ms):
                expected.setdefault(table, []).append(envelope.event["messageId"])
        assert tables_in(self.root) == sorted(expected)
        for table, ids in expected.items():
            rows = read_table(self.root, table)
            assert sorted(r["id"] for r in rows) == sorted(ids), table
            assert {r["source"] for r in rows} == {batch[0].source}

    error_cases = [
        ErrorCase("path is a file, not a directory", _path_is_a_file, "retry", None, "Error"),
    ]
