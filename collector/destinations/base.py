"""What every destination is: a typed config, and a class that turns a batch into vendor requests.

A destination knows only its vendor. The delivery engine (``collector/delivery``) owns batching,
concurrency, per-user order, retries, backoff, give-up and dead letters; it calls ``send`` with a
batch and acts on the ``Outcome`` it gets back: one for the batch, or one per event
(``outcomes(list)`` builds either).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal

import aiohttp
import msgspec

from collector.config.units import ByteSize, Duration
from collector.destinations.actions.settings import FilterConfig

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


class DestinationConfig(msgspec.Struct, tag_field="type", forbid_unknown_fields=True, kw_only=True, dict=True):
    """Settings every destination has; each destination subclasses this with
    ``tag="<type>", kw_only=True`` (msgspec does not inherit kw_only, and without it a required
    vendor field could not follow these optional ones).

    ``dict=True`` lets the config loader keep what it compiled from the settings (filters,
    subscriptions) on the instance, so that the destination built from it does not compile again.
    """

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
    # Destination filters (collector/destinations/actions/filters.py): drop, sample, or remove
    # properties from the events routed here, before the destination sees them.
    filters: list[FilterConfig] = []


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
    """What became of a batch: delivered, retry later, rejected for good, or (``mixed``) one
    outcome per event in ``per_event``, aligned with the batch.

    ``skip`` is an event handled without being sent (no action of the destination wanted it):
    the cursor passes it, but it does not count as delivered.
    """

    kind: Literal["ok", "retry", "reject", "skip", "mixed"]
    reason: str = ""
    retry_after: float | None = None
    # For a rejection: the vendor may have refused some events only (e.g. a 400 for one bad
    # event), so the engine splits the batch to find them, rather than dead-letter it whole.
    split: bool = False
    per_event: tuple[Outcome, ...] = ()
    # The vendor refused the credentials (HTTP 401): a destination with refreshable tokens gets
    # a new one and tries once more.
    credentials_refused: bool = False

    @property
    def ok(self) -> bool:
        return self.kind == "ok"


DELIVERED = Outcome("ok")
SKIPPED = Outcome("skip")


def retry(reason: str, after: float | None = None) -> Outcome:
    return Outcome("retry", reason, after)


def reject(reason: str, split: bool = False) -> Outcome:
    return Outcome("reject", reason, split=split)


def outcomes(per_event: list[Outcome] | tuple[Outcome, ...]) -> Outcome:
    """One outcome for a batch from one per event: a single ok, skip or retry (with the largest
    Retry-After) when they agree, a single reject when every event was refused for the same
    reason, else ``mixed``."""
    if not per_event:
        return DELIVERED
    kinds = {o.kind for o in per_event}
    if len(kinds) == 1:
        kind = kinds.pop()
        first = per_event[0]
        if kind == "ok":
            return DELIVERED
        if kind == "skip":
            return SKIPPED
        if kind == "retry":
            reasons = list(dict.fromkeys(o.reason for o in per_event))
            afters = [o.retry_after for o in per_event if o.retry_after is not None]
            reason = "; ".join(reasons[:3]) + (f" (and {len(reasons) - 3} more)" if len(reasons) > 3 else "")
            return Outcome("retry", reason, max(afters) if afters else None,
                           credentials_refused=any(o.credentials_refused for o in per_event))
        if kind == "reject" and all(o.reason == first.reason for o in per_event):
            return reject(first.reason)
    return Outcome("mixed", per_event=tuple(per_event))


_SEVERITY = {"skip": 0, "ok": 1, "retry": 2, "reject": 3}


def worst(outcomes_of_one_event: list[Outcome]) -> Outcome:
    """The outcome of an event sent as several requests: reject > retry > ok > skip. Reasons of
    the worst kind are joined; a retry keeps the largest Retry-After."""
    top = max(outcomes_of_one_event, key=lambda o: _SEVERITY[o.kind])
    same = [o for o in outcomes_of_one_event if o.kind == top.kind]
    if len(same) == 1:
        return top
    reason = "; ".join(dict.fromkeys(o.reason for o in same if o.reason))
    if top.kind == "retry":
        afters = [o.retry_after for o in same if o.retry_after is not None]
        return Outcome("retry", reason, max(afters) if afters else None,
                       credentials_refused=any(o.credentials_refused for o in same))
    return Outcome(top.kind, reason)


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
        return Outcome("retry", f"credentials refused ({reason}); check the destination's settings",
                       credentials_refused=status == 401)
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

    @property
    def send_timeout(self) -> float | None:
        """How long one ``send`` may take before the engine counts it as failed; None: no limit
        (a destination that bounds each of its own requests, however many a batch takes)."""
        return self.config.timeout

    def bind_metrics(self, metrics: Any) -> None:
        """The engine's metrics (collector.metrics.Metrics), for a destination that counts its own."""

    async def start(self) -> None:
        """Open connections or files; called once before the first send."""

    @abc.abstractmethod
    async def send(self, batch: list[Envelope]) -> Outcome:
        """Deliver the batch. Raise nothing for a vendor's answer; return its Outcome instead.
        Exceptions (network errors, timeouts) are treated as retryable by the engine."""

    async def close(self) -> None:
        """Flush and release resources; called once at shutdown or when removed by a reload."""
