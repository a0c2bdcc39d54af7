"""Removing rows that no longer mean anything, so tables do not grow without bound."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from flashfusion.core.config import Config
from flashfusion.core.runs.idempotency import TTL
from flashfusion.core.storage.db import to_db_time
from flashfusion.core.storage.models import IdempotencyKey, RateLimit, Session


def sweep(config: Config, now: datetime) -> dict[str, int]:
    """Delete expired idempotency keys and sessions, and rate-limit buckets that are full again
    (a bucket whose theoretical arrival time has passed behaves exactly like a missing one).
    Returns the number of rows removed per table."""
    idle = timedelta(minutes=config.auth.session_idle_minutes)
    removed = {
        "idempotency_key": IdempotencyKey.delete().where(IdempotencyKey.created_at < to_db_time(now - TTL)).execute(),
        "user_session": Session.delete()
        .where((Session.expires_at < to_db_time(now)) | (Session.last_seen_at < to_db_time(now - idle)))
        .execute(),
        # an hour of margin for clocks that differ between this host and the database
        "rate_limit": RateLimit.delete().where(RateLimit.tat < time.time() - 3600).execute(),
    }
    return removed
