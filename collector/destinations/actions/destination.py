"""ActionDestination: the class a vendor subclasses (see the package docstring for an example),
and what it does with a batch.

For each event, every subscription whose trigger matches maps the event into its action's
payload, validated against the action's fields, ``hashed`` fields normalised and hashed (a value
already hashed is kept). Payloads are grouped by subscription and the resolved values of the
action's ``batch_keys``, cut into requests of ``batch_size`` and performed, up to
``parallel_requests`` at a time; requests that carry one user's events go one after another, in
order, and a later event of a user whose event will be retried is held back with it. Each perform
returns one Outcome per item; an event's outcome is the worst of its actions' outcomes: reject >
retry > ok. An invalid payload rejects that event alone, naming the fields at fault; an exception
in perform is a retry of its items. An event that no subscription takes is counted
(``collector_destination_unmatched_total``), logged (the first few a minute) and passed. When an
event is retried, the actions that already took it are not performed again.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

import aiohttp
import msgspec
import msgspec.inspect as mi

from collector.destinations.actions.auth import AuthError, bearer, redact
from collector.destinations.actions.context import ActionContext, DestinationPaused, Response
from collector.destinations.actions.fields import PayloadError
from collector.destinations.actions.filters import compiled_filters
from collector.destinations.actions.ratelimit import Pause, TokenBucket
from collector.destinations.actions.settings import ConfigProblem, MappingConfig, SettingsError
from collector.destinations.actions.subscriptions import (
    Action,
    ActionItem,
    Preset,
    Subscription,
    compiled_subscriptions,
)
from collector.destinations.base import (
    DELIVERED,
    SKIPPED,
    BuildContext,
    Destination,
    DestinationConfig,
    Envelope,
    Outcome,
    PositiveInt,
    outcomes,
    parse_retry_after,
    retry,
    worst,
)

log = logging.getLogger(__name__)

# What a vendor module imports from here.
__all__ = [
    "Action", "ActionContext", "ActionDestination", "ActionItem", "ActionSettings", "DestinationPaused",
    "Preset", "Response", "settings_problems",
]

# Unmatched events logged per destination and minute; the rest are only counted.
_UNMATCHED_LOGGED_PER_MINUTE = 5
# Events remembered with the actions that already took them, while they wait to be retried.
_MAX_REMEMBERED = 100_000


class ActionSettings(DestinationConfig, kw_only=True):
    """The settings every action destination has, besides its vendor's (a vendor's ``Config``
    subclasses this with ``tag="<type>", kw_only=True``)."""

    # Subscriptions written in the config; see MappingConfig for how they replace or add to presets.
    mappings: list[MappingConfig] = []
    # The presets in force: true (all), false (none), or the names of those to keep.
    presets: bool | list[str] = True
    # scheme://host[:port] that replaces the vendor's (a regional host, a proxy, a test double);
    # the path stays the vendor's.
    endpoint: str | None = None
    # Requests a second to the vendor, shared by every lane (null: no limit).
    rate_limit: Annotated[float, msgspec.Meta(gt=0)] | None = None
    # Requests one batch may have in flight at once.
    parallel_requests: PositiveInt = 8

    # The destination class these settings belong to (set by ActionDestination.__init_subclass__).
    destination: ClassVar[type[ActionDestination]]


def endpoint_origin(url: str) -> str | None:
    """``scheme://host[:port]`` of an ``endpoint`` setting; None when it is not only that."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a bad port
    except ValueError:
        return None
    if (parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/")
            or parts.query or parts.fragment or parts.username is not None):
        return None
    return f"{parts.scheme}://{parts.netloc}"


def _endpoint_problems(config: ActionSettings) -> list[ConfigProblem]:
    if config.endpoint is None or endpoint_origin(config.endpoint) is not None:
        return []
    return [ConfigProblem(("endpoint",), "expected scheme://host[:port] such as https://eu.example.com, with no "
                                         f"path (the vendor's path is kept), got {config.endpoint!r}")]


def settings_problems(config: DestinationConfig) -> list[ConfigProblem]:
    """Compile a destination's filters and, for an action destination, its subscriptions (kept on
    the config for the destination built from it); every problem found, for the config loader."""
    problems: list[ConfigProblem] = []
    try:
        compiled_filters(config)
    except SettingsError as error:
        problems += error.problems
    if isinstance(config, ActionSettings):
        problems += _endpoint_problems(config)
        try:
            compiled_subscriptions(config)
        except SettingsError as error:
            problems += error.problems
    return problems


# --- The destination -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Work:
    """An event's payload for one subscription, waiting for its request."""

    event_index: int
    subscription: Subscription
    item: ActionItem
    user: str


