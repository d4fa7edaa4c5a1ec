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
            owners = [item for item in items for _ in self.parts[item]]  # record index -> item
            if status == 400:
                refused = _credentials_refused(body)
                if refused is not None:
                    return self._settle(items, refused)
                named = refused_records(body)
                bad = {owners[i] for i in named if 0 <= i < len(owners)}
                if bad:
                    for index, words in sorted(named.items()):
                        if 0 <= index < len(owners) and self.outcomes[owners[index]] is None:
                            record = self._record(owners, index)
                            self.outcomes[owners[index]] = reject(
                                f"Amplitude refused {self.labels[owners[index]]}{record} (HTTP 400): {'; '.join(words)}")
                    items = [item for item in items if item not in bad]
                    continue
            if status in (400, 413):
                if len(items) > 1:
                    half = len(items) // 2
                    await self._send(method, url, items[:half])
                    await self._send(method, url, items[half:])
                    return None
                if status == 413:
                    return self._settle(items, reject(f"Amplitude refused it as too large (HTTP 413): "
                                                      f"{self.size(items[0]) + self.envelope} bytes"))
                return self._settle(items, reject(_refusal_without_names(answer, body)))
            if status == 429:
                flat = [record for item in items for record in self.records[item]]
                named = throttled_records(body, flat)
                throttled: dict[int, str] = {}
                for index, why in named.items():
                    throttled.setdefault(owners[index], why)
                rest = [item for item in items if item not in throttled]
                if throttled and rest:
                    after = self.ctx.classify(answer).retry_after
                    for item, why in throttled.items():
                        self.outcomes[item] = retry(f"HTTP 429: {why}", after)
                    wait = self.ctx.destination.pause.remaining()
                    if wait > MAX_WAIT_IN_ATTEMPT:
                        return self._settle(rest, retry(f"HTTP 429 for other users of the request; sent again "
                                                        f"after the pause ({wait:.0f}s)"))
                    await asyncio.sleep(wait)
                    items = rest
                    continue
                if throttled:
                    after = self.ctx.classify(answer).retry_after
                    for item, why in throttled.items():
                        self.outcomes[item] = retry(f"HTTP 429: {why}", after)
                    return None
            return self._settle(items, self.ctx.classify(answer))
        return None

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
