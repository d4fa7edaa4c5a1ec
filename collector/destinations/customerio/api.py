"""Customer.io's Track API v2: payloads as entities, sent with ``POST /api/v2/batch``, and its answers.

An entity is ``{"type": "person"|"object", "action", "identifiers", ...}`` (docs/vendors/
crm-messaging.md §11). Limits, checked before sending so that one entity never fails a request:
an entity over 32 KB is dead-lettered alone; the others are packed into requests of at most
500 KB (counted as 500,000 and 32,000 bytes, the stricter reading of "KB").

Customer.io answers a batch with 200, or 207 ``{"errors": [{"batch_index", "reason", "field"}]}``
naming the entities it refused: those are rejected with its reason, the rest are delivered. A 400
for several entities is bisected in this attempt down to the entity it refuses. 401 waits for
new credentials, 429 and 5xx are retried with their Retry-After (ctx.classify).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime

import aiohttp
import msgspec

from collector.destinations.actions.context import ActionContext, DestinationPaused
from collector.destinations.actions.packing import Encoded
from collector.destinations.actions.packing import pack as pack_items
from collector.destinations.actions.subscriptions import ActionItem
from collector.destinations.base import DELIVERED, Outcome, reject, retry

__all__ = ["BATCH_PATH", "ENTITY_MAX_BYTES", "REQUEST_MAX_BYTES", "Builder", "identifiers", "pack",
           "read_multistatus", "sender", "unix_seconds"]

BATCH_PATH = "/api/v2/batch"
REQUEST_MAX_BYTES = 500_000
ENTITY_MAX_BYTES = 32_000
_PREFIX, _SUFFIX = b'{"batch":[', b"]}"
_JSON = {"Content-Type": "application/json"}
_encode = msgspec.json.Encoder().encode

# A payload -> (the entity, "") or (None, why Customer.io would refuse it).
Builder = Callable[[dict], "tuple[dict | None, str]"]


def unix_seconds(timestamp: str | None) -> int | None:
    """A validated datetime field (ISO 8601, UTC) as the integer Unix seconds Customer.io takes."""
    if timestamp is None:
        return None
    return int(datetime.fromisoformat(timestamp).timestamp())


def identifiers(payload: dict, anonymous: bool) -> dict | None:
    """Customer.io's one identifier for the person: id, else email, else (events only) anonymous_id."""
    person_id = payload.get("person_id")
    if person_id:
        return {"id": person_id}
    email = payload.get("email")
    if email:
        return {"email": email}
    anonymous_id = payload.get("anonymous_id")
    if anonymous and anonymous_id:
        return {"anonymous_id": anonymous_id}
    return None


def pack(encoded: Encoded, limit: int = REQUEST_MAX_BYTES) -> list[Encoded]:
    """The entities cut into request bodies ``{"batch":[...]}`` of at most ``limit`` bytes, in order."""
    return pack_items(encoded, len(_PREFIX) + len(_SUFFIX), limit)


def read_multistatus(body: object, count: int) -> list[Outcome]:
    """The outcome of each of ``count`` entities from a 207's ``errors``; an error whose batch_index
    is not one of them is ignored (the others are delivered: Customer.io accepted them)."""
    outcomes = [DELIVERED] * count
    errors = body.get("errors") if isinstance(body, dict) else None
    for error in errors if isinstance(errors, list) else ():
        index = error.get("batch_index") if isinstance(error, dict) else None
        if isinstance(index, int) and 0 <= index < count:
            field = error.get("field") or ""
            reason = str(error.get("reason") or "refused")
            outcomes[index] = reject(f"Customer.io refused the entity: {reason}" + (f" (field {field})" if field else ""))
    return outcomes


async def _post(ctx: ActionContext, chunk: Encoded, answers: list[Outcome]) -> None:
    body = _PREFIX + b",".join(data for _, data in chunk) + _SUFFIX
    try:
        response = await ctx.request("POST", BATCH_PATH, data=body, headers=_JSON)
    except DestinationPaused as paused:
        outcomes = [retry(str(paused), paused.seconds)] * len(chunk)
    except asyncio.TimeoutError:
        outcomes = [retry(f"no answer within {ctx.settings.timeout:g}s")] * len(chunk)
    except (aiohttp.ClientError, OSError) as error:
        outcomes = [retry(f"{type(error).__name__}: {error}")] * len(chunk)
    else:
        if response.status == 207:
            outcomes = read_multistatus(response.json(), len(chunk))
        elif response.status == 400 and len(chunk) > 1:
            half = len(chunk) // 2
            await _post(ctx, chunk[:half], answers)
            await _post(ctx, chunk[half:], answers)
            return
        else:
            outcome = ctx.classify(response)
            if outcome.kind == "reject":
                outcome = reject(outcome.reason)
            outcomes = [outcome] * len(chunk)
    for (index, _), outcome in zip(chunk, outcomes):
        answers[index] = outcome


def sender(build: Builder) -> Callable[[ActionContext, list[ActionItem]], Awaitable[list[Outcome]]]:
    """The perform of an action whose payloads ``build`` turns into entities."""

    async def send_batch(ctx: ActionContext, items: list[ActionItem]) -> list[Outcome]:
        answers: list[Outcome] = [DELIVERED] * len(items)
        ready: Encoded = []
        for index, item in enumerate(items):
            entity, problem = build(item.payload)
            if entity is not None:
                encoded = _encode(entity)
                if len(encoded) <= ENTITY_MAX_BYTES:
                    ready.append((index, encoded))
                    continue
                problem = (f"the entity is {len(encoded)} bytes, over the {ENTITY_MAX_BYTES} Customer.io "
                           "accepts (32 KB)")
            answers[index] = reject(problem)
        for chunk in pack(ready):
            await _post(ctx, chunk, answers)
        return answers

    return send_batch
