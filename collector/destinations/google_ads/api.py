"""Google Ads REST requests built from validated payloads, and the performs that send them.

- Click conversions (and enhanced conversions for leads): ``POST /{v}/customers/{cid}:uploadClickConversions``.
- Enhanced conversions for web: ``POST /{v}/customers/{cid}:uploadConversionAdjustments`` with
  ``adjustmentType: ENHANCEMENT``.
- Customer Match: an offline user data job per request: ``offlineUserDataJobs:create``, then
  ``{job}:addOperations``, then ``{job}:run``.

Every upload asks for partial failure, so that Google takes the good items and names the others
(answers.py). An item that cannot be sent at all (no identifier, a malformed conversion action) is
refused here, without a request.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from collector.destinations.base import Outcome, reject, retry
from collector.destinations.google_ads.answers import read_answer

if TYPE_CHECKING:
    from collector.destinations.actions.context import ActionContext
    from collector.destinations.actions.subscriptions import ActionItem
    from collector.destinations.google_ads import GoogleAdsSettings

CLICK_IDS = ("gclid", "gbraid", "wbraid")
_RESOURCE = {
    "conversionActions": re.compile(r"customers/\d+/conversionActions/\d+"),
    "userLists": re.compile(r"customers/\d+/userLists/\d+"),
}


def resource_name(value: str, customer_id: str, collection: str) -> str | None:
    """``customers/{cid}/{collection}/{id}`` for an id or such a resource name; None otherwise."""
    if value.isascii() and value.isdigit():
        return f"customers/{customer_id}/{collection}/{value}"
    return value if _RESOURCE[collection].fullmatch(value) else None


def google_date_time(value: str) -> str:
    """A validated datetime field (``YYYY-MM-DDTHH:MM:SS.mmmZ``, UTC) as Google writes it:
    ``yyyy-mm-dd hh:mm:ss+00:00``."""
    return f"{value[:10]} {value[11:19]}+00:00"


def _consent(payload: dict) -> dict[str, str] | None:
    consent = {}
    if "ad_user_data_consent" in payload:
        consent["adUserData"] = payload["ad_user_data_consent"]
    if "ad_personalization_consent" in payload:
        consent["adPersonalization"] = payload["ad_personalization_consent"]
    return consent or None


def _contact(payload: dict) -> list[dict[str, Any]]:
    identifiers: list[dict[str, Any]] = []
    if "email" in payload:
        identifiers.append({"hashedEmail": payload["email"]})
    if "phone" in payload:
        identifiers.append({"hashedPhoneNumber": payload["phone"]})
    return identifiers


def _conversion_action(payload: dict, customer_id: str) -> str:
    """The resource name, or raises ValueError with the reason."""
    action = resource_name(payload["conversion_action"], customer_id, "conversionActions")
    if action is None:
        raise ValueError(f"conversion_action {payload['conversion_action']!r} is neither an id nor "
                         f"customers/{customer_id}/conversionActions/<id>")
    return action


def click_conversion(payload: dict, customer_id: str) -> dict[str, Any]:
    """A ClickConversion (proto JSON); raises ValueError when Google could not take it."""
    conversion: dict[str, Any] = {
        "conversionAction": _conversion_action(payload, customer_id),
        "conversionDateTime": google_date_time(payload["conversion_date_time"]),
    }
    for key in CLICK_IDS:
        if key in payload:
            conversion[key] = payload[key]
    identifiers = _contact(payload)
    if identifiers:
        conversion["userIdentifiers"] = identifiers
    elif len(conversion) == 2:
        raise ValueError("no gclid, gbraid, wbraid, e-mail or phone: Google cannot attribute the conversion")
    if "order_id" in payload:
        conversion["orderId"] = payload["order_id"]
    if "value" in payload:
        conversion["conversionValue"] = payload["value"]
    if "currency" in payload:
        conversion["currencyCode"] = payload["currency"].upper()
    if "user_ip_address" in payload:
        conversion["userIpAddress"] = payload["user_ip_address"]
    consent = _consent(payload)
    if consent:
        conversion["consent"] = consent
    return conversion


_ADDRESS = (("first_name", "hashedFirstName"), ("last_name", "hashedLastName"),
            ("street_address", "hashedStreetAddress"), ("city", "city"), ("state", "state"),
            ("postal_code", "postalCode"), ("country", "countryCode"))


def enhancement(payload: dict, customer_id: str) -> dict[str, Any]:
    """A ConversionAdjustment of type ENHANCEMENT; raises ValueError when Google could not take it."""
    identifiers = _contact(payload)
    address = {name: payload[key] for key, name in _ADDRESS if key in payload}
    if address:
        identifiers.append({"addressInfo": address})
    if not identifiers:
        raise ValueError("no e-mail, phone or address: nothing to enhance the conversion with")
    adjustment: dict[str, Any] = {
        "conversionAction": _conversion_action(payload, customer_id),
        "adjustmentType": "ENHANCEMENT",
        "orderId": payload["order_id"],
        "userIdentifiers": identifiers,
    }
    if "user_agent" in payload:
        adjustment["userAgent"] = payload["user_agent"]
    return adjustment


_FULL_ADDRESS = (("first_name", "hashedFirstName"), ("last_name", "hashedLastName"),
                 ("country", "countryCode"), ("postal_code", "postalCode"))


def user_data(payload: dict) -> dict[str, Any]:
    """A Customer Match UserData; raises ValueError when it has no identifier."""
    identifiers = _contact(payload)
    if all(key in payload for key, _ in _FULL_ADDRESS):
        identifiers.append({"addressInfo": {name: payload[key] for key, name in _FULL_ADDRESS}})
    if not identifiers:
        raise ValueError("no e-mail, phone or whole address (first and last name, country, postal code) to match")
    return {"userIdentifiers": identifiers}


def user_list(payload: dict, settings: GoogleAdsSettings) -> str:
    """The user list's resource name: the payload's ``user_list`` (an id, a resource name, or an
    audience key found in ``user_lists``), else the ``user_list_id`` setting; raises ValueError."""
    value = payload.get("user_list")
    chosen = settings.user_lists.get(value, value) if value is not None else None
    name = resource_name(chosen, settings.customer_id, "userLists") if chosen is not None else None
    if name is None and settings.user_list_id is not None:
        name = resource_name(settings.user_list_id, settings.customer_id, "userLists")
    if name is None:
        about = f"audience {value!r}" if value is not None else "this event"
        raise ValueError(f"no Google Ads user list for {about}: list it in user_lists, or set user_list_id")
    return name


# --- performs -----------------------------------------------------------------------------------------


def _bodies(items: list[ActionItem], build: Any, *args: Any) -> tuple[list[Outcome | None], list[dict], list[int]]:
    """Each item's request entry; refusals in place of the items that cannot be sent."""
    answers: list[Outcome | None] = [None] * len(items)
    entries, positions = [], []
    for i, item in enumerate(items):
        try:
            entries.append(build(item.payload, *args))
        except ValueError as error:
            answers[i] = reject(str(error))
            continue
        positions.append(i)
    return answers, entries, positions


