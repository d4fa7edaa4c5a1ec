"""Braze's ``POST /users/track``: payloads into attributes, events and purchases objects, packed
75 of an array to a request, and Braze's answers read back per event.

Braze answers 201 ``{"message": "success", ..., "errors": [{"type", "input_array", "index"}]}``:
only the listed objects failed (docs/vendors/crm-messaging.md §9). An event whose objects (a
purchase per product) are all accepted is delivered; one with a refused object is rejected with
Braze's reason. A 429 waits for Retry-After, else until ``X-RateLimit-Reset`` (a Unix time);
5xx is retried; 401/403 wait for new credentials (ctx.classify).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from collector.destinations.actions.context import ActionContext, DestinationPaused, Response
from collector.destinations.actions.subscriptions import ActionItem
from collector.destinations.base import DELIVERED, Outcome, parse_retry_after, reject, retry

__all__ = [
    "MAX_OBJECTS", "TRACK_PATH", "attribute_objects", "audience_objects", "event_objects", "pack",
    "purchase_objects", "rate_limit_wait", "sender",
]

TRACK_PATH = "/users/track"
MAX_OBJECTS = 75  # of each of attributes, events and purchases per request

Objects = tuple[list[dict[str, Any]], str]  # (Braze objects for one event, or why there are none)
Builder = Callable[[dict, dict, "str | None"], Objects]

# Traits sent as Braze's standard attributes by the default mapping, left out of the custom ones.
STANDARD_TRAITS = frozenset({"firstName", "lastName", "email", "phone", "gender", "birthday", "avatar", "address"})
_GENDERS = {"m": "M", "male": "M", "man": "M", "f": "F", "female": "F", "woman": "F", "o": "O", "other": "O",
            "n": "N", "not applicable": "N", "p": "P", "prefer not to say": "P", "u": "U", "unknown": "U"}
_ATTRIBUTES = ("first_name", "last_name", "email", "phone", "home_city", "country", "image_url")
_NO_IDENTITY = "no external_id, user_alias (anonymousId) or braze_id: Braze needs one to find the user"


def identity(payload: dict) -> dict[str, Any] | None:
    """The one identifier Braze is sent (external_id, else braze_id, else user_alias), with
    _update_existing_only; None when the event has none."""
    update_only = bool(payload.get("update_existing_only", False))
    if payload.get("external_id"):
        return {"external_id": payload["external_id"], "_update_existing_only": update_only}
    if payload.get("braze_id"):
        return {"braze_id": payload["braze_id"], "_update_existing_only": update_only}
    alias = payload.get("user_alias")
    if alias and alias.get("alias_name") and alias.get("alias_label"):
        return {"user_alias": {"alias_name": alias["alias_name"], "alias_label": alias["alias_label"]},
                "_update_existing_only": update_only}
    return None


def attribute_objects(payload: dict, event: dict, app_id: str | None) -> Objects:
    who = identity(payload)
    if who is None:
        return [], _NO_IDENTITY
    custom = payload.get("custom_attributes")
    attributes = {k: v for k, v in custom.items() if k not in STANDARD_TRAITS} if custom else {}
    attributes.update(who)
    for key in _ATTRIBUTES:
        value = payload.get(key)
        if value is not None:
            attributes[key] = value
    gender = payload.get("gender")
    if gender is not None:
        attributes["gender"] = _GENDERS.get(gender.strip().lower(), gender)
    dob = payload.get("dob")
    if dob is not None:
        attributes["dob"] = dob[:10]
    return [attributes], ""


def event_objects(payload: dict, event: dict, app_id: str | None) -> Objects:
    who = identity(payload)
    if who is None:
        return [], _NO_IDENTITY
    braze_event = {**who, "name": payload["name"], "time": payload["time"]}
    if payload.get("properties"):
        braze_event["properties"] = payload["properties"]
    if app_id:
        braze_event["app_id"] = app_id
    return [braze_event], ""


def purchase_objects(payload: dict, event: dict, app_id: str | None) -> Objects:
    who = identity(payload)
    if who is None:
        return [], _NO_IDENTITY
    currency = payload.get("currency") or "USD"
    order = payload.get("properties") or {}
    shared = {k: v for k, v in order.items() if k != "products"}
    purchases = []
    for number, product in enumerate(payload["products"]):
        product_id = product.get("product_id") or product.get("sku")
        price = product.get("price")
        if not product_id:
            return [], f"products[{number}] has no product_id or sku (Braze requires one)"
        if isinstance(price, bool) or not isinstance(price, (int, float)):
            return [], f"products[{number}] has no numeric price (Braze requires one)"
        purchase = {**who, "product_id": str(product_id), "currency": currency.upper(), "price": price,
                    "quantity": product.get("quantity") or 1, "time": payload["time"]}
        if shared:
            purchase["properties"] = shared
        if app_id:
            purchase["app_id"] = app_id
        purchases.append(purchase)
    if not purchases:
        return [], "the order has no products: no purchase to record"
    return purchases, ""


def audience_objects(payload: dict, event: dict, app_id: str | None) -> Objects:
    who = identity(payload)
    if who is None:
        return [], _NO_IDENTITY
    key = payload["audience_key"]
    member = payload.get("in_audience")
    if member is None:  # an audience identify: {traits: {<audience_key>: true|false}}
        member = (event.get("traits") or {}).get(key)
    if not isinstance(member, bool):
        return [], f"no membership for audience {key!r}: in_audience unmapped and traits.{key} not true or false"
    return [{**who, key: member}], ""


Packed = list[list[tuple[int, dict]]]  # requests of (index of the item, object)


def pack(objects: list[tuple[int, dict]], limit: int = MAX_OBJECTS) -> Packed:
    return [objects[start:start + limit] for start in range(0, len(objects), limit)]


def rate_limit_wait(response: Response, now: float) -> float | None:
    """How long a 429 asks to wait: Retry-After, else until X-RateLimit-Reset (Unix seconds)."""
    after = parse_retry_after(response.headers.get("Retry-After"))
    if after is not None:
        return after
    try:
        reset = float(response.headers.get("X-RateLimit-Reset", ""))
    except ValueError:
        return None
    return max(0.0, reset - now) if reset > now else None


def _worst(current: Outcome, new: Outcome) -> Outcome:
    order = {"ok": 0, "retry": 1, "reject": 2}
    return new if order.get(new.kind, 0) > order.get(current.kind, 0) else current


async def _post(ctx: ActionContext, array: str, chunk: list[tuple[int, dict]], answers: list[Outcome]) -> None:
    try:
        response = await ctx.request("POST", TRACK_PATH, json={array: [obj for _, obj in chunk]})
    except DestinationPaused as paused:
        outcome = retry(str(paused), paused.seconds)
    except asyncio.TimeoutError:
        outcome = retry(f"no answer within {ctx.settings.timeout:g}s")
    except (aiohttp.ClientError, OSError) as error:
        outcome = retry(f"{type(error).__name__}: {error}")
    else:
        body = response.json()
        errors = body.get("errors") if isinstance(body, dict) else None
        if (response.status < 300 or response.status == 400) and isinstance(errors, list) and errors:
            refused = _refused(array, chunk, errors)
            for index, _ in chunk:
                if index in refused:
                    answers[index] = _worst(answers[index], reject(refused[index]))
            if response.status < 300:
                return
            outcome = ctx.classify(response)  # a 400 that named no object of ours
            for index, _ in chunk:
                if index not in refused:
                    answers[index] = _worst(answers[index], outcome)
            return
        outcome = ctx.classify(response)
        if response.status == 429:
            wait = rate_limit_wait(response, time.time())
            if wait is not None:
                ctx.pause(wait)
                outcome = retry(outcome.reason, wait)
    for index, _ in chunk:
        answers[index] = _worst(answers[index], outcome)


def _refused(array: str, chunk: list[tuple[int, dict]], errors: list) -> dict[int, str]:
    """Item index -> Braze's reason, for the errors naming an object of this request."""
    refused: dict[int, str] = {}
    for error in errors:
        if not isinstance(error, dict) or error.get("input_array", array) != array:
            continue
        position = error.get("index")
        if isinstance(position, int) and 0 <= position < len(chunk):
            item = chunk[position][0]
            refused.setdefault(item, f"Braze refused {array}[{position}]: {error.get('type', 'unknown error')}")
    return refused


def sender(array: str, build: Builder) -> Callable[[ActionContext, list[ActionItem]], Awaitable[list[Outcome]]]:
    """The perform of an action whose payloads become objects of this /users/track array."""

    async def send(ctx: ActionContext, items: list[ActionItem]) -> list[Outcome]:
        answers: list[Outcome] = [DELIVERED] * len(items)
        app_id = ctx.settings.app_id
        ready: list[tuple[int, dict]] = []
        for index, item in enumerate(items):
            objects, problem = build(item.payload, item.event, app_id)
            if problem:
                answers[index] = reject(problem)
            else:
                ready.extend((index, obj) for obj in objects)
        for chunk in pack(ready):
            await _post(ctx, array, chunk, answers)
        return answers

    return send