class ActionDestination(Destination):
    """Subclass per vendor: ``Config`` (an ActionSettings), ``display_name``, ``default_endpoint``,
    ``actions``, ``presets``; optionally ``headers()``, ``token_source_for()``, ``vendor_endpoint()``,
    ``auth_headers(token)``."""

    Config: ClassVar[type[ActionSettings]]
    default_endpoint: ClassVar[str]
    actions: ClassVar[tuple[Action, ...]] = ()
    presets: ClassVar[tuple[Preset, ...]] = ()
    config: ActionSettings

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "Config" in cls.__dict__:
            cls.Config.destination = cls

    def __init__(self, name: str, config: ActionSettings, context: BuildContext) -> None:
        super().__init__(name, config, context)
        self.subscriptions = compiled_subscriptions(config, type(self))
        self.pause = Pause()
        self.bucket = TokenBucket(config.rate_limit) if config.rate_limit is not None else None
        self.timeout = aiohttp.ClientTimeout(total=config.timeout)
        endpoint_problems = _endpoint_problems(config)
        if endpoint_problems:
            raise SettingsError(endpoint_problems)
        # The endpoint setting's scheme, host and port, which replace those of every URL.
        self.origin = endpoint_origin(config.endpoint) if config.endpoint is not None else None
        self.base_url = self.origin or self.vendor_endpoint().rstrip("/")
        self.base_headers: dict[str, str] = dict(self.headers())
        self.token_source = self.token_source_for()
        self._secrets = _secrets_of(config, self.base_headers)
        self._remembered: dict[int, set[int]] = {}
        self._unmatched = _UnmatchedLog(name, config.__struct_config__.tag)
        self._m_unmatched: Any = None

    # -- what a vendor may override ----------------------------------------------------------------

    def vendor_endpoint(self) -> str:
        """scheme://host[:port] of the vendor's API for these settings (e.g. by region)."""
        return self.default_endpoint

    def headers(self) -> Mapping[str, str]:
        """Headers on every request (API keys, Basic auth); read once, when built."""
        return {}

    def token_source_for(self) -> Any:
        """An OAuth2RefreshToken or JWTBearer (collector.destinations.actions.auth) when the vendor
        takes access tokens; None otherwise. Built without network."""
        return None

    def auth_headers(self, token: str) -> Mapping[str, str]:
        return {"Authorization": bearer(token)}

    # -- what the engine calls ---------------------------------------------------------------------

    @property
    def send_timeout(self) -> float | None:
        return None  # each request has the timeout; a batch may take many, and wait for the rate limit

    def bind_metrics(self, metrics: Any) -> None:
        self._m_unmatched = metrics.unmatched_events.labels(self.name)

    async def send(self, batch: list[Envelope]) -> Outcome:
        # Per event: (subscription index, outcome) of each action it went to.
        answers: list[list[tuple[int, Outcome]]] = [[] for _ in batch]
        work: list[_Work] = []
        unmatched = 0
        remembered = self._remembered
        for i, envelope in enumerate(batch):
            event = envelope.event
            taken = remembered.get(envelope.seq)
            matched = False
            for subscription in self.subscriptions:
                if not subscription.matches(event):
                    continue
                matched = True
                if taken is not None and subscription.index in taken:
                    continue
                try:
                    payload = subscription.prepare(event)
                except PayloadError as error:
                    reason = f"invalid payload: {'; '.join(error.problems)}"
                    answers[i].append((subscription.index, self._refusal(subscription, reason)))
                    continue
                except Exception as error:  # a mapping that fails on this event: a bug to fix, then replay
                    reason = f"mapping failed: {type(error).__name__}: {error}"
                    answers[i].append((subscription.index, self._refusal(subscription, reason)))
                    continue
                work.append(_Work(i, subscription, ActionItem(payload, event, envelope), envelope.user_key))
            if not matched:
                unmatched += 1
                answers[i].append((-1, SKIPPED))
                self._unmatched.note(event)
        if unmatched and self._m_unmatched is not None:
            self._m_unmatched.inc(unmatched)
        if work:
            for piece, answer in await self._perform_all(work):
                answers[piece.event_index].append((piece.subscription.index, answer))
        return outcomes([self._settle(envelope, mine) for envelope, mine in zip(batch, answers)])

    def _refusal(self, subscription: Subscription, reason: str) -> Outcome:
        return Outcome("reject", self.redact(f"{_label(subscription)}: {reason}"))

    def _settle(self, envelope: Envelope, answers: list[tuple[int, Outcome]]) -> Outcome:
        """The event's outcome, the worst of its actions' (reject > retry > ok); remembers which
        actions took an event that will be retried, so that they are not performed again."""
        if not answers:  # every matching action took it in an earlier attempt
            self._remembered.pop(envelope.seq, None)
            return DELIVERED
        result = worst([outcome for _, outcome in answers])
        if result.kind == "retry":
            taken = self._remembered.setdefault(envelope.seq, set())
            taken.update(index for index, outcome in answers if outcome.kind == "ok")
            if len(self._remembered) > _MAX_REMEMBERED:  # forget the oldest: at worst, a repeat
                del self._remembered[next(iter(self._remembered))]
        else:
            self._remembered.pop(envelope.seq, None)
        return result

    # -- performing ---------------------------------------------------------------------------------

    async def _perform_all(self, work: list[_Work]) -> list[tuple[_Work, Outcome]]:
        """Perform every request, ``parallel_requests`` at a time; a request waits for the earlier
        ones that carry an event of the same user, and a later event of a user whose event will be
        retried is held back (retried with it) rather than overtaking it."""
        chunks = _chunks(work)
        semaphore = asyncio.Semaphore(self.config.parallel_requests)
        retrying_users: dict[str, int] = {}  # user -> the first of their events to be retried
        results: list[tuple[_Work, Outcome]] = []
        last_of_user: dict[str, asyncio.Task] = {}
        tasks = []
        for chunk in chunks:
            after = {last_of_user[piece.user] for piece in chunk if piece.user in last_of_user}
            task = asyncio.ensure_future(self._perform_chunk(chunk, after, semaphore, retrying_users, results))
            for piece in chunk:
                last_of_user[piece.user] = task
            tasks.append(task)
        await asyncio.gather(*tasks)
        return results

    async def _perform_chunk(self, chunk: list[_Work], after: set[asyncio.Task], semaphore: asyncio.Semaphore,
                             retrying_users: dict[str, int], results: list[tuple[_Work, Outcome]]) -> None:
        if after:
            await asyncio.wait(after)
        if retrying_users:
            held = [p for p in chunk if retrying_users.get(p.user, p.event_index) < p.event_index]
            if held:
                chunk = [p for p in chunk if p not in held]
                wait = retry("held back behind an earlier event of the same user, to keep their order")
                results += [(piece, wait) for piece in held]
        if chunk:
            async with semaphore:
                answers = await self._perform(chunk)
            for piece, answer in zip(chunk, answers):
                if answer.kind == "retry":
                    retrying_users[piece.user] = min(retrying_users.get(piece.user, piece.event_index),
                                                     piece.event_index)
                results.append((piece, answer))

    async def _perform(self, chunk: list[_Work]) -> list[Outcome]:
        subscription = chunk[0].subscription
        context = ActionContext(self, subscription)
        items = [piece.item for piece in chunk]
        answers = await self._call(context, items)
        if (self.token_source is not None and not context.refreshed and context.token is not None
                and any(a.credentials_refused for a in answers)):
            # Refused per item: one new token, one more try for those items, in this attempt only.
            self.token_source.invalidate(context.token)
            context.refreshed = True
            again = [i for i, a in enumerate(answers) if a.credentials_refused]
            second = await self._call(context, [items[i] for i in again])
            for i, answer in zip(again, second):
                answers[i] = answer
        return answers

    async def _call(self, context: ActionContext, items: list[ActionItem]) -> list[Outcome]:
        action = context.action
        label = _label(context.subscription)
        try:
            answers = await action.perform(context, items)
        except asyncio.CancelledError:
            raise
        except DestinationPaused as paused:
            return [retry(f"{label}: {paused}", paused.seconds)] * len(items)
        except AuthError as error:
            return [retry(self.redact(f"{label}: {error}"), error.retry_after)] * len(items)
        except asyncio.TimeoutError:
            return [retry(f"{label}: no answer within {self.config.timeout:g}s")] * len(items)
        except Exception as error:  # network, TLS, DNS, or the vendor module's own bug
            error.__traceback__ = None
            return [retry(self.redact(f"{label}: {type(error).__name__}: {error}"))] * len(items)
        if not isinstance(answers, list) or len(answers) != len(items):
            count = len(answers) if isinstance(answers, list) else type(answers).__name__
            log.error("%s: %s answered %s outcomes for %d events", self.name, label, count, len(items),
                      extra={"destination": self.name})
            return [retry(f"{label}: answered {count} outcomes for {len(items)} events")] * len(items)
        return [a if a.kind in ("ok", "skip") else self._explained(label, a) for a in answers]

    def _explained(self, label: str, outcome: Outcome) -> Outcome:
        """A failure as the dead-letter store and the logs show it: named after its action and
        subscription, and without secrets."""
        if outcome.kind == "mixed":  # one outcome per item is expected; a nested batch is a bug
            return retry(f"{label}: answered 'mixed' for one event")
        reason = self.redact(f"{label}: {outcome.reason}" if outcome.reason else label)
        return Outcome(outcome.kind, reason, outcome.retry_after, outcome.split, (), outcome.credentials_refused)

    # -- requests -----------------------------------------------------------------------------------

    def url(self, path_or_url: str) -> str:
        if path_or_url.startswith(("http://", "https://")):
            if self.origin is None:
                return path_or_url
            parts = urllib.parse.urlsplit(path_or_url)
            return self.origin + parts.path + (f"?{parts.query}" if parts.query else "")
        return self.base_url + path_or_url

    async def wait_turn(self) -> None:
        """Before each request: refuse while paused, then take a token of the rate limit."""
        remaining = self.pause.remaining()
        if remaining > 0:
            raise DestinationPaused(remaining)
        if self.bucket is not None:
            await self.bucket.acquire()
            remaining = self.pause.remaining()  # the pause may have begun while this waited
            if remaining > 0:
                raise DestinationPaused(remaining)

    def note_answer(self, response: Response) -> None:
        """A 429, or any refusal with Retry-After, pauses every request of the destination."""
        if response.status < 400:
            return
        after = parse_retry_after(response.headers.get("Retry-After"))
        if response.status == 429 and after is None:
            after = float(self.config.retry.initial_backoff)
        if after:
            self.pause.extend(after)

    def redact(self, text: str) -> str:
        secrets = self._secrets
        if self.token_source is not None:
            secrets = secrets | set(self.token_source.sensitive_values())
        return redact(text, secrets)


