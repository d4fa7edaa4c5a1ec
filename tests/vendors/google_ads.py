"""Google Ads API, REST (docs/vendors/analytics-ads.md §5; for Customer Match, the
OfflineUserDataJobService flow Segment's ``userList`` action uses: create a job, add operations, run).

Every request needs ``Authorization: Bearer <token>`` issued by an ``OAuthDouble`` and still valid
there (else 401 UNAUTHENTICATED, ``authenticationError`` OAUTH_TOKEN_INVALID / _EXPIRED / _REVOKED),
the configured ``developer-token`` (else 401 DEVELOPER_TOKEN_INVALID), a customer id of digits only
(else 400 INVALID_CUSTOMER_ID) that the caller may access (else 403 USER_PERMISSION_DENIED), and, when
``login_customer_id`` is configured, that manager id in ``login-customer-id`` (digits; else 400
INVALID_LOGIN_CUSTOMER_ID or 403 USER_PERMISSION_DENIED).

Bodies are proto JSON: lowerCamel or snake_case names; an unknown field or a bad enum value fails the
whole request (400, ``google.rpc.BadRequest``), as Google's JSON parser does.

``:uploadClickConversions`` / ``:uploadConversionAdjustments``: at most 2000 items. Each item is
checked (conversion action, ``yyyy-mm-dd hh:mm:ss+|-hh:mm`` date-times, click id or hashed user
identifiers, ISO 4217 currency, duplicates in the request and against what was accepted, and the
test's failure rules). With ``partialFailure: true`` the answer is 200 with ``results`` (an empty
object for each failed item) and ``partialFailureError`` whose errors locate items by
``fieldPathElements[0] = {fieldName: "conversions" | "conversion_adjustments", index}``; without it
one bad item fails the request (400) and nothing is accepted. ``validateOnly`` checks and stores
nothing.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterable

from tests.vendors.base import Answer, Recorded, VendorDouble
from tests.vendors.oauth import OAuthDouble

MAX_CONVERSIONS = 2000
HEX64 = re.compile(r"[0-9a-f]{64}")
DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}")
CUSTOMER_ID = re.compile(r"\d+")
CONVERSION_ACTION = re.compile(r"customers/(\d+)/conversionActions/(\d+)")
USER_LIST = re.compile(r"customers/(\d+)/userLists/(\d+)")
CLICK_IDS = ("gclid", "gbraid", "wbraid")
ISO_4217 = frozenset(
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN "
    "BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS "
    "GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW "
    "KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD "
    "NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD "
    "SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS "
    "VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG ZWL".split()
)

TOKEN_ERRORS = {"expired": "OAUTH_TOKEN_EXPIRED", "revoked": "OAUTH_TOKEN_REVOKED", "unknown": "OAUTH_TOKEN_INVALID"}

# Google's canonical status for each HTTP status it answers with.
RPC_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
              429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}

MESSAGES = {
    "CLICK_CONVERSION_ALREADY_EXISTS": "The imported event has the same click and conversion_date_time as "
                                       "an existing conversion.",
    "DUPLICATE_CLICK_CONVERSION_IN_REQUEST": "Multiple events have the same click and conversion_date_time.",
    "ORDER_ID_ALREADY_IN_USE": "The order ID has already been used for this conversion action.",
    "DUPLICATE_ORDER_ID": "Multiple conversions in the request have the same order ID.",
    "EXPIRED_EVENT": "The click is older than the conversion action's click-through lookback window.",
    "EVENT_NOT_FOUND": "The click associated with the given identifier was not found.",
    "TOO_RECENT_EVENT": "The click is too recent; retry after 6 hours.",
    "UNPARSEABLE_GCLID": "The gclid could not be decoded.",
    "CONVERSION_PRECEDES_EVENT": "The conversion_date_time is before the click.",
    "INVALID_CONVERSION_ACTION": "The conversion action cannot be found, or is not enabled.",
    "INVALID_USER_IDENTIFIER": "Make sure you hash user provided data using SHA-256 and ensure you are "
                               "normalizing according to the guidelines.",
    "GBRAID_WBRAID_BOTH_SET": "Only one of gbraid and wbraid may be set.",
    "TOO_MANY_CONVERSIONS_IN_REQUEST": "Too many conversions in the request (at most 2000).",
    "TOO_MANY_ADJUSTMENTS_IN_REQUEST": "Too many adjustments in the request (at most 2000).",
    "CONVERSION_ALREADY_ENHANCED": "Conversion already has enhancements with the same Order ID and "
                                   "conversion action.",
    "DUPLICATE_ENHANCEMENT_IN_REQUEST": "Multiple enhancements have the same conversion action and Order ID.",
    "GCLID_DATE_TIME_PAIR_AND_ORDER_ID_BOTH_SET": "Cannot set both gclid_date_time_pair and order_id.",
    "CONVERSION_NOT_FOUND": "The conversion for this adjustment was not found.",
    "INVALID_STRING_DATE_TIME_SECONDS_WITH_OFFSET": "The string date time's format should be "
                                                    "yyyy-mm-dd hh:mm:ss+|-hh:mm.",
    "REQUIRED": "The required field was not present.",
    "RESOURCE_NAME_MALFORMED": "The resource name is malformed.",
    "UNSUPPORTED": "The currency code is not supported.",
    "INVALID_SHA256_FORMAT": "The SHA256 encoded value is malformed.",
    "MISSING_USER_IDENTIFIER": "The user identifier is missing valid data.",
    "INVALID_USER_LIST_ID": "The user list ID provided for the job is invalid.",
    "JOB_ALREADY_STARTED": "The job has already been run; no operations can be added to it.",
}


# ---------------------------------------------------------------- proto JSON field tables
# A message is a dict of lowerCamel field -> type: None (any value, not checked), bool / float (a
# scalar of that type), a str (the name of an enum in _ENUMS), dict (a free-form message), a nested
# dict (a message checked the same way) or _ListOf(type) (a repeated field).

@dataclass(frozen=True)
class _ListOf:
    item: Any


_ENUMS = {
    "consent": {"UNSPECIFIED", "UNKNOWN", "GRANTED", "DENIED"},
    "adjustmentType": {"UNSPECIFIED", "UNKNOWN", "ENHANCEMENT", "RETRACTION", "RESTATEMENT"},
    "userIdentifierSource": {"UNSPECIFIED", "UNKNOWN", "FIRST_PARTY", "THIRD_PARTY"},
}
_ADDRESS = {k: None for k in ("hashedFirstName", "hashedLastName", "city", "state", "countryCode", "postalCode",
                              "hashedStreetAddress")}
_USER_IDENTIFIER = {"userIdentifierSource": "userIdentifierSource", "hashedEmail": None, "hashedPhoneNumber": None,
                    "mobileId": None, "thirdPartyUserId": None, "addressInfo": _ADDRESS}
_CONSENT = {"adUserData": "consent", "adPersonalization": "consent"}
_CLICK = {k: None for k in ("gclid", "gbraid", "wbraid", "conversionAction", "conversionDateTime", "currencyCode",
                            "orderId", "externalAttributionData", "customVariables", "cartData",
                            "conversionEnvironment", "customerType", "userIpAddress", "sessionAttributesEncoded",
                            "sessionAttributesKeyValuePairs")}
_CLICK.update(conversionValue=float, userIdentifiers=_ListOf(_USER_IDENTIFIER), consent=_CONSENT)
_ADJUSTMENT = {"gclidDateTimePair": {"gclid": None, "conversionDateTime": None}, "orderId": None,
               "conversionAction": None, "adjustmentDateTime": None, "adjustmentType": "adjustmentType",
               "restatementValue": {"adjustedValue": float, "currencyCode": None},
               "userIdentifiers": _ListOf(_USER_IDENTIFIER), "userAgent": None}
_CLICK_REQUEST = {"conversions": _ListOf(_CLICK), "partialFailure": bool, "validateOnly": bool,
                  "debugEnabled": bool, "jobId": None, "customerId": None}
_ADJUSTMENT_REQUEST = {"conversionAdjustments": _ListOf(_ADJUSTMENT), "partialFailure": bool,
                       "validateOnly": bool, "jobId": None, "customerId": None}
_USER_DATA = {"userIdentifiers": _ListOf(_USER_IDENTIFIER), "transactionAttribute": dict,
              "userAttribute": dict, "consent": _CONSENT}
_JOB_REQUEST = {"job": {"type": None, "externalId": None, "customerMatchUserListMetadata": {
    "userList": None, "consent": _CONSENT}}, "validateOnly": bool, "enableMatchRateRangePreview": bool,
    "customerId": None}
_ADD_OPERATIONS_REQUEST = {"operations": _ListOf({"create": _USER_DATA, "remove": _USER_DATA, "removeAll": bool}),
                           "enablePartialFailure": bool, "enableWarnings": bool, "validateOnly": bool,
                           "resourceName": None}
_RUN_REQUEST = {"validateOnly": bool, "resourceName": None}
_USER_LIST_REQUEST = {"operations": _ListOf({"create": dict, "update": dict, "remove": None, "updateMask": None}),
                      "partialFailure": bool, "validateOnly": bool, "responseContentType": None,
                      "customerId": None}


class _BadRequest(Exception):
    def __init__(self, message: str, field_path: str) -> None:
        super().__init__(message)
        self.message = message
        self.field_path = field_path


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _snake(name: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def _parsed(value: Any, schema: Any, where: str, version: str) -> Any:
    """The value with lowerCamel keys, checked against ``schema`` as Google's JSON parser checks."""
    if schema is None or schema is dict:
        return value
    if schema is bool:
        if not isinstance(value, bool):
            raise _BadRequest(f"Invalid value at '{where}' (TYPE_BOOL), {json.dumps(value)}", where)
        return value
    if schema is float:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise _BadRequest(f"Invalid value at '{where}' (TYPE_DOUBLE), {json.dumps(value)}", where)
        try:
            return float(value)
        except ValueError:
            raise _BadRequest(f"Invalid value at '{where}' (TYPE_DOUBLE), {json.dumps(value)}", where) from None
    if isinstance(schema, str):  # an enum
        if value not in _ENUMS[schema]:
            enum = f"type.googleapis.com/google.ads.googleads.{version}.enums.{schema}"
            raise _BadRequest(f"Invalid value at '{where}' ({enum}), {json.dumps(value)}", where)
        return value
    if isinstance(schema, _ListOf):
        if not isinstance(value, list):
            raise _BadRequest(f"Invalid value at '{where}', expected a list", where)
        return [_parsed(item, schema.item, f"{where}[{index}]", version) for index, item in enumerate(value)]
    if not isinstance(value, dict):
        raise _BadRequest(f"Invalid JSON payload received. Expected an object at '{where or 'request'}'.", where)
    parsed = {}
    for key, item in value.items():
        name = _camel(key)
        if name not in schema:
            at = f" at '{where}'" if where else ""
            raise _BadRequest(f'Invalid JSON payload received. Unknown name "{key}"{at}: Cannot find field.', where)
        path = f"{where}.{_snake(name)}" if where else _snake(name)
        parsed[name] = _parsed(item, schema[name], path, version)
    return parsed


