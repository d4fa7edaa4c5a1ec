"""The parquet destination end to end: Segment's Python library -> the collector process -> Parquet
files in a local directory -> DuckDB; and a kill -9 of the collector while it writes."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from collector.destinations.parquet.stores import STAGING
from tests.destinations.stream_e2e import (
    DESTINATION,
    collector_config,
    delivered,
    make_events,
    post_events,
    send_with_sdk,
    wait_delivered,
)
from tests.support.waiting import wait_until

from .lake import read_table, tables_in


def lake_config(root: Path, max_events: int) -> dict:
    return collector_config({"type": "parquet", "path": str(root)}, max_events=max_events)


def ids_by_table(root: Path) -> dict[str, Counter[str]]:
    return {table: Counter(r["id"] for r in read_table(root, table)) for table in tables_in(root)}


def expected_tables(events: list[dict]) -> dict[str, list[str]]:
    tables: dict[str, list[str]] = {"tracks": [], "step_done": [], "identifies": [], "pages": []}
    for e in events:
        table = {"identify": "identifies", "page": "pages", "track": "step_done"}[e["type"]]
        tables[table].append(e["messageId"])
        if e["type"] == "track":
            tables["tracks"].append(e["messageId"])
    return tables


def test_sdk_events_land_once_each_in_their_tables(collector_factory, tmp_path: Path) -> None:
    root = tmp_path / "lake"
    events = make_events(users=5, per_user=9)
    collector = collector_factory(lake_config(root, max_events=10))
    send_with_sdk(collector, events)
    wait_delivered(collector, len(events))

    expected = expected_tables(events)
    assert ids_by_table(root) == {t: Counter(ids) for t, ids in expected.items()}
    by_id = {e["messageId"]: e for e in events}
    for row in read_table(root, "step_done"):
        sent = by_id[row["id"]]
        assert (row["step"], row["ok"], row["anonymous_id"]) == (sent["properties"]["step"], True, sent["anonymousId"])
        assert (row["event_text"], row["context_library_name"], row["source"]) == ("Step Done", "analytics-python", "web")
    for row in read_table(root, "identifies"):
        sent = by_id[row["id"]]
        assert (row["user_id"], row["step"]) == (sent["userId"], sent["traits"]["step"])
    assert {r["name"] for r in read_table(root, "pages")} == {"Pricing"}
    # Files are closed with their batch: max_events bounds the rows in each.
    sizes = [pq.read_metadata(path).num_rows for path in (root / "tracks").rglob("*.parquet")]
    assert len(sizes) > 1 and max(sizes) <= 10 and sum(sizes) == len(expected["tracks"])
    assert collector.metric("collector_dead_lettered_events_total", destination=DESTINATION) == 0


def test_kill_9_while_writing_leaves_only_complete_files_and_loses_nothing(collector_factory, tmp_path: Path) -> None:
    root = tmp_path / "lake"
    events = make_events(users=10, per_user=150)
    collector = collector_factory(lake_config(root, max_events=15))
    post_events(collector, events)  # all in the collector's log: acknowledged to the sender
    wait_until("some batches written", lambda: delivered(collector) >= len(events) // 5, timeout=60)
    collector.kill()
    assert delivered_before_kill_is_partial(root, len(events))

    # Whatever the kill interrupted: every file under a final name is a whole Parquet file.
    for path in root.rglob("*.parquet"):
        pq.read_metadata(path)

    collector.start()
    wait_until("every event written after the restart",
               lambda: all_ids(root) >= {e["messageId"] for e in events}, timeout=120)
    collector.stop()
    counts = ids_by_table(root)
    expected = expected_tables(events)
    assert sorted(counts) == sorted(expected)
    for table, ids in expected.items():
        assert set(counts[table]) == set(ids), table  # nothing lost ...
    copies = sum(sum(c.values()) - len(c) for c in counts.values())
    print(f"copies written twice because of the kill: {copies} rows of {sum(len(v) for v in expected.values())}")
    assert (root / STAGING).exists() and list((root / STAGING).iterdir()) == []


def delivered_before_kill_is_partial(root: Path, total: int) -> bool:
    """The kill came while events were still to be written (else the test proves nothing)."""
    return 0 < len(all_ids(root)) < total


def all_ids(root: Path) -> set[str]:
    if not root.exists() or not tables_in(root):
        return set()
    return {i for counter in ids_by_table(root).values() for i in counter}


def test_sdk_events_land_in_an_s3_bucket(collector_factory, tmp_path: Path) -> None:
    import urllib.request

    from tests.support.brokers import MotoS3

    from .test_s3 import BUCKET, download

    assert MotoS3.binary() is not None, "moto_server missing: moto[server] is a test dependency (pyproject.toml)"
    events = make_events(users=4, per_user=6)
    with MotoS3(tmp_path / "moto") as moto:
        with urllib.request.urlopen(urllib.request.Request(f"{moto.url}/{BUCKET}", method="PUT"), timeout=10):
            pass
        collector = collector_factory(collector_config(
            {"type": "parquet", "s3": {"bucket": BUCKET, "prefix": "e2e", "endpoint": moto.url,
                                       "access_key_id": "testing", "secret_access_key": "testing"}},
            max_events=10))
        send_with_sdk(collector, events)
        wait_delivered(collector, len(events))
        assert collector.stop() == 0
        download(moto, "e2e", tmp_path / "copy")
    expected = expected_tables(events)
    assert ids_by_table(tmp_path / "copy") == {t: Counter(ids) for t, ids in expected.items()}
