"""Property tests (hypothesis) of everything that reads client input, and of the real process.

- the decoders (body.decode_json, body._inflate), normalize and auth, on arbitrary input: they
  answer or raise IngestError / EventError, never anything else; a valid event round-trips;
- the running collector, on generated (valid and invalid) JSON documents, encodings and auth, posted
  to random routes: every answer is a 200 or a 4xx with the JSON error body, never a 5xx nor a
  hang, and every event a 200 accepted is delivered.

Atheris (coverage-guided) is not used here: it installs quickly on Python 3.11, but needs a
libFuzzer run of its own rather than a bounded test; benchmarks/chaos/fuzz_atheris.py runs it on
the same functions for as long as one likes.
"""

from __future__ import annotations

import gzip
import itertools
import json
import zlib
from datetime import datetime, timedelta, timezone
from typing import Iterator

import msgspec
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.config.model import SourceConfig
from collector.ingest.auth import header_write_key, resolve_source
from collector.ingest.body import _inflate, decode_json
from collector.ingest.errors import EventError, IngestError
from collector.ingest.normalize import CALL_TYPES, RequestFacts, epoch_us, iso, normalize, parse_time
from tests.support.process import CollectorProcess

from .support import Archive, basic, file_destination, wait_until

LIMIT = 32 * 1024
FUZZ = settings(max_examples=200, deadline=2000, database=None, suppress_health_check=[HealthCheck.too_slow])

# -- strategies -------------------------------------------------------------------------------------

