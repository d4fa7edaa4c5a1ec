"""The parquet destination writing to a local directory, read back with DuckDB."""

from __future__ import annotations

import os
import stat
from datetime import datetime, timezone
from pathlib import Path

import pytest

from collector.destinations.parquet import stores
from tests.destinations.fakes import build, envelopes, started, stored_events

from .lake import read_table, tables_in


def settings(root: Path) -> dict:
    return {"type": "parquet", "path": str(root)}


def parquet_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.parquet"))


async def test_rows_read_back_with_duckdb_equal_the_events(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    async with started(build(settings(root), None, tmp_path / "data")) as destination:
        assert (await destination.send(envelopes(source="Web Shop"))).ok
    track, identify, page = stored_events()
    assert tables_in(root) == ["identifies", "order_completed", "pages", "tracks"]
    files = [p.relative_to(root).as_posix() for p in parquet_files(root)]
    assert [f.rsplit("/", 1)[0] for f in files] == [
        "identifies/source=web_shop/date=2024-11-28", "order_completed/source=web_shop/date=2024-11-28",
        "pages/source=web_shop/date=2024-11-28", "tracks/source=web_shop/date=2024-11-28"]

    [order] = read_table(root, "order_completed")
    assert order["id"] == track["messageId"]
    assert (order["event"], order["event_text"]) == ("order_completed", "Order Completed")
    assert (order["user_id"], order["anonymous_id"]) == (track["userId"], track["anonymousId"])
    assert order["received_at"] == datetime(2024, 11, 28, 13, 26, 0, 373000, tzinfo=timezone.utc)
    assert order["timestamp"] == datetime(2024, 11, 28, 13, 26, 0, 123000, tzinfo=timezone.utc)
    assert (order["order_id"], order["total"], order["currency"]) == ("50314b8e9bcf000000000000", 27.5, "EUR")
    assert order["context_page_title"] == track["context"]["page"]["title"]
    assert order["context_consent_category_preferences_analytics"] is True
    assert "coupon" not in order  # null: no column
    assert (order["source"], str(order["date"])) == ("web_shop", "2024-11-28")
    [tracks_row] = read_table(root, "tracks")
    assert tracks_row["id"] == track["messageId"] and "order_id" not in tracks_row
    [identifies_row] = read_table(root, "identifies")
    assert (identifies_row["email"], identifies_row["logins"], identifies_row["address_city"]) == (
        "zoë.müller@example.com", 12, "Köln")
    assert identifies_row["created_at"] == datetime(2023, 2, 1, 9, 30, tzinfo=timezone.utc)
    [pages_row] = read_table(root, "pages")
    assert (pages_row["id"], pages_row["name"], pages_row["path"]) == (page["messageId"], "Checkout Complete",
                                                                       "/checkout/complete")


async def test_a_batch_sent_again_rewrites_its_files_instead_of_adding_copies(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    async with started(build(settings(root), None, tmp_path / "data")) as destination:
        assert (await destination.send(envelopes())).ok
        first = parquet_files(root)
        assert (await destination.send(envelopes())).ok
    assert parquet_files(root) == first
    assert len(read_table(root, "tracks")) == 1


async def test_partitions_by_source_and_received_day(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    day1, day2 = stored_events()[0], stored_events()[0]
    day2 = {**day2, "messageId": "next-day", "receivedAt": "2024-11-29T00:00:01.000Z"}
    batch = envelopes([day1, day2], source="web") + envelopes([{**day1, "messageId": "from-ios"}], source="ios")
    async with started(build(settings(root), None, tmp_path / "data")) as destination:
        assert (await destination.send(batch)).ok
    rows = read_table(root, "tracks")
    assert sorted((r["id"], r["source"], str(r["date"])) for r in rows) == sorted([
        (day1["messageId"], "web", "2024-11-28"), ("next-day", "web", "2024-11-29"), ("from-ios", "ios", "2024-11-28")])


async def test_a_failed_write_leaves_no_file_under_a_final_name_and_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "lake"
    real_fsync, calls = os.fsync, []

    def failing_fsync(fd: int) -> None:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            calls.append(fd)
            if len(calls) == 2:  # the second file's data
                raise OSError(5, "Input/output error")
        real_fsync(fd)

    async with started(build(settings(root), None, tmp_path / "data")) as destination:
        assert (await destination.send(envelopes()[:1])).ok  # opens the store (its fsyncs pass)
        calls.clear()
        monkeypatch.setattr(stores.os, "fsync", failing_fsync)
        outcome = await destination.send(envelopes()[1:])
        assert outcome.kind == "retry" and "Input/output error" in outcome.reason, outcome
        monkeypatch.setattr(stores.os, "fsync", real_fsync)
        assert os.listdir(root / stores.STAGING) == []
        written = {p.parent.parent.parent.name for p in parquet_files(root)}
        assert written <= {"order_completed", "tracks", "identifies"} and "pages" not in written
        assert (await destination.send(envelopes()[1:])).ok
    assert tables_in(root) == ["identifies", "order_completed", "pages", "tracks"]
    assert len(read_table(root, "identifies")) == 1


async def test_opening_clears_what_a_crash_left_in_staging(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    (root / stores.STAGING).mkdir(parents=True)
    (root / stores.STAGING / "abc.tmp").write_bytes(b"PAR1 half a file")
    async with started(build(settings(root), None, tmp_path / "data")) as destination:
        assert (await destination.send(envelopes())).ok
    assert os.listdir(root / stores.STAGING) == []
