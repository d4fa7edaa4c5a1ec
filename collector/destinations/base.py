"""What every destination is: a typed config, and a class that turns a batch into vendor requests.

A destination knows only its vendor. The delivery engine (``collector/delivery``) owns batching,
concurrency, per-user order, retries, backoff, give-up and dead letters; it calls ``send`` with a
batch and acts on the ``Outcome`` it gets back.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal

import aiohttp
import msgspec

from collector.config.units import ByteSize, Duration

PositiveInt = Annotated[int, msgspec.Meta(ge=1)]


class BatchConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    max_events: PositiveInt = 500
    max_bytes: ByteSize = ByteSize(450 * 1024)
    max_wait: Duration = Duration(1)


class RetryConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    initial_backoff: Duration = Duration(1)
    max_backoff: Duration = Duration(300)
    # Events still undelivered this long after they were received go to the dead-letter store.
    give_up_after: Duration = Duration(4 * 3600)


class DestinationConfig(msgspec.Struct, tag_field="type", forbid_unknown_fields=True, kw_only=True):
    """Settings every destination has; each destination subclasses this with
    ``tag="<type>", kw_only=True`` (msgspec does not inherit kw_only, and without it a required
    vendor field could not follow these optional ones)."""

    # Every destination config sets this ClassVar: a working example, which the shared contract test
    # parses and sends with, and which the docs show.
    example: ClassVar[dict[str, Any]]

    enabled: bool = True
    # The key this destination answers to in an event's ``integrations`` object
    # (default: the destination type's display name, e.g. "Webhooks").
    integration_name: str | None = None
    # Sources whose events go here (default: every source).
    sources: list[str] | None = None
    # A destination seen for the first time starts at the newest event ("now") or replays
    # everything still retained ("earliest").
    start_from: Literal["now", "earliest"] = "now"
    # Consent categories this destination belongs to; it receives an event only when the
    # event's context.consent.categoryPreferences grants every one of them.
    consent_categories: list[str] = []
    # Parallel lanes; events of one visitor always travel in the same lane, in order (Envelope.user_key).
    concurrency: PositiveInt = 4
    timeout: Duration = Duration(30)
    batch: BatchConfig = msgspec.field(default_factory=BatchConfig)
    retry: RetryConfig = msgspec.field(default_factory=RetryConfig)


class RoutingContext(msgspec.Struct):
    consent: Any = None


class RoutingFields(msgspec.Struct):
    """The few fields delivery needs from a stored event; msgspec skips everything else."""

    type: str = ""
    userId: Any = None
    anonymousId: Any = None
    integrations: Any = None
    context: RoutingContext | None = None


@dataclass(slots=True)
class Envelope:
    """One stored event on its way to one destination."""

    seq: int
    source: str
    received_ms: int
    raw: bytes  # the event as stored: compact JSON
    routing: RoutingFields
    _event: dict | None = field(default=None, repr=False)

    @property
    def event(self) -> dict:
        """The event decoded as a dict; decoded on first use, and a fresh copy for each destination."""
        if self._event is None:
            self._event = msgspec.json.decode(self.raw)
        return self._event

    @property
    def user_key(self) -> str:
        """The lane key: the anonymousId when there is one, else the userId. A browser visitor's
        events all carry its anonymousId, before the identify that names it, the identify itself
        and after it, so they keep one lane and their order through identification."""
        r = self.routing
        return str(r.anonymousId if r.anonymousId not in (None, "") else r.userId or "")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of a batch: delivered, retry later, or rejected for good."""

    kind: Literal["ok", "retry", "reject"]
    reason: str = ""
    retry_after: float | None = None
    # For a rejection: the vendor may have refused some events only (e.g. a 400 for one bad
    # event), so the engine splits the batch to find them, rather than dead-letter it whole.
    split: bool = False

    @property
    def ok(self) -> bool:
        return self.kind == "ok"


DELIVERED = Outcome("ok")


def retry(reason: str, after: float | None = None) -> Outcome:
    return Outcome("retry", reason, after)


def reject(reason: str, split: bool = False) -> Outcome:
    return Outcome("reject", reason, split=split)


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime
        from datetime import datetime, timezone

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


# Answers about the request's content: some event in the batch may be at fault, not all of them.
_CONTENT_ERRORS = frozenset({400, 413, 422})
# Credentials refused: the operator's to fix, so the events wait (until retry.give_up_after)
# instead of being dead-lettered at once.
_CREDENTIAL_ERRORS = frozenset({401, 403})


def classify_http(status: int, headers: Any, body: bytes | str = b"") -> Outcome:
    """The usual reading of an HTTP answer: 2xx delivered; 408, 429, 5xx (but 501 and 505), 401 and
    403 retried, honouring Retry-After; any other 4xx will never succeed."""
    if 200 <= status < 300:
        return DELIVERED
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    reason = f"HTTP {status}: {text[:300]}".rstrip(": ")
    if status in (408, 429) or (status >= 500 and status not in (501, 505)):
        return retry(reason, parse_retry_after(headers.get("Retry-After")))
    if status in _CREDENTIAL_ERRORS:
        return retry(f"credentials refused ({reason}); check the destination's settings")
    return reject(reason, split=status in _CONTENT_ERRORS)


@dataclass(slots=True)
class BuildContext:
    """What the app lends every destination when it is built."""

    http: aiohttp.ClientSession | None
    data_dir: str


class Destination(abc.ABC):
    """Subclass per vendor: set ``Config`` and ``display_name``, implement ``send``."""

    Config: ClassVar[type[DestinationConfig]]
    # The default name this destination answers to in an event's `integrations` object.
    display_name: ClassVar[str]

    def __init__(self, name: str, config: DestinationConfig, context: BuildContext) -> None:
        self.name = name
        self.config = config
        self.context = context

    @property
    def integration_name(self) -> str:
        return self.config.integration_name or self.display_name

    @property
    def http(self) -> aiohttp.ClientSession:
        assert self.context.http is not None, "the app provides an HTTP session"
        return self.context.http

    async def start(self) -> None:
        """Open connections or files; called once before the first send."""

    @abc.abstractmethod
    async def send(self, batch: list[Envelope]) -> Outcome:
        """Deliver the batch. Raise nothing for a vendor's answer; return its Outcome instead.
        Exceptions (network errors, timeouts) are treated as retryable by the engine."""

    async def close(self) -> None:
        """Flush and release resources; called once at shutdown or when removed by a reload."""
