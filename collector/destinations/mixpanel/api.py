"""Mixpanel's ingestion API: the requests each action makes, and their answers read item by item.

- ``/import?strict=1`` takes events (track, page, screen, purchases, ``$identify``,
  ``$create_alias``): a JSON array, gzipped, at most 2,000 events and 10 MB uncompressed a request,
  each event under 1 MB. A 400 is a partial success naming the refused events in
  ``failed_records``: those are refused, with Mixpanel's message, and the rest is delivered,
  without resending anything. A 413 halves the request.
- ``/engage`` and ``/groups`` take profile updates as a form field ``data=<JSON array>``; with
  ``verbose=1`` the answer is ``{"status": 1|0, "error": ...}``, and a request with one bad update
  takes none of them without saying which: such a request is halved until the refused update
  stands alone (a token Mixpanel refuses is a credentials problem, not halved).
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import msgspec

from collector.destinations.actions.context import ActionContext, DestinationPaused, Response
from collector.destinations.actions.subscriptions import ActionItem
from collector.destinations.base import DELIVERED, SKIPPED, Outcome, reject, retry, worst
from collector.destinations.mixpanel import records

MAX_IMPORT_EVENTS = 2000
MAX_ENGAGE_UPDATES = 2000
MAX_GROUP_UPDATES = 200  # RudderStack's batch for /groups
# Mixpanel's caps: 10 MB uncompressed a request (counted here in decimal megabytes, the smaller
# reading), and under 1 MB an event or update.
MAX_REQUEST_BYTES = 10_000_000
MAX_RECORD_BYTES = 1024 * 1024
# Bodies above this are gzipped on a worker thread, not on the event loop.
_COMPRESS_IN_THREAD = 256 * 1024

_encode = msgspec.json.Encoder().encode


@dataclass(slots=True)
class _Piece:
    """One encoded record on its way: the item it belongs to, and what it is, for reasons."""

    owner: int
    body: bytes
    label: str


Outcomes = list[Outcome]


def _pieces(per_item: Iterable[Iterable[tuple[str, dict]]], answers: list[Outcomes]) -> list[_Piece]:
    """Encode every record; one over the size cap is refused here (Mixpanel would refuse it, and it
    could make a whole request too large)."""
    pieces = []
    for owner, recs in enumerate(per_item):
        for label, record in recs:
            body = _encode(record)
            if len(body) >= MAX_RECORD_BYTES:
                answers[owner].append(reject(f"{label} is {len(body):,} bytes of JSON; Mixpanel takes "
                                             f"records under {MAX_RECORD_BYTES:,} bytes"))
            else:
                pieces.append(_Piece(owner, body, label))
    return pieces


def _requests(pieces: list[_Piece], max_count: int) -> list[list[_Piece]]:
    """Consecutive runs of at most ``max_count`` records and MAX_REQUEST_BYTES as a JSON array."""
    chunks: list[list[_Piece]] = []
    current: list[_Piece] = []
    size = 2  # "[" and "]"
    for piece in pieces:
        grown = size + len(piece.body) + (1 if current else 0)
        if current and (len(current) >= max_count or grown > MAX_REQUEST_BYTES):
            chunks.append(current)
            current, grown = [], 2 + len(piece.body)
        current.append(piece)
        size = grown
    if current:
        chunks.append(current)
    return chunks


def _array(pieces: list[_Piece]) -> bytes:
    return b"[" + b",".join(piece.body for piece in pieces) + b"]"


async def _each_request(ctx: ActionContext, pieces: list[_Piece], max_count: int, answers: list[Outcomes],
                        post: Callable[[ActionContext, list[_Piece]], Any]) -> Outcomes:
    """Send the pieces request by request; each item's outcome is the worst of its records'."""
    for chunk in _requests(pieces, max_count):
        for piece, outcome in zip(chunk, await post(ctx, chunk)):
            answers[piece.owner].append(outcome)
    return [worst(mine) if mine else SKIPPED for mine in answers]


def _paused(paused: DestinationPaused, count: int) -> Outcomes:
    return [retry(str(paused), paused.seconds)] * count


# --- /import -----------------------------------------------------------------------------------


async def import_records(ctx: ActionContext, per_item: list[list[tuple[str, dict]]]) -> Outcomes:
    """Send each item's events to /import; one outcome per item (SKIPPED for an item with none)."""
    answers: list[Outcomes] = [[] for _ in per_item]
    pieces = _pieces(per_item, answers)
    return await _each_request(ctx, pieces, MAX_IMPORT_EVENTS, answers, _post_import)


def _import_params(ctx: ActionContext) -> dict[str, str]:
    params = {"strict": "1"}
    if ctx.settings.service_account_user is not None:
        params["project_id"] = str(ctx.settings.project_id)
    return params


