"""The Measurement Protocol: each action's payloads as GA4 events, checked against GA4's limits,
in requests of one client (and user) of at most 25 events and 130 kB, and GA4's answers read per
event.

``POST /mp/collect?measurement_id=…&api_secret=…`` (app streams: ``firebase_app_id=…``, whose
``:`` stays as it is). GA4 answers 2xx to everything, so what it would drop is refused before
sending (limits.py), each event with its own reason; a 5xx or 429 is retried. With
``debug_validation`` each request is first sent to ``/debug/mp/collect``, and the events Google's
validator finds fault with are refused with its messages.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec

from collector.destinations.actions.destination import ActionContext, ActionItem
from collector.destinations.base import Outcome, reject
from collector.destinations.google_analytics_4 import limits
from collector.destinations.google_analytics_4.fields import EVENT_FIELDS, REQUEST_FIELDS

if TYPE_CHECKING:
    from collector.destinations.google_analytics_4 import GoogleAnalytics4Settings

MAX_EVENTS = 25
MAX_BODY_BYTES = 130_000  # GA4: "the post body must be smaller than 130 kB"
COLLECT = "/mp/collect"
DEBUG_COLLECT = "/debug/mp/collect"

_encode = msgspec.json.Encoder().encode
_NOT_PARAMS = frozenset(REQUEST_FIELDS + EVENT_FIELDS + ("engagement_time_msec", "session_id"))
_EVENT_INDEX = re.compile(r"events\[(\d+)\]")


def query(settings: GoogleAnalytics4Settings) -> str:
    """The query string, built by hand: a Firebase app id keeps its ``:`` (GA4 does not decode it)."""
    if settings.firebase_app_id:
        stream = "firebase_app_id=" + urllib.parse.quote(settings.firebase_app_id, safe=":")
    else:
        stream = "measurement_id=" + urllib.parse.quote(settings.measurement_id or "", safe="")
    return f"{stream}&api_secret={urllib.parse.quote(settings.api_secret, safe='')}"


# --- one event ---------------------------------------------------------------------------------------


def ga4_event(name: str | None, payload: dict[str, Any], now_micros: int) -> dict[str, Any] | str:
    """The GA4 event of one validated payload, or why GA4 would drop it. ``name`` is the
    recommended event's; None for a custom event, whose name is in the payload."""
    problems: list[str] = []
    if name is None:
        original = payload["name"]
        name = limits.event_name(original, payload.get("lowercase", False))
        problem = limits.event_name_problem(name, original)
        if problem is not None:
            problems.append(problem)
    params = dict(payload["params"]) if "params" in payload else {}
    for key, value in payload.items():
        if key not in _NOT_PARAMS:
            params[key] = value
    items = params.get("items")
    if type(items) is list and {} in items:  # a product the event did not describe (no properties)
        items = [item for item in items if item != {}]
        if items:
            params["items"] = items
        else:
            del params["items"]
    for key in ("engagement_time_msec", "session_id"):
        if key in payload:
            params[key] = payload[key]
    problems += limits.params_problems(params)
    problem = limits.currency_problem(params)
    if problem is not None:
        problems.append(problem)
    elif "currency" in params:
        params["currency"] = params["currency"].upper()
    event: dict[str, Any] = {"name": name, "params": params}
    if "timestamp_micros" in payload:
        micros = limits.timestamp_micros(payload["timestamp_micros"], now_micros)
        if type(micros) is str:
            problems.append(micros)
        else:
            event["timestamp_micros"] = micros
    return "; ".join(problems) if problems else event


def request_fields(payload: dict[str, Any], settings: GoogleAnalytics4Settings) -> dict[str, Any] | str:
    """The body's fields other than events (the same for every event of a request: they are the
    action's batch keys), or why GA4 would drop the request."""
    body: dict[str, Any] = {}
    if settings.firebase_app_id:
        if not payload.get("app_instance_id"):
            return "an app stream (firebase_app_id) needs app_instance_id: map it from your app's Firebase SDK"
        body["app_instance_id"] = payload["app_instance_id"]
    else:
        if not payload.get("client_id"):
            return "no client_id: the event has no GA cookie id, anonymousId or userId"
        body["client_id"] = payload["client_id"]
    if "user_id" in payload:
        body["user_id"] = payload["user_id"]
    properties = payload.get("user_properties")
    if properties:
        problems = limits.user_properties_problems(properties)
        if problems:
            return "; ".join(problems)
        body["user_properties"] = {key: {"value": value} for key, value in properties.items()}
    return body


# --- requests ------------------------------------------------------------------------------------------


