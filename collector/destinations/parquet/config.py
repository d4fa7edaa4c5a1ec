"""The parquet destination's settings."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import msgspec

from collector.config.units import ByteSize, Duration
from collector.destinations.base import BatchConfig, DestinationConfig, PositiveInt


class S3Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    bucket: str
    prefix: str = ""  # keys start with it (no leading or trailing "/" needed)
    # Any S3-compatible store: e.g. http://minio.internal:9000, https://<account>.r2.cloudflarestorage.com.
    # None: AWS itself.
    endpoint: str | None = None
    region: str = "us-east-1"
    # None: the AWS default chain (environment, ~/.aws, instance role).
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None

    def __post_init__(self) -> None:
        if not self.bucket or "/" in self.bucket:
            raise ValueError(f"s3.bucket must be a bucket name, got {self.bucket!r}")
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("s3: set both access_key_id and secret_access_key, or neither")
        self.prefix = self.prefix.strip("/")


def _lake_batch() -> BatchConfig:
    # A file per table per batch: large batches make files of a useful size. The delivery engine
    # holds up to max_events x concurrency x 4 events in memory.
    return BatchConfig(max_events=10_000, max_bytes=ByteSize(16 * 1024**2), max_wait=Duration(60))


class ParquetConfig(DestinationConfig, tag="parquet", kw_only=True):
    path: str | None = None  # a local directory (created if missing) ...
    s3: S3Settings | None = None  # ... or an S3-compatible bucket: exactly one of the two
    compression: Literal["snappy", "zstd", "gzip", "none"] = "snappy"
    batch: BatchConfig = msgspec.field(default_factory=_lake_batch)
    concurrency: PositiveInt = 1  # one lane: fewer, larger files (order does not matter to a lake)
    timeout: Duration = Duration(120)

    example: ClassVar[dict[str, Any]] = {
        "type": "parquet",
        "path": "./data/lake",
        "compression": "snappy",
        "batch": {"max_events": 10000, "max_bytes": "16MiB", "max_wait": "60s"},
    }

    def __post_init__(self) -> None:
        if (self.path is None) == (self.s3 is None):
            raise ValueError("set exactly one of path (a local directory) and s3 (a bucket)")
        if self.path is not None and not self.path.strip():
            raise ValueError("path must not be empty")
