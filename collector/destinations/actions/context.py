"""What a vendor's perform works with: ``ActionContext.request`` and the vendor's ``Response``.

Every request goes through the destination: its endpoint override, headers, access token, rate
limit, timeout and pause. A 401 with a token source gets a new token and is sent once more
within the same attempt, never in a loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from collector.destinations.base import Outcome, classify_http

if TYPE_CHECKING:
    from collector.destinations.actions.destination import ActionDestination
    from collector.destinations.actions.subscriptions import ActionItem, Subscription

__all__ = ["ActionContext", "DestinationPaused", "Response"]

_NO_BODY: Any = object()


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body decoded as JSON, or None when it is not JSON."""
        try:
            return msgspec.json.decode(self.body)
        except msgspec.DecodeError:
            return None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class DestinationPaused(Exception):
    """Raised by ``ActionContext.request`` instead of sending while the vendor's Retry-After runs."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"paused by the vendor (429 / Retry-After) for {seconds:.1f}s more")
        self.seconds = seconds


class ActionContext:
    """What a perform works with: the settings, and ``request`` to the vendor. One per perform."""

    __slots__ = ("destination", "settings", "action", "subscription", "token", "refreshed")

    def __init__(self, destination: ActionDestination, subscription: Subscription) -> None:
        self.destination = destination
        self.settings = destination.config
        self.subscription = subscription
        self.action = subscription.action
        self.token: str | None = None  # the last access token sent
        self.refreshed = False  # a refused token was replaced once already (never twice)

    async def request(
        self, method: str, url: str, *, json: Any = _NO_BODY, data: Any = None,
        headers: Mapping[str, str] | None = None, params: Any = None,
    ) -> Response:
        """One HTTP request to the vendor. ``url`` is a path (joined to the vendor's endpoint) or
        a full URL; either way ``endpoint`` replaces its scheme, host and port. The destination's
        headers, access token, rate limit and timeout apply; a 401 with a token source gets a new
        token and is sent once more. Raises DestinationPaused while a Retry-After runs."""
        destination = self.destination
        await destination.wait_turn()
        request_headers = dict(destination.base_headers)
        if headers:
            request_headers.update(headers)
        if json is not _NO_BODY:
            data = msgspec.json.encode(json)
            request_headers.setdefault("Content-Type", "application/json")
        source = destination.token_source
        full_url = destination.url(url)
        while True:
            if source is not None:
                self.token = await source.token(destination.http)
                request_headers.update(destination.auth_headers(self.token))
            async with destination.http.request(
                method, full_url, data=data, headers=request_headers, params=params,
                timeout=destination.timeout, allow_redirects=False,
            ) as answer:
                response = Response(answer.status, answer.headers, await answer.read())
            if response.status == 401 and source is not None and not self.refreshed and self.token is not None:
                self.refreshed = True
                source.invalidate(self.token)
                continue
            destination.note_answer(response)
            return response

    def pause(self, seconds: float) -> None:
        """Hold every request of this destination, all lanes, for ``seconds``: for a vendor that
        says how long to wait somewhere the layer does not read (a body, a rate-limit header)."""
        self.destination.pause.extend(seconds)

    def paused_for(self) -> float:
        """Seconds left of the destination's pause (0 when none)."""
        return self.destination.pause.remaining()

    def classify(self, response: Response) -> Outcome:
        """The usual reading of an answer (classify_http), with a 429's missing Retry-After
        replaced by the destination's initial backoff and no secret in the reason."""
        outcome = classify_http(response.status, response.headers, response.body)
        if response.status == 429 and outcome.retry_after is None:
            outcome = Outcome("retry", outcome.reason, float(self.settings.retry.initial_backoff))
        return outcome

    @staticmethod
    def each(outcome: Outcome, items: list[ActionItem]) -> list[Outcome]:
        return [outcome] * len(items)
