"""Requests to Amplitude's ingestion APIs, and their answers read into one Outcome per item.

Events go to the HTTP V2 API (``/2/httpapi``, or ``/batch``) as ``{api_key, events, options}``,
packed by item (a purchase and its products travel together) within 2,000 events and the
endpoint's byte limit (1 MB for /2/httpapi, 20 MB for /batch). Identifications and user mappings
go form-encoded to ``/identify``, ``/groupidentify`` and ``/usermap``, as JSON arrays.

Amplitude refuses a whole request for one bad event and ingests none of it. Its 400 names the bad
events by index (``events_with_missing_fields``, ``events_with_invalid_fields``,
``events_with_invalid_id_lengths``, ``silenced_events``): those items are rejected with
Amplitude's words and the rest is **sent again at once, within the same attempt**, rather than
answered "retry". A retry would hold the good events back for a backoff, and with them every later
event of their users (the layer keeps a user's order); resending costs one request, and repeats
are harmless (nothing of a refused request was ingested, and insert_id deduplicates anyway).
A 400 that names no event, or a 413, is halved until the refused items stand alone (the form
endpoints never name one).

A 429 names the throttled users and devices (over 30 events a second, or over the daily
quota): their items are retried with backoff, the rest is sent again once the pause the 429 set
(Retry-After, else the destination's initial backoff) is over. An unknown or missing api_key is
a 400 at Amplitude: it is retried as a credentials problem (the operator's to fix), not
dead-lettered. 5xx and timeouts are retried.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import msgspec

from collector.destinations.actions.context import ActionContext, DestinationPaused, Response
from collector.destinations.base import DELIVERED, Outcome, reject, retry

MAX_EVENTS = 2000  # per HTTP V2 or Batch API request
HTTPAPI_MAX_BYTES = 1_000_000
BATCH_MAX_BYTES = 20_000_000
FORM_MAX_BYTES = 1_000_000  # not documented for /identify; kept like the HTTP V2 API's
FORM_MAX_RECORDS = 100  # not documented either; small, since a refused form request names nobody
# Wait this long at most, inside one attempt, for a 429's pause before sending the rest again.
MAX_WAIT_IN_ATTEMPT = 60.0
_REFUSAL_LISTS = ("events_with_missing_fields", "events_with_invalid_fields", "events_with_invalid_id_lengths")
_JSON = {"Content-Type": "application/json"}
_encode = msgspec.json.Encoder().encode


async def _request(ctx: ActionContext, method: str, url: str, **kwargs: Any) -> Response | Outcome:
    """The answer, or the Outcome of a request that got none (kept apart from the outcomes
    already known for other items, which an exception out of perform would lose)."""
    try:
        return await ctx.request(method, url, **kwargs)
    except asyncio.CancelledError:
        raise
    except DestinationPaused as paused:
        return retry(str(paused), paused.seconds)
    except asyncio.TimeoutError:
        return retry(f"no answer within {ctx.settings.timeout:g}s")
    except (aiohttp.ClientError, OSError) as error:
        return retry(f"{type(error).__name__}: {error}")


def _options(ctx: ActionContext) -> dict[str, int] | None:
    length = ctx.settings.min_id_length
    return {"min_id_length": length} if length is not None else None


# --- Reading answers ---------------------------------------------------------------------------------


def _body(response: Response) -> dict:
    answer = response.json()
    return answer if isinstance(answer, dict) else {}


def _credentials_refused(answer: dict) -> Outcome | None:
    error = str(answer.get("error", ""))
    if error.startswith("Invalid API key") or answer.get("missing_field") == "api_key":
        reason = "Invalid API key" if error.startswith("Invalid API key") else "missing api_key"
        return retry(f"credentials refused (HTTP 400: {reason}); check the destination's api_key")
    return None


def refused_records(answer: dict) -> dict[int, list[str]]:
    """Index of each record a 400 names -> what Amplitude says of it, in its own terms."""
    named: dict[int, list[str]] = {}
    for key in _REFUSAL_LISTS:
        lists = answer.get(key)
        if not isinstance(lists, dict):
            continue
        for field, indices in lists.items():
            for index in indices if isinstance(indices, list) else ():
                if type(index) is int:
                    named.setdefault(index, []).append(f"{key}: {field}")
    silenced = answer.get("silenced_events")
    if isinstance(silenced, list):
        for index in silenced:
            if type(index) is int:
                named.setdefault(index, []).append(str(answer.get("error") or "silenced_events"))
    return named


def throttled_records(answer: dict, records: list[dict]) -> dict[int, str]:
    """Index of each record a 429 names -> why: per-second throttling or the daily quota."""
    indices = answer.get("throttled_events")
    if not isinstance(indices, list):
        return {}
    quota_users = answer.get("exceeded_daily_quota_users") or {}
    quota_devices = answer.get("exceeded_daily_quota_devices") or {}
    named = {}
    for index in indices:
        if type(index) is not int or not 0 <= index < len(records):
            continue
        record = records[index]
        over_quota = record.get("user_id") in quota_users or record.get("device_id") in quota_devices
        named[index] = ("its user or device is over Amplitude's daily quota" if over_quota
                        else "its user or device is throttled (over Amplitude's events a second per ID)")
    return named


def _refusal_without_names(response: Response, answer: dict) -> str:
    what = answer.get("error") or response.text[:200]
    return f"Amplitude refused it (HTTP {response.status}): {what}".rstrip(": ")


# --- Sending records ----------------------------------------------------------------------------------


class _Sender:
    """Sends the records of a perform's items, packed into requests, and settles each item:
    the answer-reading loop shared by the event and the form endpoints."""

    def __init__(self, ctx: ActionContext, records: list[list[dict]], labels: list[str],
                 build: Callable[[list[int]], Any], max_records: int, max_bytes: int, envelope: int) -> None:
        self.ctx = ctx
        self.records = records  # per item
        self.labels = labels
        self.build = build  # item indices -> the request's keyword arguments for ctx.request
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.envelope = envelope  # bytes every request has besides its records
        self.parts = [[_encode(r) for r in item_records] for item_records in records]
        self.outcomes: list[Outcome | None] = [None] * len(records)

    def size(self, item: int) -> int:
        return sum(len(part) + 1 for part in self.parts[item])

    def pack(self) -> list[list[int]]:
        """Requests within the limits, items in order; an item too large alone is rejected."""
        requests: list[list[int]] = []
        current: list[int] = []
        count = size = 0
        for item, parts in enumerate(self.parts):
            item_size = self.size(item)
            if len(parts) > self.max_records or item_size + self.envelope > self.max_bytes:
                self.outcomes[item] = reject(
                    f"{len(parts)} records, {item_size + self.envelope} bytes: over Amplitude's "
                    f"{self.max_records} records or {self.max_bytes} bytes a request")
                continue
            if current and (count + len(parts) > self.max_records or size + item_size + self.envelope > self.max_bytes):
                requests.append(current)
                current, count, size = [], 0, 0
            current.append(item)
            count += len(parts)
            size += item_size
        if current:
            requests.append(current)
        return requests

    async def run(self, method: str, url: str) -> list[Outcome]:
        for items in self.pack():
            await self._send(method, url, items)
        return [outcome if outcome is not None else retry("not sent") for outcome in self.outcomes]

    def _settle(self, items: list[int], outcome: Outcome) -> None:
        for item in items:
            self.outcomes[item] = outcome

    async def _send(self, method: str, url: str, items: list[int]) -> None:
        while items:
            answer = await _request(self.ctx, method, url, **self.build(items))
            if isinstance(answer, Outcome):
                return self._settle(items, answer)
            status = answer.status
            if 200 <= status < 300:
                return self._settle(items, DELIVERED)
            body = _body(answer)
            if status == 400 and (refused := _credentials_refused(body)) is not None:
                return self._settle(items, refused)
            if status == 400 and (rest := self._reject_named(items, body)) is not None:
                items = rest
                continue
            if status in (400, 413):
                return await self._halve(method, url, items, answer, body)
            if status == 429 and (rest := await self._retry_throttled(items, answer, body)) is not None:
                items = rest
                continue
            return self._settle(items, self.ctx.classify(answer))
        return None

    def _owners(self, items: list[int]) -> list[int]:
        """Record index in a request of these items -> its item."""
        return [item for item in items for _ in self.parts[item]]

    def _reject_named(self, items: list[int], body: dict) -> list[int] | None:
        """Rejects the items whose records a 400 names; the others, to send again (None: it
        names none)."""
        owners = self._owners(items)
        named = {index: words for index, words in refused_records(body).items() if 0 <= index < len(owners)}
        if not named:
            return None
        for index, words in sorted(named.items()):
            item = owners[index]
            if self.outcomes[item] is None:  # an item of several records: the first named one says why
                where = f"{self.labels[item]}{self._record(owners, index)}"
                self.outcomes[item] = reject(f"Amplitude refused {where} (HTTP 400): {'; '.join(words)}")
        bad = {owners[index] for index in named}
        return [item for item in items if item not in bad]

    async def _halve(self, method: str, url: str, items: list[int], answer: Response, body: dict) -> None:
        """A 413, or a 400 that names no record: each half on its own, until one item stands alone."""
        if len(items) > 1:
            half = len(items) // 2
            await self._send(method, url, items[:half])
            await self._send(method, url, items[half:])
        elif answer.status == 413:
            self._settle(items, reject(f"Amplitude refused it as too large (HTTP 413): "
                                       f"{self.size(items[0]) + self.envelope} bytes"))
        else:
            self._settle(items, reject(_refusal_without_names(answer, body)))

    async def _retry_throttled(self, items: list[int], answer: Response, body: dict) -> list[int] | None:
        """Retries the items whose user or device a 429 names; the others, to send again once
        the pause the 429 set is over ([] when it is too long to wait here; None: it names none)."""
        owners = self._owners(items)
        flat = [record for item in items for record in self.records[item]]
        throttled: dict[int, str] = {}
        for index, why in throttled_records(body, flat).items():
            throttled.setdefault(owners[index], why)
        if not throttled:
            return None
        after = self.ctx.classify(answer).retry_after
        for item, why in throttled.items():
            self.outcomes[item] = retry(f"HTTP 429: {why}", after)
        rest = [item for item in items if item not in throttled]
        if not rest:
            return rest
        wait = self.ctx.paused_for()
        if wait > MAX_WAIT_IN_ATTEMPT:
            self._settle(rest, retry(f"not sent: HTTP 429 for other users of the request, and a pause of {wait:.0f}s"))
            return []
        await asyncio.sleep(wait)
        return rest

    def _record(self, owners: list[int], index: int) -> str:
        """' (its event 2 of 3, "Product Purchased")' for an item of several records, else ''."""
        item = owners[index]
        count = len(self.parts[item])
        if count == 1:
            return ""
        position = index - owners.index(item)
        kind = self.records[item][position].get("event_type")
        return f" (its record {position + 1} of {count}{f', {kind!r}' if kind else ''})"


async def send_events(ctx: ActionContext, records: list[list[dict]], labels: list[str]) -> list[Outcome]:
    """Each item's events to the HTTP V2 API (or /batch with use_batch_endpoint)."""
    settings = ctx.settings
    batch = settings.use_batch_endpoint
    head = b'{"api_key":' + _encode(settings.api_key) + b',"events":['
    options = _options(ctx)
    tail = b"]" + (b',"options":' + _encode(options) if options else b"") + b"}"
    sender: _Sender

    def build(indices: list[int]) -> dict[str, Any]:
        body = head + b",".join(part for i in indices for part in sender.parts[i]) + tail
        return {"data": body, "headers": _JSON}

    sender = _Sender(ctx, records, labels, build, MAX_EVENTS, BATCH_MAX_BYTES if batch else HTTPAPI_MAX_BYTES,
                     len(head) + len(tail))
    return await sender.run("POST", "/batch" if batch else "/2/httpapi")


async def send_form(ctx: ActionContext, url: str, field: str, records: list[dict], labels: list[str]) -> list[Outcome]:
    """One record per item, as a JSON array in the form field ``field`` (with api_key, and
    options when min_id_length is set)."""
    settings = ctx.settings
    options = _options(ctx)
    sender: _Sender

    def build(indices: list[int]) -> dict[str, Any]:
        form = {"api_key": settings.api_key,
                field: (b"[" + b",".join(sender.parts[i][0] for i in indices) + b"]").decode()}
        if options:
            form["options"] = _encode(options).decode()
        return {"data": form}

    envelope = len(settings.api_key) + len(field) + 64
    sender = _Sender(ctx, [[record] for record in records], labels, build, FORM_MAX_RECORDS, FORM_MAX_BYTES, envelope)
    return await sender.run("POST", url)
