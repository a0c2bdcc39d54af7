"""The outbox: the event types, the one writer of events and the one fan-out into deliveries.

Events are written by ``record`` in the transaction of whatever caused them (a run's
transition, sendWebhook, a test ping). ``fan_out`` turns events into one pending delivery
per target endpoint, with the body serialized once, and marks them fanned out in the same
transaction: the dispatcher does that for the events it finds unmarked, sendWebhook and the
test ping do it at once for their own event so that they can answer with the deliveries.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flashfusion.core.ids import new_id
from flashfusion.core.storage.db import database, from_db_time, is_sqlite, iso, to_db_time, utcnow
from flashfusion.core.storage.models import Event, WebhookDelivery, WebhookEndpoint
from flashfusion.core.webhooks.payload import PayloadError, build_body

log = logging.getLogger("flashfusion.webhooks")

EVENT_TYPES = (
    "run.started",
    "run.completed",
    "run.failed",
    "optimization.available",
    "deployment.success",
    "group.completed",
)
PING = "ping"
INSERT_CHUNK = 200


@dataclass(frozen=True)
class OutboxEvent:
    id: str
    event_type: str
    pipeline_id: str | None
    data: dict[str, Any]
    created_at: datetime

    def body(self) -> str:
        """The webhook body as sent and signed. Raises ``PayloadError``."""
        return build_body(self.event_type, timestamp(self.created_at), self.pipeline_id, self.data).decode("utf-8")


def timestamp(when: datetime) -> str:
    """The body's ``timestamp`` field."""
    text = iso(when)
    assert text is not None, "iso() maps only None to None"
    return text


def record(
    event_type: str,
    pipeline_id: str | None,
    data: dict[str, Any],
    *,
    run_id: str | None = None,
    now: datetime | None = None,
) -> OutboxEvent:
    """Write one event, in the caller's transaction. A run's events are unique per (run,
    type): repeating one writes nothing (the event returned then is not the stored one)."""
    event = OutboxEvent(new_id("evt"), event_type, pipeline_id or None, data, now or utcnow())
    Event.insert(
        id=event.id,
        event_type=event_type,
        pipeline_id=pipeline_id or "",
        run_id=run_id,
        payload=data,
        created_at=to_db_time(event.created_at),
    ).on_conflict_ignore().execute()
    return event


def unmarked(limit: int) -> list[OutboxEvent]:
    """The oldest events not fanned out yet, locked for the caller's transaction (rows other
    transactions hold are skipped on PostgreSQL; SQLite's write transactions exclude each other)."""
    sql = (
        f"SELECT id, event_type, pipeline_id, payload, created_at FROM event WHERE fanned_out = FALSE "
        f"ORDER BY created_at LIMIT {int(limit)}"
    )
    if not is_sqlite():
        sql += " FOR UPDATE SKIP LOCKED"
    return [
        OutboxEvent(
            event_id,
            event_type,
            pipeline_id or None,
            json.loads(payload) if isinstance(payload, str) else payload,
            _created(created_at),
        )
        for event_id, event_type, pipeline_id, payload, created_at in database.execute_sql(sql).fetchall()
    ]


def _created(value: Any) -> datetime:
    created = from_db_time(value)
    assert created is not None, "event.created_at is NOT NULL"
    return created


def live_endpoints() -> list[WebhookEndpoint]:
    return list(
        WebhookEndpoint.select().where(WebhookEndpoint.deleted_at.is_null() & WebhookEndpoint.disabled_at.is_null())
    )


def matches(ep: WebhookEndpoint, event_type: str, pipeline_id: str | None) -> bool:
    """Whether ``ep`` subscribes to an event: enabled, and its event and pipeline filters
    (empty: all) let it through."""
    if ep.deleted_at is not None or ep.disabled_at is not None:
        return False
    if ep.events and event_type not in ep.events:
        return False
    if ep.pipeline_ids and pipeline_id not in ep.pipeline_ids:
        return False
    return True


def subscribers(endpoints: Iterable[WebhookEndpoint], event: OutboxEvent) -> list[WebhookEndpoint]:
    return [ep for ep in endpoints if matches(ep, event.event_type, event.pipeline_id)]


def new_delivery(
    ep_id: str, event_id: str, event_type: str, pipeline_id: str | None, body: str, now: datetime, *, rate_counted: bool
) -> dict[str, Any]:
    """A pending delivery row, due at once. ``rate_counted``: already counted against the
    endpoint's rate limit (otherwise the dispatcher counts it when it claims it)."""
    stamp = to_db_time(now)
    return dict(
        id=new_id("dlv"),
        endpoint_id=ep_id,
        event_id=event_id,
        event_type=event_type,
        pipeline_id=pipeline_id,
        body=body,
        status="pending",
        attempts=0,
        rate_counted=rate_counted,
        next_attempt_at=stamp,
        created_at=stamp,
        updated_at=stamp,
    )


def insert_deliveries(rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), INSERT_CHUNK):
        WebhookDelivery.insert_many(rows[start : start + INSERT_CHUNK]).execute()


def fan_out(
    targets: Iterable[tuple[OutboxEvent, list[WebhookEndpoint]]], now: datetime, *, rate_counted: bool = False
) -> list[dict[str, Any]]:
    """Each event becomes one delivery per endpoint it targets, and every event is marked
    fanned out, in the caller's transaction. An event whose data cannot be serialized is
    logged and marked (it can never be sent). Returns the delivery rows written."""
    rows: list[dict[str, Any]] = []
    events: list[str] = []
    for event, endpoints in targets:
        events.append(event.id)
        if not endpoints:
            continue
        try:
            body = event.body()
        except PayloadError as exc:
            log.error("event %s cannot be serialized for webhooks: %s", event.id, exc)
            continue
        rows.extend(
            new_delivery(ep.id, event.id, event.event_type, event.pipeline_id, body, now, rate_counted=rate_counted)
            for ep in endpoints
        )
    insert_deliveries(rows)
    if events:
        marks = ", ".join([database.param] * len(events))
        database.execute_sql(f"UPDATE event SET fanned_out = TRUE WHERE id IN ({marks})", tuple(events))
    return rows
