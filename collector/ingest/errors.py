"""How ingestion says no: Segment's error body, `{"success":false,"code":...,"message":...}`.

analytics-python reads `code` and `message` from any non-200 answer; browser and node clients drop
an event on a 4xx (so a 4xx must mean "this will never succeed") and retry 5xx, 408 and 429.
"""

from __future__ import annotations

import msgspec


class IngestError(Exception):
    def __init__(self, status: int, code: str, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after

    def body(self) -> bytes:
        return msgspec.json.encode({"success": False, "code": self.code, "message": self.message})


class EventError(Exception):
    """One event of a request is invalid; in a batch the others still go through."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
