"""Coverage-guided fuzzing (atheris, libFuzzer) of what reads client input: body._inflate,
body.decode_json, normalize and the auth header, as the handlers chain them. A crash is any
exception other than IngestError / EventError, or a broken invariant (an inflated body over its
cap, a stored event that is not a JSON object with a messageId).

Not part of the test suite (tests/chaos/test_fuzz.py has the bounded hypothesis version):

    pip install atheris
    python -m benchmarks.chaos.fuzz_atheris -max_total_time=300 [-dict=... corpus_dir]

Every libFuzzer flag works; the default runs until a crash or Ctrl-C.
"""

from __future__ import annotations

import sys
import zlib

import atheris

import msgspec

from collector.config.model import SourceConfig
from collector.ingest.auth import resolve_source
from collector.ingest.body import _inflate, decode_json
from collector.ingest.errors import EventError, IngestError
from collector.ingest.normalize import CALL_TYPES, epoch_us, normalize, parse_time, request_facts

SOURCES = {"wk_a": ("a", SourceConfig(write_key="wk_a"))}
TYPES = [None, *sorted(CALL_TYPES)]
LIMIT = 64 * 1024


def one_input(data: bytes) -> None:
    # The first byte chooses how the rest is read: bits 0-1 the encoding (none, gzip, deflate),
    # bits 2-4 the route's call type (a batch route when 0), bit 5 a Basic header. The rest is the body.
    if not data:
        return
    flags, body = data[0], data[1:]
    mode = (flags & 3) % 3
    call_type = TYPES[((flags >> 2) & 7) % len(TYPES)]
    authorization = "Basic d2tfYTo=" if flags & 32 else None
    try:
        if mode == 1:
            body = _inflate(body, zlib.MAX_WBITS | 16, LIMIT)
        elif mode == 2:
            body = _inflate(body, zlib.MAX_WBITS, LIMIT)
        assert len(body) <= LIMIT
        payload = decode_json(body)
        if not isinstance(payload, dict):
            return
        resolve_source(authorization, payload.get("writeKey"), SOURCES)
    except IngestError:
        return
    facts = request_facts("198.51.100.7")
    batch = call_type is None
    items = payload.get("batch") if batch else [payload]
    if not isinstance(items, list):
        return
    if isinstance(payload.get("context"), dict):
        facts.batch_context = payload["context"]
    sent_at = payload.get("sentAt")
    if sent_at is not None:
        try:
            facts.batch_sent_at_us, facts.batch_sent_at = epoch_us(parse_time(sent_at, "sentAt")), sent_at
        except EventError:
            return
    for item in items:
        try:
            message_id, stored = normalize(item, call_type, facts, 32 * 1024)
        except EventError:
            continue
        event = msgspec.json.decode(stored)
        assert isinstance(event, dict) and event["messageId"] == message_id and event["receivedAt"]


SEEDS = [
    {"writeKey": "wk_a", "userId": "u1", "event": "Signed Up", "properties": {"plan": "pro"}, "timestamp": "2024-05-01T12:00:00Z"},
    {"writeKey": "wk_a", "batch": [{"type": "identify", "anonymousId": "a1", "traits": {"x": [1, 2.5, None]}},
                                    {"type": "group", "userId": 7, "groupId": "g"}],
     "context": {"ip": "1.2.3.4"}, "integrations": {"All": False}, "sentAt": "2024-05-01T12:00:01.250+02:00"},
    {"writeKey": "wk_a", "userId": "u", "previousId": "p", "messageId": "m-1", "sentAt": "2024-05-01T12:00:00Z"},
]


def write_seeds(directory: str) -> None:
    """A few valid requests in every encoding, so that the fuzzer starts from the interesting paths."""
    import gzip
    import json
    import os

    os.makedirs(directory, exist_ok=True)
    for number, seed in enumerate(SEEDS):
        raw = json.dumps(seed).encode()
        for mode, body in enumerate((raw, gzip.compress(raw), zlib.compress(raw))):
            for type_index in range(len(TYPES)):
                flags = mode | (type_index << 2) | (32 if number % 2 else 0)
                with open(os.path.join(directory, f"seed-{number}-{mode}-{type_index}"), "wb") as f:
                    f.write(bytes([flags]) + body)


def main() -> None:
    corpus = [arg for arg in sys.argv[1:] if not arg.startswith("-")]
    if corpus:
        write_seeds(corpus[0])
    atheris.instrument_all()  # every Python function loaded so far, the collector's included
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
