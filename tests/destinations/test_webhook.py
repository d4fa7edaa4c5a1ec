"""The webhook destination's specifics; the shared contract is in test_contract.py."""

from __future__ import annotations

import gzip
import hashlib
import hmac
from pathlib import Path
from typing import Any

import msgspec
import pytest

from collector.destinations.base import DELIVERED, Envelope, Outcome

from .fakes import WebhookFake, build, client_session, envelopes, parse, started, stored_events


async def _send(tmp_path: Path, batch: list[Envelope], **settings: Any) -> tuple[Outcome, WebhookFake]:
    async with WebhookFake(tmp_path) as fake, client_session() as (http, _):
        config = fake.point({"type": "webhook", "url": "http://placeholder", **settings})
        async with started(build(config, http, tmp_path)) as destination:
            outcome = await destination.send(batch)
    return outcome, fake


def _verify_as_documented(secret: str, body: bytes, header: str) -> bool:
    """The recipe in collector/destinations/webhook.py's docstring, as a receiver would run it."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


async def test_ndjson_sends_one_stored_event_per_line(tmp_path: Path) -> None:
    batch = envelopes()
    outcome, fake = await _send(tmp_path, batch, format="ndjson")
    assert outcome == DELIVERED
    fake.assert_delivered(batch)
    request = fake.the_request()
    assert request.headers["Content-Type"] == "application/x-ndjson"
    assert [msgspec.json.decode(line) for line in request.body.splitlines()] == stored_events()


async def test_json_array_of_the_stored_events(tmp_path: Path) -> None:
    outcome, fake = await _send(tmp_path, envelopes(), format="json")
    assert outcome == DELIVERED
    assert msgspec.json.decode(fake.the_request().body) == stored_events()


async def test_put_with_custom_headers(tmp_path: Path) -> None:
    headers = {"X-Api-Key": "k-123", "content-type": "application/vnd.acme+json"}
    outcome, fake = await _send(tmp_path, envelopes(), method="PUT", headers=headers)
    assert outcome == DELIVERED
    request = fake.the_request()
    assert request.method == "PUT"
    assert request.headers["X-Api-Key"] == "k-123"
    assert request.headers.getall("Content-Type") == ["application/vnd.acme+json"]


async def test_signature_verifies_with_the_documented_recipe(tmp_path: Path) -> None:
    outcome, fake = await _send(
        tmp_path, envelopes(), signing_secret="s3cret", signature_header="X-Hub-Signature-256"
    )
    assert outcome == DELIVERED
    request = fake.the_request()
    assert _verify_as_documented(fake.secret, request.body, request.headers["X-Hub-Signature-256"])
    assert not _verify_as_documented("wrong", request.body, request.headers["X-Hub-Signature-256"])
    assert "X-Signature" not in request.headers


async def test_with_gzip_the_signature_covers_the_uncompressed_body(tmp_path: Path) -> None:
    batch = envelopes(stored_events() * 10)
    outcome, fake = await _send(tmp_path, batch, gzip=True, signing_secret="s3cret")
    assert outcome == DELIVERED
    fake.assert_delivered(batch)
    request = fake.the_request()
    assert request.headers["Content-Encoding"] == "gzip" and gzip.decompress(request.wire) == request.body
    assert _verify_as_documented(fake.secret, request.body, request.headers["X-Signature"])


async def test_without_a_secret_no_signature_header(tmp_path: Path) -> None:
    outcome, fake = await _send(tmp_path, envelopes())
    assert outcome == DELIVERED
    assert "X-Signature" not in fake.the_request().headers


async def test_redirect_is_not_followed(tmp_path: Path) -> None:
    async with WebhookFake(tmp_path) as fake, client_session() as (http, _):
        fake.answer(307, {"Location": fake.url + "/hooks/collector"}, b"")
        async with started(build(fake.point({"type": "webhook", "url": "x"}), http, tmp_path)) as destination:
            outcome = await destination.send(envelopes())
    assert outcome.kind == "reject" and "HTTP 307" in outcome.reason
    assert len(fake.received) == 1


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        ({}, "url"),
        ({"url": "hooks.example.com/x"}, "http"),
        ({"url": "https://h", "method": "GET"}, "method"),
        ({"url": "https://h", "format": "csv"}, "format"),
    ],
)
def test_invalid_settings_are_refused(settings: dict[str, Any], error: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=error):
        parse({"type": "webhook", **settings})
