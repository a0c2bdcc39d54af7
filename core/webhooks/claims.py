"""Claiming due deliveries for one worker, in one write transaction: leased
(``lease_owner``/``lease_until``; ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, ``BEGIN IMMEDIATE``
on SQLite) so two workers never hold the same delivery. A delivery not yet counted against
its endpoint's rate limit is counted here; over the limit it is postponed, never dropped."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from flashfusion.core.access import ratelimit
from flashfusion.core.storage.db import is_sqlite, to_db_time, write_tx
from flashfusion.core.storage.models import WebhookDelivery, WebhookEndpoint
from flashfusion.core.webhooks.limits import RATE_PERIOD, bucket, wait_seconds


def claim_due(
    worker_id: str, clock: Callable[[], datetime], *, lease_seconds: float, batch_size: int, limit: int
) -> list[tuple[WebhookDelivery, WebhookEndpoint]]:
    """Up to ``batch_size`` due deliveries of usable endpoints, oldest due first, each with
    its endpoint; ``limit`` is the endpoints' events per rate period."""
    now = to_db_time(clock())
    until = to_db_time(clock() + timedelta(seconds=lease_seconds))
    usable = WebhookEndpoint.select(WebhookEndpoint.id).where(
        WebhookEndpoint.deleted_at.is_null() & WebhookEndpoint.disabled_at.is_null()
    )
    due = (
        (WebhookDelivery.status == "pending")
        & (WebhookDelivery.next_attempt_at <= now)
        & (WebhookDelivery.lease_until.is_null() | (WebhookDelivery.lease_until < now))
        & WebhookDelivery.endpoint_id.in_(usable)
    )
    with write_tx():
        query = WebhookDelivery.select().where(due).order_by(WebhookDelivery.next_attempt_at).limit(batch_size)
        if not is_sqlite():
            query = query.for_update(skip_locked=True)
        rows = list(query)
        if not rows:
            return []
        endpoints = {
            ep.id: ep for ep in WebhookEndpoint.select().where(WebhookEndpoint.id.in_({r.endpoint_id for r in rows}))
        }
        claimed, counted, postponed = [], [], {}
        for row in rows:
            if not row.rate_counted:
                decision = ratelimit.hit(bucket(row.endpoint_id), limit, RATE_PERIOD)
                if not decision.allowed:
                    postponed[row.id] = wait_seconds(decision)
                    continue
                counted.append(row.id)
            claimed.append((row, endpoints[row.endpoint_id]))
        for row_id, wait in postponed.items():
            WebhookDelivery.update(next_attempt_at=to_db_time(clock() + timedelta(seconds=wait))).where(
                WebhookDelivery.id == row_id
            ).execute()
        if counted:
            WebhookDelivery.update(rate_counted=True).where(WebhookDelivery.id.in_(counted)).execute()
        if claimed:
            WebhookDelivery.update(lease_owner=worker_id, lease_until=until).where(
                WebhookDelivery.id.in_([r.id for r, _ in claimed])
            ).execute()
    return claimed
