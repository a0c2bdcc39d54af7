"""Checking an ``X-API-Key`` without a database write per request.

The key's validity comes from the process's ``KeyCache`` (re-checked at most every
``auth.key_cache_seconds``); its rate limit from the process's slice of the key's GCRA
budget and its use is counted in memory (``LeaseBook``); a background thread writes the
counts and gives unused cells back every ``auth.usage_flush_seconds``, and ``flush`` does
it once more at graceful shutdown. See README, "Access control".
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime

from flashfusion.core.access import keyformat as keys
from flashfusion.core.access import ratelimit
from flashfusion.core.access.keycache import KeyCache, revocation_listener
from flashfusion.core.access.keyleases import LeaseBook
from flashfusion.core.access.permissions import Actor
from flashfusion.core.errors import TooManyRequests, Unauthorized
from flashfusion.core.storage.db import connection, database, is_sqlite, to_db_time
from flashfusion.core.storage.models import ApiKey
from flashfusion.core.storage.perprocess import PerProcess

API_KEY_HEADER = "X-API-Key"
HOUR = 3600.0
IDLE_RETURN_SECONDS = 0.05  # a low key's slice unused this long goes back (keyleases.return_idle)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    key_cache_seconds: float = 1.0
    usage_flush_seconds: float = 1.0


class ProcessState:
    """The cache, the slices and the flushing thread of one process on one database."""

    def __init__(self, settings: Settings) -> None:
        self.pid = os.getpid()
        self.db = database.obj
        self.settings = settings
        self.cache = KeyCache()
        self.book = LeaseBook()
        self.stopped = threading.Event()
        self._flusher = threading.Thread(target=self._flush_every, name="flashfusion-usage-flush", daemon=True)
        self._flusher.start()
        self.listener = None if is_sqlite() else revocation_listener(self.cache, self.db)
        if self.listener is not None:
            self.listener.start()

    def _flush_every(self) -> None:
        last_flush = time.monotonic()
        while not self.stopped.wait(min(IDLE_RETURN_SECONDS, self.settings.usage_flush_seconds)):
            try:
                if time.monotonic() - last_flush >= self.settings.usage_flush_seconds:
                    last_flush = time.monotonic()
                    self.flush()
                else:
                    self.return_idle()
            except Exception as exc:  # noqa: BLE001 - counts stay pending and go with the next flush
                log.warning("usage flush failed: %s", type(exc).__name__)

    def return_idle(self) -> int:
        if database.obj is not self.db:
            return 0
        if not self.book.has_idle_candidates(IDLE_RETURN_SECONDS):
            return 0
        with connection():
            return self.book.return_idle(IDLE_RETURN_SECONDS)

    def flush(self) -> int:
        if database.obj is not self.db:
            return 0
        with connection():  # closes the connection only if it opened it (a request may be using it)
            return self.book.flush()

    def stop(self) -> None:
        self.stopped.set()
        if self.listener is not None:
            self.listener.stopped.set()


_settings = Settings()
_states: PerProcess[ProcessState] = PerProcess(lambda: ProcessState(_settings))


def configure(*, key_cache_seconds: float, usage_flush_seconds: float) -> None:
    """The ``[auth]`` settings of this process (the API middleware calls this when the app
    is built)."""
    global _settings
    _settings = Settings(key_cache_seconds=key_cache_seconds, usage_flush_seconds=usage_flush_seconds)
    current = _states.peek()
    if current is not None:
        current.settings = _settings


def state() -> ProcessState:
    """This process's state, started on first use (after a fork, and again when tests open
    another database)."""
    return _states.get()


def flush() -> int:
    """Write this process's pending counts and give its unused cells back now (graceful
    shutdown; listing keys). Returns the number of statements."""
    current = _states.peek()
    return 0 if current is None else current.flush()


def forget(key_id: str) -> None:
    """This process stops trusting what it remembers of ``key_id`` (it was just revoked here)."""
    current = _states.peek()
    if current is not None:
        current.cache.forget(key_id)


def unknown_key() -> Unauthorized:
    return Unauthorized("The API key is unknown, revoked or expired", error="Invalid API key")


def authenticate(header_value: str | None, *, limit: int, now: datetime) -> tuple[Actor, ratelimit.Decision]:
    """Resolve an ``X-API-Key`` value: the key (``Unauthorized`` if malformed, unknown,
    revoked, expired or of a disabled owner) and the rate-limit decision for this request.
    Malformed keys are refused before any database access."""
    if not header_value:
        raise Unauthorized(f"Send your API key in the {API_KEY_HEADER} header", error="Missing API key")
    candidate = header_value.strip()
    current = state()
    digest = keys.hash_key(candidate)
    if not current.cache.remembers(digest):  # what the cache holds passed this check before
        try:
            keys.check_format(candidate)
        except keys.KeyFormatError as exc:
            raise Unauthorized(exc.message, error=exc.error) from None
    stamp = ApiKey.last_used.db_value(to_db_time(now))
    actor = current.cache.get(digest, now, stamp, current.settings.key_cache_seconds)
    if actor is None:
        raise unknown_key()
    decision = current.book.take(actor.key_id, limit, HOUR, stamp)
    if decision is None:  # became invalid since the cache checked it
        current.cache.forget(actor.key_id)
        raise unknown_key()
    return actor, decision


def too_many(decision: ratelimit.Decision, what: str, headers: dict[str, str] | None = None) -> TooManyRequests:
    """The 429; ``headers``: the decision's headers if already made."""
    return TooManyRequests(
        f"Rate limit of {decision.limit} requests per hour exceeded for this {what}; "
        f"retry in {max(1, decision.retry_after)} s",
        retry_after=decision.retry_after,
        headers=headers or decision.headers(),
    )