# ---------------------------------------------------------------- errors in Google's shapes

Path = list[tuple[str, int | None]]


def _error(category: str, code: str, path: Path, message: str | None = None) -> dict[str, Any]:
    elements = [{"fieldName": name} if index is None else {"fieldName": name, "index": index} for name, index in path]
    error: dict[str, Any] = {"errorCode": {category: code}, "message": message or MESSAGES.get(code, code)}
    if elements:
        error["location"] = {"fieldPathElements": elements}
    return error


def _failure(version: str, errors: list[dict[str, Any]]) -> dict[str, Any]:
    return {"@type": f"type.googleapis.com/google.ads.googleads.{version}.errors.GoogleAdsFailure",
            "errors": errors, "requestId": secrets.token_urlsafe(16)}


def _rpc(status: int, message: str, details: list[dict[str, Any]] | None = None) -> Answer:
    body: dict[str, Any] = {"code": status, "message": message, "status": RPC_STATUS.get(status, "UNKNOWN")}
    if details:
        body["details"] = details
    return Answer(status, {"error": body})


DEFAULT_MESSAGES = {400: "Request contains an invalid argument.", 401: "The request does not have valid "
                    "authentication credentials.", 403: "The caller does not have permission"}


def _ads_failure(status: int, version: str, errors: list[dict[str, Any]], message: str | None = None) -> Answer:
    """A request-level failure carrying a GoogleAdsFailure (the REST form of a gRPC error)."""
    return _rpc(status, message or DEFAULT_MESSAGES.get(status, "Request failed."), [_failure(version, errors)])