def _place(answers: list[Outcome | None], positions: list[int], results: list[Outcome]) -> list[Outcome]:
    for position, result in zip(positions, results):
        answers[position] = result
    return answers  # type: ignore[return-value]


async def _upload(ctx: ActionContext, items: list[ActionItem], build: Any, method: str, list_key: str,
                  list_name: str) -> list[Outcome]:
    settings: GoogleAdsSettings = ctx.settings  # type: ignore[assignment]
    answers, entries, positions = _bodies(items, build, settings.customer_id)
    if entries:
        response = await ctx.request("POST", f"/{settings.api_version}/customers/{settings.customer_id}:{method}",
                                     json={list_key: entries, "partialFailure": True})
        _place(answers, positions, read_answer(ctx, response, len(entries), list_name))
    return answers  # type: ignore[return-value]


async def upload_click_conversions(ctx: ActionContext, items: list[ActionItem]) -> list[Outcome]:
    return await _upload(ctx, items, click_conversion, "uploadClickConversions", "conversions", "conversions")


async def upload_enhancements(ctx: ActionContext, items: list[ActionItem]) -> list[Outcome]:
    return await _upload(ctx, items, enhancement, "uploadConversionAdjustments", "conversionAdjustments",
                         "conversion_adjustments")


async def change_user_list(ctx: ActionContext, items: list[ActionItem]) -> list[Outcome]:
    """One offline user data job for the items (they share list, operation and consent: the
    action's batch keys): create it, add an operation per item, run it."""
    settings: GoogleAdsSettings = ctx.settings  # type: ignore[assignment]
    first = items[0].payload
    try:
        list_name = user_list(first, settings)
    except ValueError as error:
        return [reject(str(error))] * len(items)
    answers, entries, positions = _bodies(items, user_data)
    if not entries:
        return answers  # type: ignore[return-value]
    verb = "create" if first["operation"] == "add" else "remove"
    operations = [{verb: entry} for entry in entries]
    metadata: dict[str, Any] = {"userList": list_name}
    consent = _consent(first)
    if consent:
        metadata["consent"] = consent
    base = f"/{settings.api_version}"
    created = await ctx.request("POST", f"{base}/customers/{settings.customer_id}/offlineUserDataJobs:create",
                                json={"job": {"type": "CUSTOMER_MATCH_USER_LIST",
                                              "customerMatchUserListMetadata": metadata}})
    if created.status != 200:
        return _place(answers, positions, read_answer(ctx, created, len(entries), "operations"))
    job = created.json()
    job_name = job.get("resourceName") if isinstance(job, dict) else None
    if not isinstance(job_name, str):
        return _place(answers, positions, [retry("Google created the job without naming it")] * len(entries))
    added = await ctx.request("POST", f"{base}/{job_name}:addOperations",
                              json={"operations": operations, "enablePartialFailure": True})
    results = read_answer(ctx, added, len(entries), "operations")
    taken = [i for i, result in enumerate(results) if result.kind == "ok"]
    if taken:
        ran = await ctx.request("POST", f"{base}/{job_name}:run", json={})
        if ran.status != 200:
            failed = read_answer(ctx, ran, len(taken), "operations")
            for i, outcome in zip(taken, failed):
                results[i] = outcome
    return _place(answers, positions, results)
