"""When the provider may call GitHub again, from ``x-ratelimit-*``, ``retry-after`` and
secondary-limit answers. One instance per token (per provider instance), thread-safe."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from flashfusion.plugins import Budget
from flashfusion.providers.github.errors import SECONDARY_DEFAULT_WAIT, RateLimited

log = logging.getLogger("flashfusion.providers.github")

MAX_SECONDARY_WAIT = 900.0


class Throttle:
    def __init__(self, clock: Callable[[], float], reserve: int) -> None:
        self._clock = clock
        self._reserve = reserve
        self._lock = threading.Lock()
        self._not_before = 0.0
        self._strikes = 0
        self.remaining: int | None = None
        self.limit: int | None = None
        self.reset: float | None = None

    def wait_seconds(self) -> float:
        """Seconds until polling may call GitHub again (0 when it may now)."""
        with self._lock:
            return max(0.0, self._not_before - self._clock())

    def delay(self, seconds: float) -> None:
        with self._lock:
            self._not_before = max(self._not_before, self._clock() + seconds)

    def observe(self, headers: Mapping[str, Any]) -> None:
        """Record a response's ``x-ratelimit-*`` headers; keep ``reserve`` requests for dispatches
        by pausing polling until the window resets."""
        lower = {str(k).lower(): v for k, v in headers.items()}
        try:
            remaining = int(float(lower["x-ratelimit-remaining"]))
            reset = float(lower["x-ratelimit-reset"])
            limit = int(float(lower["x-ratelimit-limit"])) if "x-ratelimit-limit" in lower else None
        except (KeyError, TypeError, ValueError):
            return
        self._note(remaining, reset, limit)

    def observe_client(self, requester: Any) -> None:
        """Same as ``observe`` from what PyGithub's ``Requester`` kept of its last answer
        (read from the requester: ``Github.rate_limiting`` would ask GitHub when it knows
        nothing yet)."""
        remaining, limit = requester.rate_limiting
        if remaining >= 0 and requester.rate_limiting_resettime:
            self._note(remaining, float(requester.rate_limiting_resettime), limit if limit >= 0 else None)

    def budget(self) -> Budget | None:
        with self._lock:
            if self.remaining is None:
                return None
            reset = None if self.reset is None else datetime.fromtimestamp(self.reset, UTC)
            return Budget(self.remaining, self.limit, reset)

    def _note(self, remaining: int, reset: float, limit: int | None = None) -> None:
        with self._lock:
            self.remaining, self.reset = remaining, reset
            self.limit = limit if limit is not None else self.limit
            if remaining <= self._reserve:
                self._not_before = max(self._not_before, reset + 1)

    def succeeded(self) -> None:
        with self._lock:
            self._strikes = 0

    def limited(self, info: RateLimited) -> float:
        """Record a rate-limit answer; returns the chosen wait in seconds."""
        now = self._clock()
        with self._lock:
            if info.secondary:
                self._strikes += 1
                wait = info.retry_after
                if wait is None:
                    wait = min(MAX_SECONDARY_WAIT, SECONDARY_DEFAULT_WAIT * 2 ** (self._strikes - 1))
            elif info.retry_after is not None:
                wait = info.retry_after
            elif info.reset is not None:
                wait = max(0.0, info.reset - now) + 1
            else:
                wait = SECONDARY_DEFAULT_WAIT
            self._not_before = max(self._not_before, now + wait)
        log.warning(
            "github: rate limited (%s), pausing polling for %.0f s", "secondary" if info.secondary else "primary", wait
        )
        return wait