def _label(subscription: Subscription) -> str:
    return f"{subscription.action.name} ({subscription.name})"


def _chunks(work: list[_Work]) -> list[list[_Work]]:
    """Requests: grouped by subscription and batch key, cut to the action's batch_size, in the
    order of their first event."""
    groups: dict[tuple, list[_Work]] = {}
    for piece in work:
        subscription = piece.subscription
        key = subscription.batch_key(piece.item.payload) if subscription.batch_key is not None else None
        groups.setdefault((subscription.index, key), []).append(piece)
    chunks = []
    for pieces in groups.values():
        size = pieces[0].subscription.action.batch_size or 1
        chunks += [pieces[start:start + size] for start in range(0, len(pieces), size)]
    chunks.sort(key=lambda chunk: chunk[0].event_index)
    return chunks


class _UnmatchedLog:
    """Logs the first few events a minute that no subscription took, then only how many more."""

    def __init__(self, destination: str, type_name: str) -> None:
        self.destination = destination
        self.type_name = type_name
        self.window_start = -math.inf
        self.seen = 0

    def note(self, event: dict) -> None:
        now = time.monotonic()
        if now - self.window_start >= 60:
            if self.seen > _UNMATCHED_LOGGED_PER_MINUTE:
                log.warning("%s: %d more events matched no mapping in the last minute", self.destination,
                            self.seen - _UNMATCHED_LOGGED_PER_MINUTE, extra={"destination": self.destination})
            self.window_start = now
            self.seen = 0
        self.seen += 1
        if self.seen <= _UNMATCHED_LOGGED_PER_MINUTE:
            name = event.get("event") if event.get("type") == "track" else event.get("name")
            log.warning("%s: no mapping matched a %s event%s; it is not sent (see collector destinations %s)",
                        self.destination, event.get("type"), f" named {name!r}" if name else "",
                        self.type_name, extra={"destination": self.destination, "event_type": event.get("type"),
                                                 "event_name": name})


