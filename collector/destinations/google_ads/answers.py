"""Google Ads answers read into one Outcome per item.

A request sent with partial failure on answers 200 and lists the items it refused in
``partialFailureError.details[].errors[]``, each located by ``location.fieldPathElements`` (the
element named like the request's list, e.g. ``conversions``, carries the item's index). Other
failures are request-level: ``{"error": {"code", "message", "status", "details": [...]}}`` where
``details`` holds a ``GoogleAdsFailure`` (the same ``errors``), a ``google.rpc.BadRequest`` (proto
JSON parse errors, by field path) or a ``google.rpc.RetryInfo``.

Which errors are worth retrying follows Google: quota, internal and concurrent-modification errors
are transient; a click or a conversion action less than 6 hours old is retried until Google takes
it; a conversion Google already has (the same click and time, order id or enhancement) counts as
delivered, since that is what a resend after a lost answer gets; every other error is final.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from collector.destinations.base import DELIVERED, Outcome, parse_retry_after, reject, retry, worst

if TYPE_CHECKING:
    from collector.destinations.actions.context import ActionContext, Response

# Google already holds what the item asked for.
ALREADY_THERE = frozenset({"CLICK_CONVERSION_ALREADY_EXISTS", "ORDER_ID_ALREADY_IN_USE", "CONVERSION_ALREADY_ENHANCED"})
# Google takes these once the click (or the conversion action) is 6 hours old.
TOO_RECENT = frozenset({"TOO_RECENT_EVENT", "TOO_RECENT_CONVERSION_ACTION", "TOO_RECENT_CALL", "TOO_RECENT_CONVERSION"})
TRANSIENT_CATEGORIES = frozenset({"internalError", "quotaError"})
TRANSIENT_CODES = frozenset({"CONCURRENT_MODIFICATION"})
# An access token Google no longer takes: a new one may work.
TOKEN_REFUSED = frozenset({"OAUTH_TOKEN_EXPIRED", "OAUTH_TOKEN_INVALID", "OAUTH_TOKEN_REVOKED", "OAUTH_TOKEN_DISABLED"})

_MAX_REASON = 500
_DURATION = re.compile(r"\s*(\d+(?:\.\d*)?)s\s*")


@dataclass(frozen=True, slots=True)
class AdsError:
    """One error of a GoogleAdsFailure."""

    category: str  # "conversionUploadError", "quotaError" ...
    code: str  # "EXPIRED_EVENT" ...
    message: str
    index: int | None  # the item it is about, None for the request
    retry_delay: float | None

    @property
    def text(self) -> str:
        return f"{self.category}.{self.code}: {self.message}".rstrip(": ")


def ads_errors(details: Any, list_name: str | None) -> list[AdsError]:
    """The errors of every GoogleAdsFailure in ``details``; ``index`` is the position in the
    request's list ``list_name`` (``conversions``, ``conversion_adjustments``, ``operations``)."""
    found = []
    for detail in details if isinstance(details, list) else ():
        if not isinstance(detail, dict) or not str(detail.get("@type", "")).endswith(".GoogleAdsFailure"):
            continue
        for error in detail.get("errors") or ():
            if not isinstance(error, dict):
                continue
            code = error.get("errorCode")
            category, value = next(iter(code.items()), ("unknownError", "UNKNOWN")) if isinstance(code, dict) and code \
                else ("unknownError", "UNKNOWN")
            found.append(AdsError(str(category), str(value), str(error.get("message") or ""),
                                  _index(error, list_name), _quota_delay(error)))
    return found


def _index(error: dict, list_name: str | None) -> int | None:
    if list_name is None:
        return None
    location = error.get("location")
    elements = location.get("fieldPathElements") if isinstance(location, dict) else None
    for element in elements if isinstance(elements, list) else ():
        if isinstance(element, dict) and element.get("fieldName") in (list_name, _camel(list_name)):
            index = element.get("index")
            return index if isinstance(index, int) and not isinstance(index, bool) else None
    return None


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _seconds(duration: Any) -> float | None:
    """Protobuf JSON Duration ("30s", "1.5s") in seconds."""
    match = _DURATION.fullmatch(duration) if isinstance(duration, str) else None
    return float(match.group(1)) if match else None


def _quota_delay(error: dict) -> float | None:
    details = error.get("details")
    quota = details.get("quotaErrorDetails") if isinstance(details, dict) else None
    return _seconds(quota.get("retryDelay")) if isinstance(quota, dict) else None


def _retry_info_delay(details: Any) -> float | None:
    for detail in details if isinstance(details, list) else ():
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            return _seconds(detail.get("retryDelay"))
    return None


def _short(text: str) -> str:
    return text if len(text) <= _MAX_REASON else text[:_MAX_REASON - 3] + "..."


# --- per item ---------------------------------------------------------------------------------------