def _bad_request(error: _BadRequest) -> Answer:
    violation = {"field": error.field_path, "description": error.message}
    return _rpc(400, error.message, [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                                      "fieldViolations": [violation]}])


def _location(error: dict[str, Any]) -> str:
    parts = []
    for element in error.get("location", {}).get("fieldPathElements", []):
        index = element.get("index")
        parts.append(element["fieldName"] + ("" if index is None else f"[{index}]"))
    return ".".join(parts)


def _partial_failure(version: str, errors: list[dict[str, Any]]) -> dict[str, Any]:
    message = ", ".join(f"{e['message']}, at {_location(e)}" for e in errors)
    return {"code": 3, "message": message, "details": [_failure(version, errors)]}


# ---------------------------------------------------------------- the double

@dataclass
class _Rule:
    kind: str  # "click" | "adjustment"
    category: str
    code: str
    message: str | None
    when: Callable[[dict[str, Any]], bool]


@dataclass
class OfflineUserDataJob:
    resource_name: str
    customer_id: str
    user_list_id: str
    status: str = "PENDING"  # then SUCCESS once run
    operations: list[tuple[str, tuple[tuple[str, str], ...]]] = field(default_factory=list)


class GoogleAdsDouble(VendorDouble):
    """``accepted``: the click conversions Google kept (camelCase dicts, as uploaded).
    ``adjustments``: the accepted conversion adjustments. ``members``: user list id -> the
    identifiers in it, as ``(kind, value)`` pairs (``("hashedEmail", "<hex>")``...), changed when a
    job is run. ``jobs``: offline user data jobs by resource name."""

    vendor = "google-ads"

    def __init__(
        self,
        oauth: OAuthDouble,
        *,
        developer_token: str = "test-developer-token",
        customer_ids: Iterable[str] = ("1234567890",),
        login_customer_id: str | None = None,
        conversion_actions: Iterable[str | int] | None = None,
        user_list_ids: Iterable[str | int] | None = None,
        bad_token_status: int = 401,
    ) -> None:
        """
        oauth: the token endpoint whose access tokens are accepted as Bearer tokens.
        customer_ids: the accounts the token's user may access (digits only).
        login_customer_id: the manager (MCC) id that must be sent in ``login-customer-id``.
        conversion_actions: conversion action ids that exist (None: any id does).
        user_list_ids: Customer Match list ids that exist (None: any id does); ``userLists:mutate``
            adds to them.
        bad_token_status: the status of an invalid/expired token answer (401 UNAUTHENTICATED; 400
            for the older endpoints' behaviour noted in actions-framework.md §1.7).
        """
        super().__init__()
        self.oauth = oauth
        self.developer_token = developer_token
        self.customer_ids = {str(c) for c in customer_ids}
        self.login_customer_id = login_customer_id
        self.conversion_actions = None if conversion_actions is None else {str(a) for a in conversion_actions}
        self.user_list_ids = None if user_list_ids is None else {str(u) for u in user_list_ids}
        self.bad_token_status = bad_token_status
        self.adjustments: list[dict[str, Any]] = []
        self.members: dict[str, set[tuple[str, str]]] = {}
        self.jobs: dict[str, OfflineUserDataJob] = {}
        self.created_user_lists: dict[str, dict[str, Any]] = {}
        self._rules: list[_Rule] = []

    # -- failure rules

    def add_rule(
        self,
        code: str,
        when: Callable[[dict[str, Any]], bool],
        *,
        kind: str = "click",
        category: str | None = None,
        message: str | None = None,
    ) -> None:
        """Fail each item (``kind`` "click" or "adjustment", camelCase dict) for which ``when`` is true
        with this error code (category: conversionUploadError / conversionAdjustmentUploadError)."""
        default = "conversionUploadError" if kind == "click" else "conversionAdjustmentUploadError"
        self._rules.append(_Rule(kind, category or default, code, message, when))

    def fail_click(self, click_id: str, code: str = "EVENT_NOT_FOUND") -> None:
        """Conversions on this gclid/gbraid/wbraid fail with ``code`` (EVENT_NOT_FOUND,
        EXPIRED_EVENT, TOO_RECENT_EVENT, UNPARSEABLE_GCLID, CONVERSION_PRECEDES_EVENT...)."""
        self.add_rule(code, lambda conversion: click_id in (conversion.get(k) for k in CLICK_IDS))

    def reset(self) -> None:
        super().reset()
        self.adjustments.clear()
        self.members.clear()
        self.jobs.clear()
        self.created_user_lists.clear()

    # -- serving

    def routes(self):
        base = r"/{version:v\d+}/customers/{cid:[^/:]+}"
        return [
            ("POST", base + ":uploadClickConversions", self._upload_clicks),
            ("POST", base + ":uploadConversionAdjustments", self._upload_adjustments),
            ("POST", base + "/offlineUserDataJobs:create", self._create_job),
            ("POST", base + r"/offlineUserDataJobs/{job:\d+}:addOperations", self._add_operations),
            ("POST", base + r"/offlineUserDataJobs/{job:\d+}:run", self._run_job),
            ("POST", base + "/userLists:mutate", self._mutate_user_lists),
        ]

    def failure_body(self, status: int, call: Recorded) -> Any:
        version = call.params.get("version", "v22")
        if status == 429:
            return _ads_failure(429, version, [_error("quotaError", "RESOURCE_EXHAUSTED", [])],
                                "Resource has been exhausted (e.g. check quota).").body
        if status == 401:
            return self._unauthenticated(version, "OAUTH_TOKEN_INVALID").body
        return _rpc(status, {500: "Internal error encountered.", 503: "The service is currently unavailable.",
                             504: "Deadline exceeded."}.get(status, "Request failed.")).body

    def _unauthenticated(self, version: str, code: str) -> Answer:
        return _ads_failure(
            self.bad_token_status, version, [_error("authenticationError", code, [])],
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
            "other valid authentication credential.",
        )

    def _gate(self, call: Recorded) -> tuple[str, str, Answer | None]:
        """Authentication and account access, checked before the body as Google does."""
        version, cid = call.params["version"], call.params["cid"]
        scheme, _, token = call.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return version, cid, _rpc(401, "Request is missing required authentication credential. Expected "
                                           "OAuth 2 access token, login cookie or other valid authentication "
                                           "credential.")
        state = self.oauth.token_state(token.strip())
        if state != "valid":
            return version, cid, self._unauthenticated(version, TOKEN_ERRORS[state])
        if call.headers.get("developer-token") != self.developer_token:
            return version, cid, _ads_failure(
                401, version, [_error("authenticationError", "DEVELOPER_TOKEN_INVALID", [],
                                      "The developer token is not valid.")])
        login = call.headers.get("login-customer-id")
        if login is not None and not CUSTOMER_ID.fullmatch(login):
            return version, cid, _ads_failure(400, version, [_error(
                "headerError", "INVALID_LOGIN_CUSTOMER_ID", [], "The login customer ID could not be validated.")])
        if not CUSTOMER_ID.fullmatch(cid):
            return version, cid, _ads_failure(400, version, [_error(
                "requestError", "INVALID_CUSTOMER_ID", [], f"Invalid customer ID '{cid}'.")])
        if self.login_customer_id is not None:
            allowed = login == self.login_customer_id
        else:  # direct access: no manager, or the account itself named as the login customer
            allowed = login is None or login in self.customer_ids
        if cid not in self.customer_ids or not allowed:
            return version, cid, _ads_failure(403, version, [_error(
                "authorizationError", "USER_PERMISSION_DENIED", [],
                "User doesn't have permission to access customer. Note: If you're accessing a client customer, "
                "the manager's customer id must be set in the 'login-customer-id' header.")])
        return version, cid, None

    def _body(self, call: Recorded, schema: dict[str, Any], version: str, *, optional: bool = False) -> Any:
        if call.json is None:
            if optional and not call.decoded.strip():
                return {}
            raise _BadRequest(f"Invalid JSON payload received. {call.json_error}.", "")
        return _parsed(call.json, schema, "", version)

    # -- conversions

    def _upload_clicks(self, call: Recorded) -> Answer:
        return self._upload(call, "click")

    def _upload_adjustments(self, call: Recorded) -> Answer:
        return self._upload(call, "adjustment")

    def _upload(self, call: Recorded, kind: str) -> Answer:
        version, cid, refused = self._gate(call)
        if refused is not None:
            return refused
        schema, items_key, field_name, too_many, error_category = (
            (_CLICK_REQUEST, "conversions", "conversions", "TOO_MANY_CONVERSIONS_IN_REQUEST", "conversionUploadError")
            if kind == "click" else
            (_ADJUSTMENT_REQUEST, "conversionAdjustments", "conversion_adjustments",
             "TOO_MANY_ADJUSTMENTS_IN_REQUEST", "conversionAdjustmentUploadError")
        )
        try:
            request = self._body(call, schema, version)
        except _BadRequest as error:
            return _bad_request(error)
        items = request.get(items_key, [])
        if not items:
            return _ads_failure(400, version, [_error("fieldError", "REQUIRED", [(field_name, None)])])
        if len(items) > MAX_CONVERSIONS:
            return _ads_failure(400, version, [_error(error_category, too_many, [(field_name, None)])])
        check = self._click_error if kind == "click" else self._adjustment_error
        stored = self.accepted if kind == "click" else self.adjustments
        errors: list[dict[str, Any]] = []
        results: list[dict[str, Any]] = []
        kept: list[dict[str, Any]] = []
        for index, item in enumerate(items):
            error = check(cid, item, items[:index], stored)
            if error is None:
                results.append(_result(item, kind))
                kept.append(item)
                continue
            category, code, trailing, message = error
            errors.append(_error(category, code, [(field_name, index), *trailing], message))
            results.append({})
        partial = request.get("partialFailure") is True
        if errors and not partial:
            return _ads_failure(400, version, errors)
        body: dict[str, Any] = {}
        if errors:
            body["partialFailureError"] = _partial_failure(version, errors)
        if request.get("validateOnly") is True:
            return Answer(200, body)
        stored.extend(kept)
        body["results"] = results
        if kind == "click":
            body["jobId"] = str(request.get("jobId") or secrets.randbelow(2**31))
        return Answer(200, body)

    def _action_error(self, cid: str, item: dict[str, Any], category: str) -> tuple[str, str, Path, str | None] | None:
        action = item.get("conversionAction")
        if not action:
            return "fieldError", "REQUIRED", [("conversion_action", None)], None
        match = CONVERSION_ACTION.fullmatch(action)
        if match is None:
            return "requestError", "RESOURCE_NAME_MALFORMED", [("conversion_action", None)], None
        known = self.conversion_actions is None or match.group(2) in self.conversion_actions
        if match.group(1) != cid or not known:
            return category, "INVALID_CONVERSION_ACTION", [("conversion_action", None)], None
        return None

    def _click_error(
        self, cid: str, item: dict[str, Any], before: list[dict[str, Any]], accepted: list[dict[str, Any]]
    ) -> tuple[str, str, Path, str | None] | None:
        failure = self._action_error(cid, item, "conversionUploadError")
        if failure is not None:
            return failure
        when = item.get("conversionDateTime")
        if not when:
            return "fieldError", "REQUIRED", [("conversion_date_time", None)], None
        if not _valid_date_time(when):
            return "dateError", "INVALID_STRING_DATE_TIME_SECONDS_WITH_OFFSET", [("conversion_date_time", None)], None
        if item.get("gbraid") and item.get("wbraid"):
            return "conversionUploadError", "GBRAID_WBRAID_BOTH_SET", [("wbraid", None)], None
        click = next(((k, item[k]) for k in CLICK_IDS if item.get(k)), None)
        identifiers = item.get("userIdentifiers") or []
        if click is None and not identifiers:
            return "fieldError", "REQUIRED", [("gclid", None)], "A click id or user identifiers are required."
        bad_identifier = _hashed_identifier_error(identifiers)
        if bad_identifier is not None:
            return "conversionUploadError", "INVALID_USER_IDENTIFIER", bad_identifier, None
        currency = item.get("currencyCode")
        if currency is not None and currency not in ISO_4217:
            return "currencyCodeError", "UNSUPPORTED", [("currency_code", None)], None
        order = item.get("orderId")
        if order:
            def same_order(other: dict[str, Any]) -> bool:
                return other.get("orderId") == order and other.get("conversionAction") == item["conversionAction"]

            if any(map(same_order, before)):
                return "conversionUploadError", "DUPLICATE_ORDER_ID", [("order_id", None)], None
            if any(map(same_order, accepted)):
                return "conversionUploadError", "ORDER_ID_ALREADY_IN_USE", [("order_id", None)], None
        if click is not None:
            def same_click(other: dict[str, Any]) -> bool:
                return (other.get(click[0]) == click[1] and other.get("conversionDateTime") == when
                        and other.get("conversionAction") == item["conversionAction"])

            if any(map(same_click, before)):
                return "conversionUploadError", "DUPLICATE_CLICK_CONVERSION_IN_REQUEST", [(click[0], None)], None
            if any(map(same_click, accepted)):
                return "conversionUploadError", "CLICK_CONVERSION_ALREADY_EXISTS", [(click[0], None)], None
        return self._rule_error("click", item)

    def _adjustment_error(
        self, cid: str, item: dict[str, Any], before: list[dict[str, Any]], accepted: list[dict[str, Any]]
    ) -> tuple[str, str, Path, str | None] | None:
        failure = self._action_error(cid, item, "conversionAdjustmentUploadError")
        if failure is not None:
            return failure
        kind = item.get("adjustmentType")
        if kind not in ("ENHANCEMENT", "RETRACTION", "RESTATEMENT"):
            return "fieldError", "REQUIRED", [("adjustment_type", None)], None
        pair, order = item.get("gclidDateTimePair"), item.get("orderId")
        if pair and order:
            return ("conversionAdjustmentUploadError", "GCLID_DATE_TIME_PAIR_AND_ORDER_ID_BOTH_SET",
                    [("order_id", None)], None)
        if kind == "ENHANCEMENT" and not order:
            return "fieldError", "REQUIRED", [("order_id", None)], None
        if not pair and not order:
            return "fieldError", "REQUIRED", [("order_id", None)], None
        if pair and not (pair.get("gclid") and _valid_date_time(pair.get("conversionDateTime"))):
            return ("dateError", "INVALID_STRING_DATE_TIME_SECONDS_WITH_OFFSET",
                    [("gclid_date_time_pair", None), ("conversion_date_time", None)], None)
        adjusted_at = item.get("adjustmentDateTime")
        if kind != "ENHANCEMENT" and not adjusted_at:
            return "fieldError", "REQUIRED", [("adjustment_date_time", None)], None
        if adjusted_at is not None and not _valid_date_time(adjusted_at):
            return "dateError", "INVALID_STRING_DATE_TIME_SECONDS_WITH_OFFSET", [("adjustment_date_time", None)], None
        if kind == "RESTATEMENT" and "adjustedValue" not in (item.get("restatementValue") or {}):
            return "fieldError", "REQUIRED", [("restatement_value", None), ("adjusted_value", None)], None
        bad_identifier = _hashed_identifier_error(item.get("userIdentifiers") or [])
        if bad_identifier is not None:
            return "conversionAdjustmentUploadError", "INVALID_USER_IDENTIFIER", bad_identifier, None
        if kind == "ENHANCEMENT":
            def same_enhancement(other: dict[str, Any]) -> bool:
                return (other.get("adjustmentType") == "ENHANCEMENT" and other.get("orderId") == order
                        and other.get("conversionAction") == item["conversionAction"])

            if any(map(same_enhancement, before)):
                return "conversionAdjustmentUploadError", "DUPLICATE_ENHANCEMENT_IN_REQUEST", [("order_id", None)], None
            if any(map(same_enhancement, accepted)):
                return "conversionAdjustmentUploadError", "CONVERSION_ALREADY_ENHANCED", [("order_id", None)], None
        return self._rule_error("adjustment", item)

    def _rule_error(self, kind: str, item: dict[str, Any]) -> tuple[str, str, Path, str | None] | None:
        for rule in self._rules:
            if rule.kind == kind and rule.when(item):
                return rule.category, rule.code, [], rule.message
        return None

    # -- Customer Match: offline user data jobs

    def _user_list_exists(self, list_id: str) -> bool:
        return self.user_list_ids is None or list_id in self.user_list_ids

    def _create_job(self, call: Recorded) -> Answer:
        version, cid, refused = self._gate(call)
        if refused is not None:
            return refused
        try:
            request = self._body(call, _JOB_REQUEST, version)
        except _BadRequest as error:
            return _bad_request(error)
        job = request.get("job") or {}
        if job.get("type") != "CUSTOMER_MATCH_USER_LIST":
            return _ads_failure(400, version, [_error("fieldError", "REQUIRED", [("job", None), ("type", None)],
                                                      "Only CUSTOMER_MATCH_USER_LIST jobs are supported.")])
        user_list = (job.get("customerMatchUserListMetadata") or {}).get("userList") or ""
        path: Path = [("job", None), ("customer_match_user_list_metadata", None), ("user_list", None)]
        match = USER_LIST.fullmatch(user_list)
        if match is None:
            return _ads_failure(400, version, [_error("requestError", "RESOURCE_NAME_MALFORMED", path)])
        if match.group(1) != cid or not self._user_list_exists(match.group(2)):
            return _ads_failure(400, version, [_error("offlineUserDataJobError", "INVALID_USER_LIST_ID", path)])
        if request.get("validateOnly") is True:
            return Answer(200, {})
        resource = f"customers/{cid}/offlineUserDataJobs/{secrets.randbelow(10**12)}"
        self.jobs[resource] = OfflineUserDataJob(resource, cid, match.group(2))
        return Answer(200, {"resourceName": resource})

    def _job(self, call: Recorded, version: str, cid: str) -> OfflineUserDataJob | Answer:
        resource = f"customers/{cid}/offlineUserDataJobs/{call.params['job']}"
        job = self.jobs.get(resource)
        if job is None:
            return _ads_failure(400, version, [_error("mutateError", "RESOURCE_NOT_FOUND", [],
                                                      f"Resource '{resource}' was not found.")])
        if job.status != "PENDING":
            return _ads_failure(400, version, [_error("offlineUserDataJobError", "JOB_ALREADY_STARTED", [])])
        return job

    def _add_operations(self, call: Recorded) -> Answer:
        version, cid, refused = self._gate(call)
        if refused is not None:
            return refused
        try:
            request = self._body(call, _ADD_OPERATIONS_REQUEST, version)
        except _BadRequest as error:
            return _bad_request(error)
        job = self._job(call, version, cid)
        if isinstance(job, Answer):
            return job
        operations = request.get("operations") or []
        if not operations:
            return _ads_failure(400, version, [_error("fieldError", "REQUIRED", [("operations", None)])])
        errors, kept = [], []
        for index, operation in enumerate(operations):
            actions = [key for key in ("create", "remove", "removeAll") if key in operation]
            if len(actions) > 1:
                return _bad_request(_BadRequest(
                    f"Invalid JSON payload received. Oneof field 'operation' is already set. Cannot set "
                    f"'{_snake(actions[1])}'", f"operations[{index}]"))
            problem = _operation_error(operation, actions[0] if actions else None)
            if problem is None:
                kept.append(_operation_entry(operation))
            else:
                category, code, trailing = problem
                errors.append(_error(category, code, [("operations", index), *trailing]))
        if errors and request.get("enablePartialFailure") is not True:
            return _ads_failure(400, version, errors)
        if request.get("validateOnly") is not True:
            job.operations.extend(kept)
        return Answer(200, {"partialFailureError": _partial_failure(version, errors)} if errors else {})

    def _run_job(self, call: Recorded) -> Answer:
        version, cid, refused = self._gate(call)
        if refused is not None:
            return refused
        try:
            request = self._body(call, _RUN_REQUEST, version, optional=True)
        except _BadRequest as error:
            return _bad_request(error)
        job = self._job(call, version, cid)
        if isinstance(job, Answer):
            return job
        if request.get("validateOnly") is True:
            return Answer(200, {})
        members = self.members.setdefault(job.user_list_id, set())
        for action, identifiers in job.operations:
            if action == "create":
                members.update(identifiers)
            elif action == "remove":
                members.difference_update(identifiers)
            else:
                members.clear()
        job.status = "SUCCESS"
        return Answer(200, {"name": f"customers/{cid}/operations/{secrets.randbelow(10**12)}"})

    def _mutate_user_lists(self, call: Recorded) -> Answer:
        version, cid, refused = self._gate(call)
        if refused is not None:
            return refused
        try:
            request = self._body(call, _USER_LIST_REQUEST, version)
        except _BadRequest as error:
            return _bad_request(error)
        results, errors = [], []
        names = {created["name"] for created in self.created_user_lists.values()}
        for index, operation in enumerate(request.get("operations") or []):
            create = operation.get("create")
            path: Path = [("operations", index), ("create", None), ("name", None)]
            if not isinstance(create, dict) or not create.get("name"):
                errors.append(_error("fieldError", "REQUIRED", path))
            elif create["name"] in names:
                errors.append(_error("userListError", "NAME_ALREADY_USED", path, "Name is already being used."))
            else:
                names.add(create["name"])
                results.append(create)
        if errors:
            return _ads_failure(400, version, errors)
        answered = []
        for create in results:
            list_id = str(secrets.randbelow(10**10))
            if request.get("validateOnly") is not True:
                self.created_user_lists[list_id] = create
                if self.user_list_ids is not None:
                    self.user_list_ids.add(list_id)
            answered.append({"resourceName": f"customers/{cid}/userLists/{list_id}"})
        return Answer(200, {"results": answered})


