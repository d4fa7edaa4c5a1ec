"""The parquet destination's settings, as the config loader reads them."""

from __future__ import annotations

from collector.config.loader import load_config_text
from tests.destinations.stream_checks import config_errors


def load(settings: str) -> object:
    text = "destinations:\n  out:\n" + "".join(f"    {line}\n" for line in settings.splitlines())
    return load_config_text(text).destinations["out"]


def test_local_directory_and_its_defaults() -> None:
    config = load("type: parquet\npath: /var/lib/lake")
    assert (config.path, config.s3, config.compression, config.concurrency) == ("/var/lib/lake", None, "snappy", 1)
    assert (config.batch.max_events, config.batch.max_bytes, config.batch.max_wait) == (10_000, 16 * 1024**2, 60)


def test_s3_secrets_come_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("LAKE_KEY", "AKIAEXAMPLE")
    monkeypatch.setenv("LAKE_SECRET", "s3cr3t")
    config = load("type: parquet\ns3:\n  bucket: lake\n  prefix: /events/\n  endpoint: http://minio:9000\n"
                  "  access_key_id: ${LAKE_KEY}\n  secret_access_key: ${LAKE_SECRET}")
    assert (config.s3.bucket, config.s3.prefix, config.s3.endpoint) == ("lake", "events", "http://minio:9000")
    assert (config.s3.access_key_id, config.s3.secret_access_key, config.s3.region) == (
        "AKIAEXAMPLE", "s3cr3t", "us-east-1")


def test_exactly_one_of_path_and_s3() -> None:
    assert any("exactly one of path" in e for e in config_errors("type: parquet"))
    assert any("exactly one of path" in e for e in config_errors("type: parquet\npath: x\ns3: {bucket: b}"))


def test_s3_keys_come_in_pairs() -> None:
    assert any("both access_key_id and secret_access_key" in e
               for e in config_errors("type: parquet\ns3: {bucket: b, access_key_id: k}"))


def test_a_batch_key_written_changes_only_that_key() -> None:
    config = load("type: parquet\npath: lake\nbatch: {max_wait: 5s}")
    assert (config.batch.max_events, config.batch.max_bytes, config.batch.max_wait) == (10_000, 16 * 1024**2, 5)