def error_outcome(error: AdsError) -> Outcome:
    """What one of Google's errors about an item means for it."""
    if error.code in ALREADY_THERE:
        return DELIVERED
    if error.code in TOO_RECENT:
        # No Retry-After: it would pause every lane of the destination for one click.
        return retry(f"{error.text} (Google takes it 6 hours after the click; retried until then)")
    if error.category in TRANSIENT_CATEGORIES or error.code in TRANSIENT_CODES:
        return retry(error.text, error.retry_delay)
    return reject(_short(error.text))


def item_outcome(errors: list[AdsError]) -> Outcome:
    if not errors:
        return DELIVERED
    return worst([error_outcome(error) for error in errors])


def partial_outcomes(body: Any, count: int, list_name: str) -> list[Outcome]:
    """The outcome of each of ``count`` items from a 200 answer: those named in its
    ``partialFailureError`` failed, the rest were taken. An error that names no item is about
    every item."""
    failure = body.get("partialFailureError") if isinstance(body, dict) else None
    if not isinstance(failure, dict):
        return [DELIVERED] * count
    errors = ads_errors(failure.get("details"), list_name)
    if not errors:  # a partial failure Google did not detail: nothing says which items were taken
        message = str(failure.get("message") or "a partial failure without details")
        return [retry(_short(f"Google Ads reported {message}"))] * count
    by_item: list[list[AdsError]] = [[] for _ in range(count)]
    everyone = []
    for error in errors:
        if error.index is not None and 0 <= error.index < count:
            by_item[error.index].append(error)
        else:
            everyone.append(error)
    return [item_outcome(mine + everyone) for mine in by_item]


# --- the whole request --------------------------------------------------------------------------------


def _described(response: Response, error: dict, errors: list[AdsError]) -> str:
    status_name = error.get("status")
    head = f"HTTP {response.status}" + (f" {status_name}" if isinstance(status_name, str) else "")
    if errors:
        detail = "; ".join(dict.fromkeys(e.text for e in errors))
    else:
        message = error.get("message")
        detail = message if isinstance(message, str) else response.text[:300]
    return _short(f"{head}: {detail}".rstrip(": "))


_FIELD_INDEX = "^{}\\[(\\d+)\\]"


def _violations(details: Any, list_name: str) -> dict[int, str]:
    """Items named by a google.rpc.BadRequest (a request Google could not parse)."""
    pattern = re.compile(_FIELD_INDEX.format(re.escape(list_name)))
    found: dict[int, str] = {}
    for detail in details if isinstance(details, list) else ():
        if not isinstance(detail, dict) or not str(detail.get("@type", "")).endswith("google.rpc.BadRequest"):
            continue
        for violation in detail.get("fieldViolations") or ():
            match = pattern.match(str(violation.get("field", ""))) if isinstance(violation, dict) else None
            if match:
                found.setdefault(int(match.group(1)), str(violation.get("description") or "invalid"))
    return found


def request_outcomes(ctx: ActionContext, response: Response, count: int, list_name: str) -> list[Outcome]:
    """The outcome of each of ``count`` items of a request Google refused as a whole."""
    body = response.json()
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    details = error.get("details")
    errors = ads_errors(details, list_name)
    reason = _described(response, error, errors)
    status = response.status
    codes = {e.code for e in errors}
    if status == 429 or any(e.category == "quotaError" for e in errors):
        delays = [d for d in (parse_retry_after(response.headers.get("Retry-After")), _retry_info_delay(details),
                              *(e.retry_delay for e in errors)) if d is not None]
        after = max(delays) if delays else float(ctx.settings.retry.initial_backoff)
        ctx.pause(after)  # Google says how long in the body, not in a Retry-After
        return [retry(reason, after)] * count
    if codes & TOKEN_REFUSED or (status == 401 and not errors):
        # Refused access token (Google answers 400 for some): one new token, one more try.
        return [Outcome("retry", f"credentials refused ({reason})", credentials_refused=True)] * count
    if status in (401, 403):
        return [retry(f"credentials refused ({reason}); check the destination's settings")] * count
    if status == 408 or status >= 500:
        return [retry(reason, parse_retry_after(response.headers.get("Retry-After")))] * count
    if status == 400:
        named: dict[int, list[str]] = {}
        for item_error in errors:
            if item_error.index is not None and 0 <= item_error.index < count:
                named.setdefault(item_error.index, []).append(item_error.text)
        for index, description in _violations(details, list_name).items():
            if 0 <= index < count:
                named.setdefault(index, []).append(description)
        if named:
            others = retry("sent again without the items Google refused in the same request")
            return [reject(_short(f"HTTP 400: {'; '.join(named[i])}")) if i in named else others
                    for i in range(count)]
        return [reject(reason)] * count
    outcome = ctx.classify(response)
    return [Outcome(outcome.kind, reason, outcome.retry_after) if outcome.kind != "ok" else outcome] * count


def read_answer(ctx: ActionContext, response: Response, count: int, list_name: str) -> list[Outcome]:
    """One Outcome per item of a request whose items are in the list ``list_name``."""
    if 200 <= response.status < 300:
        return partial_outcomes(response.json(), count, list_name)
    return request_outcomes(ctx, response, count, list_name)
