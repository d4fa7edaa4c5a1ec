"""Why the log could not take an event."""


class StorageUnavailable(Exception):
    """The event was not committed; the client should retry later (answered 503 + Retry-After)."""

    def __init__(self, reason: str, retry_after: int = 5) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
