"""The Graph API requests of the Meta actions, and Meta's answers read into one Outcome per event.

Conversions API: ``POST /{api_version}/{pixel_id}/events`` with ``{data: [...], test_event_code?}``.
One invalid event makes Meta refuse the whole request, naming the event's index; that event is
refused (dead-lettered with Meta's message) and the others are sent again at once, in the same
attempt, up to ``MAX_RESENDS`` times; beyond that they are retried later, alone.

Custom Audiences: ``POST`` (add) or ``DELETE`` (remove) ``/{api_version}/{audience_id}/users`` with
``{payload: {schema, data}}``; rows Meta counts as invalid and shows in its samples are refused.

Graph errors (``{"error": {"code", "error_subcode", "message", "error_user_msg", ...}}``):
- 190 and the other token codes, 10 and 200-299 (permissions), and an unknown object (subcode 33,
  a wrong pixel or audience id): the operator's to fix; retried (until ``retry.give_up_after``)
  with the reason, never dead-lettered at once;
- 4, 17, 32, 613 and 80000-80014 (rate limits): retried after the Retry-After, else Meta's
  estimated time to regain access, else ``retry.initial_backoff``; every lane waits;
- 1, 2, 341, ``is_transient``, and any 5xx: retried;
- any other refusal: the events are refused with Meta's message.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp
import msgspec

from collector.destinations.actions.context import ActionContext, DestinationPaused, Response
from collector.destinations.actions.subscriptions import ActionItem
from collector.destinations.base import DELIVERED, Outcome, reject, retry
from collector.destinations.facebook_conversions.audiences import (
    audience_of,
    audience_payload,
    no_audience_reason,
    row_values,
)
from collector.destinations.facebook_conversions.events import server_event

# Requests sent again in one attempt after Meta refused an event by its index.
MAX_RESENDS = 3

TOKEN_CODES = frozenset({102, 104, 190, 463, 467})
PERMISSION_CODES = frozenset({10, *range(200, 300)})
RATE_LIMIT_CODES = frozenset({4, 17, 32, 613, *range(80000, 80015)})
TRANSIENT_CODES = frozenset({1, 2, 341})
UNKNOWN_OBJECT_SUBCODE = 33

_INDEX = re.compile(r"\b(?:index|data\[)\s*(\d+)", re.IGNORECASE)


# --- Reading Meta's answers ------------------------------------------------------------------------


class GraphError(msgspec.Struct):
    code: int | None = None
    error_subcode: int | None = None
    message: str = ""
    error_user_title: str | None = None
    error_user_msg: str | None = None
    is_transient: bool | None = None
    error_data: Any = None


class _ErrorAnswer(msgspec.Struct):
    error: GraphError


def graph_error(response: Response) -> GraphError | None:
    try:
        return msgspec.json.decode(response.body, type=_ErrorAnswer).error
    except msgspec.DecodeError:
        return None


def describe(error: GraphError) -> str:
    """Meta's words: the code, the title and the user message (else the message)."""
    code = f"#{error.code}" + (f"/{error.error_subcode}" if error.error_subcode is not None else "")
    words = [text for text in (error.error_user_title, error.error_user_msg or error.message) if text]
    return f"Meta error {code}: {' - '.join(words)}"


def refused_index(error: GraphError) -> int | None:
    """The index of the event Meta names as the reason it refused the request, if it names one."""
    data = error.error_data
    if isinstance(data, str):
        try:
            data = msgspec.json.decode(data)
        except msgspec.DecodeError:
            data = None
    if isinstance(data, dict) and isinstance(data.get("event_index"), int):
        return data["event_index"]
    for text in (error.error_user_msg, error.message):
        match = _INDEX.search(text or "")
        if match:
            return int(match.group(1))
    return None


def _rate_limit_wait(ctx: ActionContext, response: Response) -> float:
    """Retry-After, else Meta's estimated minutes to regain access, else the initial backoff."""
    after = ctx.classify(response).retry_after
    if after:
        return after
    minutes = 0.0
    for header in ("X-Business-Use-Case-Usage", "X-Ad-Account-Usage", "X-App-Usage"):
        usage = response.headers.get(header)
        if usage:
            minutes = max(minutes, _estimated_minutes(usage))
    return minutes * 60 if minutes > 0 else float(ctx.settings.retry.initial_backoff)


def _estimated_minutes(header: str) -> float:
    try:
        usage = msgspec.json.decode(header)
    except msgspec.DecodeError:
        return 0.0
    found: list[float] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                if key == "estimated_time_to_regain_access" and isinstance(inner, (int, float)):
                    found.append(float(inner))
                else:
                    walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)

    walk(usage)
    return max(found, default=0.0)