# What msgspec gives back for JSON: None, bool, int (any size it accepts), float, str, list, dict.
scalars = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=25,
)
SEGMENT_KEYS = [
    "type", "userId", "anonymousId", "event", "messageId", "timestamp", "sentAt", "properties", "traits",
    "context", "integrations", "groupId", "previousId", "name", "category", "writeKey", "batch",
]
zones = st.sampled_from([timezone.utc, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))])
iso_times = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1), timezones=zones).map(
    lambda d: d.isoformat()
)
# Values that are sometimes right for a Segment field and often wrong.
field_values = st.one_of(
    json_values,
    st.sampled_from(sorted(CALL_TYPES)),
    iso_times,
    st.sampled_from(["2024-01-01", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59Z", "last tuesday", ""]),
)
# Objects shaped like events: Segment's keys (with good or bad values) plus arbitrary ones.
event_like = st.dictionaries(st.sampled_from(SEGMENT_KEYS) | st.text(max_size=8), field_values, max_size=10)
batches = st.builds(lambda items, extra: {**extra, "batch": items}, st.lists(event_like | json_values, max_size=8), event_like)
documents = st.one_of(event_like, json_values, batches)

identifiers = st.text(min_size=1, max_size=30) | st.integers(-(10**6), 10**6)
properties = st.dictionaries(st.text(max_size=10), json_values, max_size=5)


@st.composite
def valid_events(draw: st.DrawFn) -> tuple[str, dict]:
    """A valid event of a random call type, with only fields Segment defines, in their right types."""
    call_type = draw(st.sampled_from(sorted(CALL_TYPES)))
    event: dict = {}
    who = draw(st.sampled_from(["userId", "anonymousId", "both"]))
    if who in ("userId", "both") or call_type == "alias":
        event["userId"] = draw(identifiers)
    if who in ("anonymousId", "both"):
        event["anonymousId"] = draw(identifiers)
    if call_type == "track":
        event["event"] = draw(st.text(min_size=1, max_size=30).filter(lambda s: s.strip()))
        event["properties"] = draw(properties)
    elif call_type == "group":
        event["groupId"] = draw(identifiers)
        event["traits"] = draw(properties)
    elif call_type == "alias":
        event["previousId"] = draw(identifiers)
    elif call_type in ("page", "screen"):
        event["name"] = draw(st.text(max_size=20))
        event["properties"] = draw(properties)
    else:
        event["traits"] = draw(properties)
    if draw(st.booleans()):
        event["context"] = draw(properties.filter(lambda d: "ip" not in d))
    if draw(st.booleans()):
        event["integrations"] = draw(st.dictionaries(st.text(max_size=10), st.booleans(), max_size=3))
    if draw(st.booleans()):
        event["messageId"] = draw(st.text(min_size=1, max_size=100))
    if draw(st.booleans()):
        event["timestamp"] = draw(iso_times)
    return call_type, event


RECEIVED = datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=timezone.utc)


def facts(**batch: object) -> RequestFacts:
    return RequestFacts(iso(RECEIVED), int(RECEIVED.timestamp() * 1000), "198.51.100.7", **batch)


# -- the decoders -----------------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=2000))
def test_decode_json_of_any_bytes_is_a_value_or_a_400(data: bytes) -> None:
    try:
        value = decode_json(data)
    except IngestError as error:
        assert error.status == 400 and error.code in {"invalid_json", "invalid_utf8", "nesting_too_deep"}
        assert error.message
        return
    assert data.strip()  # an empty body is never a value
    msgspec.json.encode(value)  # whatever decodes can be stored again


@FUZZ
@given(json_values)
def test_decode_json_round_trips_any_json(value: object) -> None:
    assert decode_json(json.dumps(value).encode()) == value


@FUZZ
@given(st.binary(max_size=3000), st.sampled_from([zlib.MAX_WBITS | 16, zlib.MAX_WBITS]), st.integers(0, 4096))
def test_inflate_of_any_bytes_is_data_under_the_cap_or_a_4xx(data: bytes, wbits: int, limit: int) -> None:
    try:
        out = _inflate(data, wbits, limit)
    except IngestError as error:
        assert (error.status, error.code) in {(400, "invalid_encoding"), (413, "request_too_large")}, error.code
        return
    assert len(out) <= limit


@FUZZ
@given(
    st.lists(st.binary(max_size=3000), min_size=1, max_size=3),
    st.integers(0, 6000),
    st.sampled_from(["gzip", "deflate"]),
    st.binary(max_size=40),
)
def test_inflate_round_trips_or_refuses_what_it_cannot_take(
    members: list[bytes], limit: int, encoding: str, junk: bytes
) -> None:
    if encoding == "gzip":
        data, wbits, whole = b"".join(gzip.compress(m) for m in members), zlib.MAX_WBITS | 16, b"".join(members)
    else:
        data, wbits, whole = zlib.compress(members[0]), zlib.MAX_WBITS, members[0]
    if len(whole) > limit:
        with pytest.raises(IngestError) as caught:
            _inflate(data, wbits, limit)
        assert caught.value.status == 413
    else:
        assert _inflate(data, wbits, limit) == whole
    # Whatever follows a complete stream: whitespace is allowed, anything else is refused, never a crash.
    try:
        out = _inflate(data + junk, wbits, limit)
    except IngestError as error:
        assert error.status in (400, 413)
    else:
        assert out.startswith(whole[: len(out)]) and len(out) <= limit


# -- normalize ----------------------------------------------------------------------------------------


@FUZZ
@given(
    documents,
    st.sampled_from([None, *sorted(CALL_TYPES)]),
    st.none() | properties,
    st.none() | st.dictionaries(st.text(max_size=10), st.booleans() | properties, max_size=3),
    st.none() | iso_times,
    st.integers(64, LIMIT),
)
def test_normalize_of_anything_is_an_event_or_an_event_error(
    item: object, call_type: str | None, context: dict | None, integrations: dict | None, sent_at: str | None, max_bytes: int
) -> None:
    f = facts(batch_context=context, batch_integrations=integrations)
    if sent_at is not None:
        f.batch_sent_at, f.batch_sent_at_us = sent_at, epoch_us(parse_time(sent_at, "sentAt"))
    try:
        message_id, body = normalize(item, call_type, f, max_bytes)
    except EventError as error:
        assert error.code and error.message
        return
    stored = msgspec.json.decode(body)
    assert isinstance(stored, dict)
    assert stored["messageId"] == message_id and isinstance(message_id, str) and 0 < len(message_id) <= 100
    assert stored["type"] in CALL_TYPES
    assert stored["receivedAt"] == iso(RECEIVED)
    datetime.fromisoformat(stored["timestamp"])
    assert "writeKey" not in stored
    assert len(body) <= max_bytes + 512


@FUZZ
@given(valid_events(), st.booleans())
def test_a_valid_event_round_trips_its_fields(drawn: tuple[str, dict], typed_route: bool) -> None:
    call_type, event = drawn
    sent = json.loads(json.dumps(event))  # what the client sent, before normalize enriches it
    item = dict(event) if typed_route else {**event, "type": call_type}
    message_id, body = normalize(item, call_type if typed_route else None, facts(), LIMIT)
    stored = msgspec.json.decode(body)
    for field, value in sent.items():
        if field == "timestamp":
            assert stored["originalTimestamp"] == value
            # no sentAt: the client's time, in UTC, to the millisecond as Segment writes it
            skew = datetime.fromisoformat(value) - datetime.fromisoformat(stored["timestamp"])
            assert timedelta(0) <= skew < timedelta(milliseconds=1)
        elif field == "context":
            assert stored["context"] == {**value, "ip": "198.51.100.7"}
        elif field in ("userId", "anonymousId", "groupId", "previousId") and isinstance(value, int):
            assert stored[field] == str(value)  # numeric ids become strings, as Segment does
        else:
            assert stored[field] == value, field
    assert stored["type"] == call_type
    assert stored["messageId"] == message_id == sent.get("messageId", message_id)
    assert set(stored) - set(sent) <= {"type", "messageId", "timestamp", "originalTimestamp", "receivedAt", "context"}


# -- auth ---------------------------------------------------------------------------------------------

SOURCES = {"wk_a": ("a", SourceConfig(write_key="wk_a")), "wk_off": ("off", SourceConfig(write_key="wk_off", enabled=False))}


@FUZZ
@given(st.none() | st.text(max_size=60) | st.binary(max_size=40).map(lambda b: "Basic " + b.decode("latin-1")), json_values)
def test_auth_of_anything_is_a_source_or_a_401_403(authorization: str | None, body_key: object) -> None:
    try:
        header = header_write_key(authorization)
    except IngestError as error:
        assert (error.status, error.code) == (401, "invalid_authorization")
        header = "unreadable"
    else:
        assert header is None or isinstance(header, str)
    try:
        source = resolve_source(authorization, body_key, SOURCES)
    except IngestError as error:
        assert error.status in (401, 403) and error.message
        return
    assert source == "a"
    assert header == "wk_a" or (not header and body_key == "wk_a")


@FUZZ
@given(st.text(min_size=1, max_size=40).filter(lambda k: ":" not in k), st.text(max_size=20))
def test_basic_auth_of_any_key_gives_that_key(key: str, password: str) -> None:
    import base64

    authorization = "Basic " + base64.b64encode(f"{key}:{password}".encode()).decode()
    assert header_write_key(authorization) == key


# -- the real process ---------------------------------------------------------------------------------

WRITE_KEY = "wk_fuzz"
ROUTES = [f"/v1/{name}" for name in sorted(CALL_TYPES)] + [f"/v1/{name[0]}" for name in sorted(CALL_TYPES)]
BATCH_ROUTES = ["/v1/batch", "/v1/b", "/v1/import"]
CLIENT_ERRORS = {400, 401, 403, 408, 413, 415}


class Fuzzed:
    def __init__(self, process: CollectorProcess, archive: Archive) -> None:
        self.process = process
        self.archive = archive
        self.session = requests.Session()
        self.expected: set[str] = set()  # messageIds a 200 accepted
        self.answers: dict[int, int] = {}
        self.ids = itertools.count()


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    directory = tmp_path_factory.mktemp("fuzz")
    process = CollectorProcess(directory / "collector", {
        "storage": {"min_free_bytes": 0},
        "server": {"request_timeout": "5s"},
        "sources": {"fuzz": {"write_key": WRITE_KEY}, "off": {"write_key": "wk_disabled", "enabled": False}},
        "destinations": {"archive": file_destination(directory / "archive")},
    }).start()
    try:
        yield Fuzzed(process, Archive(directory / "archive"))
    finally:
        if process.alive:
            process.stop()


def _stamp(item: object, run: Fuzzed) -> str | None:
    """Give an event-like object a unique messageId (unless its messageId is a deliberately wrong type),
    so that what a 200 accepted can be found among the deliveries."""
    if not isinstance(item, dict) or not (item.get("messageId") is None or isinstance(item.get("messageId"), str)):
        return None
    item["messageId"] = f"fz-{next(run.ids)}"
    return item["messageId"]


def _typed(drawn: tuple[str, dict]) -> dict:
    call_type, event = drawn
    return {**event, "type": call_type}


@st.composite
def routed_documents(draw: st.DrawFn) -> tuple[str, object]:
    """(route, document): a valid event or batch about half of the time, else anything."""
    shape = draw(st.sampled_from(["event", "batch", "anything"]))
    if shape == "event":
        call_type, event = draw(valid_events())
        route = draw(st.sampled_from([f"/v1/{call_type}", f"/v1/{call_type[0]}"]))
        if draw(st.booleans()):  # a field or two replaced by anything
            event.update(draw(st.dictionaries(st.sampled_from(SEGMENT_KEYS), field_values, max_size=2)))
        return route, event
    if shape == "batch":
        items = draw(st.lists(valid_events().map(_typed) | event_like | json_values, min_size=1, max_size=8))
        extra = draw(st.fixed_dictionaries({}, optional={
            "context": properties | json_values, "integrations": properties, "sentAt": iso_times | field_values,
        }))
        return draw(st.sampled_from(BATCH_ROUTES)), {**extra, "batch": items}
    return draw(st.sampled_from(ROUTES + BATCH_ROUTES + ["/v1/m"])), draw(documents)


@settings(
    max_examples=200, deadline=15000, database=None, derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    routed_documents(),
    st.sampled_from(["basic", "basic", "basic", "body", "none", "wrong", "disabled", "garbage"]),
    st.sampled_from([None, "application/json", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]),
    st.sampled_from([None, None, "gzip", "deflate", "br"]),
    st.integers(0, 9).map(lambda n: n == 0),  # now and then, a body cut short and not UTF-8
)
def test_the_running_collector_answers_any_document_with_200_or_a_json_4xx(
    fuzzed: Fuzzed, routed: tuple[str, object], auth: str, content_type: str | None, encoding: str | None, raw_garbage: bool
) -> None:
    route, document = routed
    headers: dict[str, str] = {}
    stamped: list[str | None] = []
    if route in BATCH_ROUTES and isinstance(document, dict) and isinstance(document.get("batch"), list):
        stamped = [_stamp(item, fuzzed) for item in document["batch"]]
    elif route not in BATCH_ROUTES and route != "/v1/m":
        stamped = [_stamp(document, fuzzed)]
    if auth == "basic":
        headers["Authorization"] = basic(WRITE_KEY)
    elif auth == "wrong":
        headers["Authorization"] = basic("wk_nobody")
    elif auth == "disabled":
        headers["Authorization"] = basic("wk_disabled")
    elif auth == "garbage":
        headers["Authorization"] = "Basic %%%not-base64"
    if auth == "body" and isinstance(document, dict):
        document["writeKey"] = WRITE_KEY
    body = json.dumps(document).encode()
    if raw_garbage:
        body = body[: len(body) // 2] + b"\xff\xfe"  # truncated, not UTF-8
    if encoding == "gzip":
        body = gzip.compress(body)
    elif encoding == "deflate":
        body = zlib.compress(body)
    if encoding:
        headers["Content-Encoding"] = encoding
    if content_type:
        headers["Content-Type"] = content_type
    answer = fuzzed.session.post(fuzzed.process.url + route, data=body, headers=headers, timeout=10)
    fuzzed.answers[answer.status_code] = fuzzed.answers.get(answer.status_code, 0) + 1
    assert answer.status_code == 200 or answer.status_code in CLIENT_ERRORS, (answer.status_code, answer.text)
    decoded = answer.json()
    if answer.status_code != 200:
        assert decoded["success"] is False and decoded["code"] and decoded["message"], decoded
        return
    assert decoded["success"] is True
    # Batches hold at most 8 events, so the answer names every rejected one (it names up to 10).
    rejected = {r["index"] for r in decoded.get("rejected", [])}
    fuzzed.expected |= {m for i, m in enumerate(stamped) if m is not None and i not in rejected}


def test_every_event_a_200_accepted_during_the_fuzzing_was_delivered(fuzzed: Fuzzed) -> None:
    """Runs after the fuzzing above (same module, file order)."""
    assert fuzzed.answers, "the fuzzing test did not run first"
    assert sum(fuzzed.answers.values()) >= 200
    assert not any(status >= 500 for status in fuzzed.answers), fuzzed.answers
    # The generators must reach both outcomes, or this proves little.
    assert fuzzed.answers.get(200, 0) >= 10 and sum(n for s, n in fuzzed.answers.items() if s != 200) >= 50, fuzzed.answers
    # The fuzzing is derandomized: the same 200 documents every run, so that these floors (which
    # prove the check has events to check) cannot fail by chance, as random draws once did.
    assert len(fuzzed.expected) >= 5
    committed = lambda: fuzzed.process.metric("collector_events_committed_total")  # noqa: E731
    wait_until(
        "every accepted event in the archive",
        lambda: fuzzed.expected <= fuzzed.archive.message_ids() and len(fuzzed.archive.events()) >= committed(),
        timeout=20,
    )
    assert len(fuzzed.archive.events()) == committed()  # and nothing more than what was committed
    assert requests.get(fuzzed.process.url + "/healthz", timeout=5).status_code == 200
    print(f"\nfuzzing the process: answers {dict(sorted(fuzzed.answers.items()))}, {len(fuzzed.expected)} tracked events delivered")
