"""The typed shape of the configuration file.

Every Struct forbids unknown keys, so a typo is an error that names its key. Destination configs
live beside their destination (``collector/destinations/<name>.py``) and are gathered into one
tagged union in ``collector/destinations/registry.py``; msgspec dispatches on their ``type:`` key.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from collector.browser.config import BrowserConfig
from collector.config.units import ByteSize, Duration
from collector.filters.config import PiiRuleConfig, TrackingPlanConfig

PositiveInt = Annotated[int, msgspec.Meta(ge=1)]


class _Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class LimitsConfig(_Section):
    """Segment's documented limits; raise them only if every client of yours can cope."""

    max_event_bytes: ByteSize = ByteSize(32 * 1024)
    max_request_bytes: ByteSize = ByteSize(500 * 1024)
    max_batch_events: PositiveInt = 2500


class CorsConfig(_Section):
    allowed_origins: list[str] = msgspec.field(default_factory=lambda: ["*"])


class ServerConfig(_Section):
    listen: str = "127.0.0.1:8088"
    # The origin browsers reach the collector at, e.g. https://data.example.com; used by the
    # browser library and the settings endpoint. Unset: taken from each request.
    public_url: str | None = None
    # Peers whose X-Forwarded-For / X-Forwarded-Proto are believed (IPs or CIDRs).
    trusted_proxies: list[str] = []
    limits: LimitsConfig = msgspec.field(default_factory=LimitsConfig)
    cors: CorsConfig = msgspec.field(default_factory=CorsConfig)
    # A client that has not sent its whole body within this time gets 408 (slow or stuck clients).
    request_timeout: Duration = Duration(30)
    # How long SIGTERM waits for in-flight requests and deliveries before closing.
    shutdown_timeout: Duration = Duration(10)


class StorageConfig(_Section):
    path: str = "./data"
    # full: an acknowledged event survives power loss (fsync on every commit).
    # normal: survives a crash of the process (kill -9), may lose the last commits on power loss.
    sync: Literal["full", "normal"] = "full"
    # How long events stay after every destination has them (for replay / backfill).
    retention: Duration = Duration(7 * 86400)
    # Ingestion answers 503 + Retry-After above this database size (0 = no cap) ...
    max_bytes: ByteSize = ByteSize(0)
    # ... or when the filesystem has less free space than this.
    min_free_bytes: ByteSize = ByteSize(256 * 1024 * 1024)
    # Events with a messageId already seen from the same source within this window are dropped.
    dedup_window: Duration = Duration(86400)
    # ... and at most this many ids are held (about 40 bytes of memory each); beyond it the window
    # in force is shortened (collector_dedup_window_seconds says by how much). 0 = no cap.
    dedup_max_ids: Annotated[int, msgspec.Meta(ge=0)] = 10_000_000
    # Dead letters (events a destination gave up on) are kept this long for inspection and replay.
    dead_letter_retention: Duration = Duration(30 * 86400)


class SourceConfig(_Section):
    write_key: Annotated[str, msgspec.Meta(min_length=1)]
    enabled: bool = True
    # The name of a plan under tracking_plans that this source's events are checked against.
    tracking_plan: str | None = None
    # Rules applied in order to every event of this source before it is stored (collector/filters/pii.py).
    pii: list[PiiRuleConfig] = []


class LoggingConfig(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "text"] = "json"


class Config(_Section):
    """The whole file. ``destinations`` holds already-decoded destination configs."""

    server: ServerConfig = msgspec.field(default_factory=ServerConfig)
    storage: StorageConfig = msgspec.field(default_factory=StorageConfig)
    logging: LoggingConfig = msgspec.field(default_factory=LoggingConfig)
    browser: BrowserConfig = msgspec.field(default_factory=BrowserConfig)
    tracking_plans: dict[str, TrackingPlanConfig] = {}
    sources: dict[str, SourceConfig] = {}
    destinations: dict[str, object] = {}
    # Where the file came from, for messages; not a key of the file.
    origin: str = "<defaults>"
