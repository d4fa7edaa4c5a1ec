"""The parquet destination writing to a real S3-compatible server (moto's, private, on loopback).

DuckDB's httpfs extension cannot be downloaded on this machine (no network), so the objects are
downloaded with pyarrow's S3 client and read locally with DuckDB."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
from pyarrow import fs

from tests.destinations.fakes import build, envelopes, started
from tests.support.brokers import MotoS3
from tests.support.process import free_port

from .lake import read_table

BUCKET = "lake"


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory):
    assert MotoS3.binary() is not None, "moto_server missing: moto[server] is a test dependency (pyproject.toml)"
    with MotoS3(tmp_path_factory.mktemp("moto")) as server:
        request = urllib.request.Request(f"{server.url}/{BUCKET}", method="PUT")
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200
        yield server


def s3_settings(endpoint: str, prefix: str) -> dict:
    return {"type": "parquet", "s3": {"bucket": BUCKET, "prefix": prefix, "endpoint": endpoint,
                                      "access_key_id": "testing", "secret_access_key": "testing"}}


def client(moto: MotoS3) -> fs.S3FileSystem:
    return fs.S3FileSystem(access_key="testing", secret_key="testing", region="us-east-1",
                           endpoint_override=moto.url.removeprefix("http://"), scheme="http")


def download(moto: MotoS3, prefix: str, into: Path) -> list[str]:
    """Every object under ``prefix`` into the directory ``into``; returns their keys."""
    s3 = client(moto)
    keys = sorted(info.path for info in s3.get_file_info(fs.FileSelector(f"{BUCKET}/{prefix}", recursive=True))
                  if info.type == fs.FileType.File)
    for key in keys:
        target = into / key.removeprefix(f"{BUCKET}/{prefix}/")
        target.parent.mkdir(parents=True, exist_ok=True)
        with s3.open_input_stream(key) as stream:
            target.write_bytes(stream.read())
    return keys


async def test_objects_read_back_with_duckdb_equal_the_events(moto: MotoS3, tmp_path: Path) -> None:
    batch = envelopes()
    async with started(build(s3_settings(moto.url, "raw/events"), None, tmp_path / "data")) as destination:
        assert (await destination.send(batch)).ok
    keys = download(moto, "raw/events", tmp_path / "copy")
    assert [k.rsplit("/", 1)[0] for k in keys] == [
        f"{BUCKET}/raw/events/{t}/source=web/date=2024-11-28"
        for t in ("identifies", "order_completed", "pages", "tracks")]
    assert all(k.endswith(".parquet") for k in keys)
    ids = {e.event["type"]: e.event["messageId"] for e in batch}
    assert [r["id"] for r in read_table(tmp_path / "copy", "tracks")] == [ids["track"]]
    [order] = read_table(tmp_path / "copy", "order_completed")
    assert (order["id"], order["total"], order["source"]) == (ids["track"], 27.5, "web")
    assert [r["email"] for r in read_table(tmp_path / "copy", "identifies")] == ["zoë.müller@example.com"]
    assert [r["id"] for r in read_table(tmp_path / "copy", "pages")] == [ids["page"]]


async def test_a_store_that_does_not_answer_is_a_retry(tmp_path: Path) -> None:
    settings = s3_settings(f"http://127.0.0.1:{free_port()}", "x")
    async with started(build(settings, None, tmp_path / "data")) as destination:
        outcome = await destination.send(envelopes())
    assert outcome.kind == "retry", outcome


async def test_a_missing_bucket_is_a_retry_and_writes_nothing(moto: MotoS3, tmp_path: Path) -> None:
    settings = s3_settings(moto.url, "y")
    settings["s3"]["bucket"] = "no-such-bucket"
    async with started(build(settings, None, tmp_path / "data")) as destination:
        outcome = await destination.send(envelopes())
    assert outcome.kind == "retry" and "no-such-bucket" in outcome.reason, outcome