def classify(ctx: ActionContext, response: Response, error: GraphError | None) -> Outcome:
    """Meta's answer to a whole request, as the outcome of each of its events."""
    status = response.status
    if 200 <= status < 300:
        return DELIVERED
    if error is None:
        return ctx.classify(response)
    code = error.code
    reason = describe(error)
    if code in TOKEN_CODES or status == 401:
        return Outcome("retry", f"credentials refused ({reason}); check the destination's access_token",
                       credentials_refused=True)
    if code in RATE_LIMIT_CODES or status == 429:
        wait = _rate_limit_wait(ctx, response)
        ctx.pause(wait)  # throttled: the other lanes wait too
        return retry(f"rate limited ({reason})", wait)
    if code in TRANSIENT_CODES or error.is_transient or status >= 500:
        return retry(reason, ctx.classify(response).retry_after)
    if code in PERMISSION_CODES or status == 403:
        return retry(f"permission refused ({reason}); check the access_token's permissions")
    if error.error_subcode == UNKNOWN_OBJECT_SUBCODE:
        return retry(f"{reason}; check the destination's pixel_id and audiences")
    return reject(reason)


def _failed_request(error: BaseException, ctx: ActionContext) -> Outcome:
    if isinstance(error, DestinationPaused):
        return retry(str(error), error.seconds)
    if isinstance(error, asyncio.TimeoutError):
        return retry(f"no answer within {ctx.settings.timeout:g}s")
    return retry(f"{type(error).__name__}: {error}")


_REQUEST_FAILURES = (DestinationPaused, aiohttp.ClientError, asyncio.TimeoutError, OSError)


# --- Conversions API -------------------------------------------------------------------------------


async def send_events(ctx: ActionContext, items: list[ActionItem]) -> list[Outcome]:
    settings = ctx.settings
    now = ctx.destination.clock()
    answers: list[Outcome] = [DELIVERED] * len(items)
    pending: list[tuple[int, dict[str, Any]]] = []  # (item index, Meta's event)
    for i, item in enumerate(items):
        event = server_event(item.payload, settings.action_source, now)
        if type(event) is str:
            answers[i] = reject(event)
        else:
            pending.append((i, event))
    path = f"/{settings.api_version}/{settings.pixel_id}/events"
    resends = 0
    while pending:
        body: dict[str, Any] = {"data": [event for _, event in pending]}
        if settings.test_event_code:
            body["test_event_code"] = settings.test_event_code
        try:
            response = await ctx.request("POST", path, json=body)
        except _REQUEST_FAILURES as failure:
            outcome = _failed_request(failure, ctx)
            break
        error = graph_error(response) if response.status >= 400 else None
        index = refused_index(error) if error is not None and 400 <= response.status < 500 else None
        if index is not None and index < len(pending) and classify(ctx, response, error).kind == "reject":
            refused, _ = pending.pop(index)
            answers[refused] = reject(f"Meta refused the event: {describe(error)}")
            resends += 1
            if resends > MAX_RESENDS and pending:
                outcome = retry(f"Meta refused {resends} events of this request one by one; the others are "
                                "retried alone")
                break
            continue
        outcome = classify(ctx, response, error)
        break
    else:
        return answers
    for i, _ in pending:
        answers[i] = outcome
    return answers


# --- Custom Audiences ------------------------------------------------------------------------------


async def change_audience(ctx: ActionContext, items: list[ActionItem]) -> list[Outcome]:
    """Add or remove the users of one audience (the action's batch keys keep one audience and one
    operation per request)."""
    settings = ctx.settings
    first = items[0].payload
    audience_id = audience_of(first, settings.audiences)
    if audience_id is None:
        return ctx.each(reject(no_audience_reason(first, settings.audiences)), items)
    answers: list[Outcome] = [DELIVERED] * len(items)
    users: list[tuple[int, dict[str, str]]] = []
    for i, item in enumerate(items):
        values = row_values(item.payload)
        if values:
            users.append((i, values))
        else:
            answers[i] = reject("no identifier for the Custom Audience (em, ph, external_id, madid, ...)")
    if not users:
        return answers
    payload = audience_payload([values for _, values in users])
    method = "POST" if first["operation"] == "add" else "DELETE"
    try:
        response = await ctx.request(method, f"/{settings.api_version}/{audience_id}/users", json={"payload": payload})
    except _REQUEST_FAILURES as failure:
        outcome = _failed_request(failure, ctx)
        for i, _ in users:
            answers[i] = outcome
        return answers
    outcome = classify(ctx, response, graph_error(response) if response.status >= 400 else None)
    if outcome.kind != "ok":
        for i, _ in users:
            answers[i] = outcome
        return answers
    samples = _invalid_samples(response)
    if samples:
        for (i, _), row in zip(users, payload["data"]):
            problem = samples.get(msgspec.json.encode(row).decode())
            if problem is not None:
                answers[i] = reject(f"Meta counted the user as invalid: {problem}")
    return answers


def _invalid_samples(response: Response) -> dict[str, str]:
    """Meta's ``invalid_entry_samples`` ({row as JSON: problem}), with the rows re-encoded compactly."""
    answer = response.json()
    samples = answer.get("invalid_entry_samples") if isinstance(answer, dict) else None
    if not isinstance(samples, dict):
        return {}
    found = {}
    for row, problem in samples.items():
        try:
            found[msgspec.json.encode(msgspec.json.decode(row)).decode()] = str(problem)
        except msgspec.DecodeError:
            continue
    return found