async def _post_import(ctx: ActionContext, chunk: list[_Piece]) -> Outcomes:
    body = _array(chunk)
    compressed = (await asyncio.to_thread(gzip.compress, body, 6) if len(body) > _COMPRESS_IN_THREAD
                  else gzip.compress(body, 6))
    try:
        response = await ctx.request("POST", "/import", data=compressed, params=_import_params(ctx),
                                     headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    except DestinationPaused as paused:
        return _paused(paused, len(chunk))
    if response.status == 413 and len(chunk) > 1:  # Mixpanel's cap is lower than ours: halve it
        half = len(chunk) // 2
        return await _post_import(ctx, chunk[:half]) + await _post_import(ctx, chunk[half:])
    return read_import_answer(ctx, response, [piece.label for piece in chunk])


def read_import_answer(ctx: ActionContext, response: Response, labels: list[str]) -> Outcomes:
    """One outcome per event of an /import request. 200: all taken. 400 with ``failed_records``:
    those refused with Mixpanel's message, the others taken. Anything else: the usual reading."""
    count = len(labels)
    if 200 <= response.status < 300:
        return [DELIVERED] * count
    if response.status == 400:
        answer = response.json()
        failed = answer.get("failed_records") if isinstance(answer, dict) else None
        if isinstance(failed, list) and failed:
            outcomes = [DELIVERED] * count
            for record in failed:
                index = record.get("index") if isinstance(record, dict) else None
                if type(index) is int and 0 <= index < count:
                    outcomes[index] = reject(f"Mixpanel refused {labels[index]}: {_failure(record)}")
            return outcomes
    if response.status == 413:
        return [reject(f"Mixpanel refused {labels[0]} as too large (HTTP 413): {response.text[:300]}")] * count
    return [ctx.classify(response)] * count


def _failure(record: dict) -> str:
    """Mixpanel's message, led by the field when the message does not quote it ('properties.time' ...)."""
    message = str(record.get("message") or "no message")
    field = record.get("field")
    return f"{field}: {message}" if field and f"'{field}'" not in message else message


# --- /engage and /groups -------------------------------------------------------------------------


async def send_updates(ctx: ActionContext, path: str, updates: list[dict | Outcome | None], max_count: int) -> Outcomes:
    """Send profile updates (a dict per item; None: nothing to send; an Outcome: already decided)."""
    answers: list[Outcomes] = [[u] if isinstance(u, Outcome) else [] for u in updates]
    per_item = [[("the profile update", u)] if isinstance(u, dict) else [] for u in updates]
    pieces = _pieces(per_item, answers)

    async def post(context: ActionContext, chunk: list[_Piece]) -> Outcomes:
        return await _post_updates(context, path, chunk)

    return await _each_request(ctx, pieces, max_count, answers, post)


async def _post_updates(ctx: ActionContext, path: str, chunk: list[_Piece]) -> Outcomes:
    form = {"data": _array(chunk).decode(), "verbose": "1"}
    try:
        response = await ctx.request("POST", path, data=form)
    except DestinationPaused as paused:
        return _paused(paused, len(chunk))
    if response.status != 200:
        return [ctx.classify(response)] * len(chunk)
    ok, error = read_update_answer(response)
    if ok:
        return [DELIVERED] * len(chunk)
    if "token" in error.lower():  # the project token is wrong: every update would be refused
        return [Outcome("retry", f"credentials refused (Mixpanel {path}: {error}); check the destination's "
                                 "project_token")] * len(chunk)
    if len(chunk) > 1:  # Mixpanel took none of them and did not say which it refused
        half = len(chunk) // 2
        return await _post_updates(ctx, path, chunk[:half]) + await _post_updates(ctx, path, chunk[half:])
    return [reject(f"Mixpanel {path} refused {chunk[0].label}: {error}")]


def read_update_answer(response: Response) -> tuple[bool, str]:
    """(taken, Mixpanel's error) of a 200 from /engage or /groups: ``{"status": 1}`` or ``1``."""
    answer = response.json()
    if isinstance(answer, dict):
        if answer.get("status") == 1:
            return True, ""
        return False, str(answer.get("error") or "refused, without a reason")
    if answer == 1:
        return True, ""
    return False, f"refused (answer {response.text[:100]!r})"


# --- The actions' performs -------------------------------------------------------------------------


async def track_events(ctx: ActionContext, items: list[ActionItem]) -> Outcomes:
    return await import_records(ctx, [[("the event", records.event_record(i.payload, i.envelope))] for i in items])


async def track_purchases(ctx: ActionContext, items: list[ActionItem]) -> Outcomes:
    per_item = []
    for item in items:
        order, *products = records.purchase_records(item.payload, item.envelope)
        per_item.append([("the order's event", order)] + [
            (f'its "{records.PRODUCT_PURCHASED}" event for product {n}', product)
            for n, product in enumerate(products, start=1)])
    return await import_records(ctx, per_item)


async def identify_users(ctx: ActionContext, items: list[ActionItem]) -> Outcomes:
    """``$identify`` to /import for an identify with both ids, and the traits to /engage."""
    token = ctx.settings.project_token
    identifies, updates = [], []
    for item in items:
        record = records.identify_record(item.payload, item.envelope)
        identifies.append([("the $identify event", record)] if record is not None else [])
        update = records.profile_update(item.payload, token)
        if update is not None and not update["$distinct_id"]:
            update = reject("an identify with traits but neither a user id nor an anonymous id: no profile to set")
        updates.append(update)
    merged = await import_records(ctx, identifies)
    profiles = await send_updates(ctx, "/engage", updates, MAX_ENGAGE_UPDATES)
    return [worst([a, b]) for a, b in zip(merged, profiles)]


async def identify_groups(ctx: ActionContext, items: list[ActionItem]) -> Outcomes:
    token = ctx.settings.project_token
    return await send_updates(ctx, "/groups", [records.group_update(i.payload, token) for i in items],
                              MAX_GROUP_UPDATES)


async def create_aliases(ctx: ActionContext, items: list[ActionItem]) -> Outcomes:
    per_item: list[list[tuple[str, dict]]] = []
    refused: dict[int, Outcome] = {}
    for n, item in enumerate(items):
        if item.payload["alias"] == item.payload["distinct_id"]:
            refused[n] = reject("$create_alias needs an alias other than the distinct_id it is merged into")
            per_item.append([])
        else:
            per_item.append([("the $create_alias event", records.alias_record(item.payload, item.envelope))])
    outcomes = await import_records(ctx, per_item)
    return [refused.get(n, outcome) for n, outcome in enumerate(outcomes)]