def _secrets_of(config: msgspec.Struct, headers: Mapping[str, str]) -> set[str]:
    """The values to keep out of every reason and log line: settings typed Secret (at any depth),
    credentials in the headers, and their URL-encoded forms."""
    found: set[str] = set()
    _collect_secrets(config, mi.type_info(type(config)), found)
    for name, value in headers.items():
        lowered = name.lower()
        if lowered == "authorization" or any(word in lowered for word in ("key", "token", "secret")):
            found.add(value)
            found.add(value.partition(" ")[2])
    found |= {urllib.parse.quote(s, safe="") for s in found} | {urllib.parse.quote_plus(s) for s in found}
    return {s for s in found if len(s) >= 4}


def _collect_secrets(value: Any, info: Any, found: set[str]) -> None:
    if isinstance(info, mi.Metadata):
        if (info.extra or {}).get("secret") and isinstance(value, str):
            found.add(value)
            return
        info = info.type
    if isinstance(info, mi.UnionType):
        for member in info.types:
            _collect_secrets(value, member, found)
    elif isinstance(info, mi.StructType) and isinstance(value, msgspec.Struct):
        for field in info.fields:
            _collect_secrets(getattr(value, field.name), field.type, found)
    elif isinstance(info, (mi.ListType, mi.VarTupleType)) and isinstance(value, (list, tuple)):
        for item in value:
            _collect_secrets(item, info.item_type, found)
    elif isinstance(info, mi.DictType) and isinstance(value, dict):
        for item in value.values():
            _collect_secrets(item, info.value_type, found)