def _valid_date_time(value: Any) -> bool:
    if not isinstance(value, str) or not DATE_TIME.fullmatch(value):
        return False
    try:
        datetime.strptime(value, "%Y-%m-%d %H:%M:%S%z")
    except ValueError:
        return False
    return True


_HASHED = ("hashedEmail", "hashedPhoneNumber")
_HASHED_ADDRESS = ("hashedFirstName", "hashedLastName", "hashedStreetAddress")
_PLAIN_ADDRESS = ("city", "state", "countryCode", "postalCode")


def _hashed_identifier_error(identifiers: list[dict[str, Any]]) -> Path | None:
    """Where the first identifier that is not SHA-256 hex (or that hashes a must-not-hash field) is."""
    for index, identifier in enumerate(identifiers):
        for key in _HASHED:
            if key in identifier and not HEX64.fullmatch(str(identifier[key])):
                return [("user_identifiers", index), (_snake(key), None)]
        address = identifier.get("addressInfo") or {}
        for key in _HASHED_ADDRESS:
            if key in address and not HEX64.fullmatch(str(address[key])):
                return [("user_identifiers", index), ("address_info", None), (_snake(key), None)]
        for key in _PLAIN_ADDRESS:
            if key in address and HEX64.fullmatch(str(address[key]).lower()):
                return [("user_identifiers", index), ("address_info", None), (_snake(key), None)]
    return None


