"""The segment destination's specifics; the shared contract is in test_contract.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest

from collector.destinations.base import DELIVERED, Envelope, Outcome
from collector.destinations.segment import batch_body

from .fakes import SegmentFake, build, client_session, envelopes, parse, started, stored_events

NOW = "2024-11-28T14:00:00.000Z"


async def _send_to_fake(tmp_path: Path, batch: list[Envelope], **settings: Any) -> tuple[Outcome, SegmentFake]:
    async with SegmentFake(tmp_path) as fake, client_session() as (http, _):
        config = fake.point({"type": "segment", **settings})
        async with started(build(config, http, tmp_path)) as destination:
            outcome = await destination.send(batch)
    return outcome, fake


async def test_plain_json_without_gzip(tmp_path: Path) -> None:
    batch = envelopes()
    outcome, fake = await _send_to_fake(tmp_path, batch, gzip=False)
    assert outcome == DELIVERED
    fake.assert_delivered(batch)
    request = fake.the_request()
    assert "Content-Encoding" not in request.headers and request.wire == request.body


async def test_gzip_compresses_the_body(tmp_path: Path) -> None:
    batch = envelopes(stored_events() * 20)
    outcome, fake = await _send_to_fake(tmp_path, batch, gzip=True)
    assert outcome == DELIVERED
    fake.assert_delivered(batch)
    request = fake.the_request()
    assert request.headers["Content-Encoding"] == "gzip" and len(request.wire) < len(request.body) / 5


def test_events_are_forwarded_byte_for_byte_when_nothing_needs_changing() -> None:
    events = [e for e in stored_events() if "sentAt" not in e and "writeKey" not in e]
    assert events
    batch = envelopes(events)
    events_json = b",".join(e.raw for e in batch)
    assert batch_body(batch, NOW) == b'{"batch":[' + events_json + b'],"sentAt":"' + NOW.encode() + b'"}'


def test_stale_sent_at_and_write_key_are_replaced_and_dropped() -> None:
    track = stored_events()[0]
    assert track["sentAt"] != NOW and "writeKey" in track
    body = json.loads(batch_body(envelopes([track]), NOW))
    forwarded = body["batch"][0]
    assert forwarded["sentAt"] == NOW and "writeKey" not in forwarded
    del track["sentAt"], track["writeKey"], forwarded["sentAt"]
    assert forwarded == track  # everything else as stored
    assert list(forwarded) == list(track)  # in the same order


def test_a_full_default_batch_fits_segment_request_limit() -> None:
    config = parse({"type": "segment", "write_key": "k"})
    assert config.batch.max_events <= 2500 and config.batch.max_bytes <= 500_000
    # Fill the engine's byte budget with events whose short sentAt grows when replaced.
    event = {**stored_events()[0], "sentAt": "2024-11-28T13:26:00Z"}
    one = len(msgspec.json.encode(event))
    count = min(config.batch.max_events, config.batch.max_bytes // one)
    assert len(batch_body(envelopes([event] * count), NOW)) <= 500_000


@pytest.mark.parametrize(
    ("batch", "error"),
    [({"max_events": 3000}, "2500 events"), ({"max_bytes": "600KB"}, "500 KB")],
)
def test_batch_over_segment_limits_is_refused(batch: dict, error: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=error):
        parse({"type": "segment", "write_key": "k", "batch": batch})


def test_write_key_is_required_and_endpoint_needs_a_scheme() -> None:
    with pytest.raises(msgspec.ValidationError, match="write_key"):
        parse({"type": "segment"})
    with pytest.raises(msgspec.ValidationError, match="http"):
        parse({"type": "segment", "write_key": "k", "endpoint": "api.segment.io"})
    assert parse({"type": "segment", "write_key": "k"}).endpoint == "https://api.segment.io"


async def test_endpoint_with_path_and_trailing_slash(tmp_path: Path) -> None:
    async with SegmentFake(tmp_path) as fake, client_session() as (http, requests):
        config = {**fake.point({"type": "segment"}), "endpoint": fake.url + "/collector/"}
        async with started(build(config, http, tmp_path)) as destination:
            await destination.send(envelopes())
    assert requests == [fake.url + "/collector/v1/batch"]


@pytest.mark.parametrize("status", [410, 460])
async def test_statuses_segment_clients_retry_are_retried(tmp_path: Path, status: int) -> None:
    async with SegmentFake(tmp_path) as fake, client_session() as (http, _):
        fake.answer(status, {"Retry-After": "5"}, b"")
        async with started(build(fake.point({"type": "segment"}), http, tmp_path)) as destination:
            outcome = await destination.send(envelopes())
    assert (outcome.kind, outcome.retry_after) == ("retry", 5.0)


async def test_unreachable_endpoint_raises_for_the_engine_to_retry(tmp_path: Path) -> None:
    async with SegmentFake(tmp_path) as fake:
        config = fake.point({"type": "segment"})
    async with client_session() as (http, _):
        async with started(build(config, http, tmp_path)) as destination:
            with pytest.raises(aiohttp.ClientConnectionError):
                await destination.send(envelopes())