def performer(name: str | None) -> Callable[[ActionContext, list[ActionItem]], Awaitable[list[Outcome]]]:
    """The perform of an action sending GA4 events named ``name`` (None: the payload's name)."""

    async def perform(ctx: ActionContext, items: list[ActionItem]) -> list[Outcome]:
        return await send_events(ctx, items, name)

    return perform


async def send_events(ctx: ActionContext, items: list[ActionItem], name: str | None) -> list[Outcome]:
    settings: GoogleAnalytics4Settings = ctx.settings  # type: ignore[assignment]
    answers: list[Outcome | None] = [None] * len(items)
    body = request_fields(items[0].payload, settings)
    if type(body) is str:
        return [reject(body)] * len(items)
    now_micros = int(ctx.destination.clock() * 1_000_000)  # type: ignore[attr-defined]
    events: list[tuple[int, dict[str, Any]]] = []
    for i, item in enumerate(items):
        event = ga4_event(name, item.payload, now_micros)
        if type(event) is str:
            answers[i] = reject(event)
        else:
            events.append((i, event))
    if events and settings.debug_validation:
        events = await _validated(ctx, body, events, answers)
    path = f"{COLLECT}?{query(settings)}"
    for request in _requests(body, events, answers):
        outcome = ctx.classify(await ctx.request("POST", path, data=request.body, headers=_JSON))
        if outcome.kind == "reject":  # GA4 answers 2xx; a 4xx here is from a proxy, about this request
            outcome = reject(outcome.reason)
        for i in request.indexes:
            answers[i] = outcome
    return answers  # type: ignore[return-value]


_JSON = {"Content-Type": "application/json"}


class _Request:
    __slots__ = ("indexes", "body")

    def __init__(self, indexes: list[int], body: bytes) -> None:
        self.indexes = indexes
        self.body = body


def _requests(body: dict[str, Any], events: list[tuple[int, dict[str, Any]]],
              answers: list[Outcome | None]) -> list[_Request]:
    """Requests of at most 25 events and under 130 kB; an event too large alone is refused."""
    if not events:
        return []
    if len(events) > MAX_EVENTS:
        return _requests(body, events[:MAX_EVENTS], answers) + _requests(body, events[MAX_EVENTS:], answers)
    encoded = _encode({**body, "events": [event for _, event in events]})
    if len(encoded) < MAX_BODY_BYTES:
        return [_Request([i for i, _ in events], encoded)]
    if len(events) == 1:
        answers[events[0][0]] = reject(f"the event makes a body of {len(encoded)} bytes; GA4 takes less than "
                                       f"{MAX_BODY_BYTES}")
        return []
    half = len(events) // 2
    return _requests(body, events[:half], answers) + _requests(body, events[half:], answers)


async def _validated(ctx: ActionContext, body: dict[str, Any], events: list[tuple[int, dict[str, Any]]],
                     answers: list[Outcome | None]) -> list[tuple[int, dict[str, Any]]]:
    """Asks Google's validator about the events; refuses those it finds fault with and returns the
    rest. A fault it does not pin on one event is asked about again event by event (a fault in the
    request's own fields then refuses each of them)."""
    path = f"{DEBUG_COLLECT}?{query(ctx.settings)}"  # type: ignore[arg-type]
    kept: list[tuple[int, dict[str, Any]]] = []
    for request in _requests(body, events, answers):
        response = await ctx.request("POST", path, data=request.body, headers=_JSON)
        outcome = ctx.classify(response)
        if not outcome.ok:
            for i in request.indexes:
                answers[i] = outcome
            continue
        faults = _faults(response.json())
        mine = [(i, event) for i, event in events if i in request.indexes]
        if None in faults and len(mine) > 1:
            for one in mine:
                kept += await _validated(ctx, body, [one], answers)
            continue
        for position, (i, event) in enumerate(mine):
            reasons = faults.get(None, []) + faults.get(position, [])
            if reasons:
                answers[i] = reject("GA4's validator: " + "; ".join(reasons))
            else:
                kept.append((i, event))
    return kept


def _faults(answer: Any) -> dict[int | None, list[str]]:
    """/debug/mp/collect's validationMessages by event index (None: not pinned on an event)."""
    messages = answer.get("validationMessages") if isinstance(answer, dict) else None
    faults: dict[int | None, list[str]] = {}
    for message in messages if isinstance(messages, list) else []:
        if not isinstance(message, dict):
            continue
        where = str(message.get("fieldPath", ""))
        found = _EVENT_INDEX.match(where)
        text = f"{where}: {message.get('description', '')} ({message.get('validationCode', '')})"
        faults.setdefault(int(found.group(1)) if found else None, []).append(text)
    return faults