def _result(item: dict[str, Any], kind: str) -> dict[str, Any]:
    keys = ("gclid", "gbraid", "wbraid", "conversionAction", "conversionDateTime", "userIdentifiers") if (
        kind == "click") else ("gclidDateTimePair", "orderId", "conversionAction", "adjustmentType",
                               "adjustmentDateTime")
    return {key: item[key] for key in keys if key in item}


def _operation_error(operation: dict[str, Any], action: str | None) -> tuple[str, str, Path] | None:
    if action is None:
        return "fieldError", "REQUIRED", [("operation", None)]
    if action == "removeAll":
        return None
    identifiers = operation[action].get("userIdentifiers") or []
    if not identifiers or any(not identifier for identifier in identifiers):
        return "offlineUserDataJobError", "MISSING_USER_IDENTIFIER", [(action, None), ("user_identifiers", None)]
    bad = _hashed_identifier_error(identifiers)
    if bad is not None:
        return "offlineUserDataJobError", "INVALID_SHA256_FORMAT", [(_snake(action), None), *bad]
    return None


def _operation_entry(operation: dict[str, Any]) -> tuple[str, tuple[tuple[str, str], ...]]:
    if "removeAll" in operation:
        return "removeAll", ()
    action = "create" if "create" in operation else "remove"
    pairs = []
    for identifier in operation[action]["userIdentifiers"]:
        for key, value in identifier.items():
            if key == "userIdentifierSource":
                continue
            pairs.append((key, json.dumps(value, sort_keys=True) if isinstance(value, dict) else str(value)))
    return action, tuple(pairs)
