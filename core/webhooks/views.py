"""Endpoints and deliveries as the API, the CLI and the dashboard show them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from flashfusion.core.storage.db import from_db_time, iso, utcnow
from flashfusion.core.storage.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from flashfusion.core.webhooks.outbox import EVENT_TYPES


def endpoint_to_dict(ep: WebhookEndpoint, now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    rotation = from_db_time(ep.previous_expires_at)
    return {
        "id": ep.id,
        "url": ep.url,
        "description": ep.description,
        "events": list(ep.events) or list(EVENT_TYPES),
        "pipeline_ids": list(ep.pipeline_ids),
        "enabled": ep.disabled_at is None,
        "disabled_at": iso(ep.disabled_at),
        "disabled_reason": ep.disabled_reason,
        "failing_since": iso(ep.failing_since),
        "last_success_at": iso(ep.last_success_at),
        "previous_secret_expires_at": iso(rotation) if rotation and rotation > now else None,
        "created_by": ep.created_by,
        "created_at": iso(ep.created_at),
        "updated_at": iso(ep.updated_at),
    }


def delivery_to_dict(d: WebhookDelivery, attempts: Iterable[WebhookAttempt] = ()) -> dict[str, Any]:
    return {
        "id": d.id,
        "webhook_id": d.endpoint_id,
        "event_id": d.event_id,
        "event": d.event_type,
        "pipeline_id": d.pipeline_id,
        "status": d.status,
        "attempt": d.attempts,
        "status_code": d.last_status_code,
        "latency_ms": d.last_latency_ms,
        "error": d.last_error,
        "response_excerpt": d.last_response,
        "next_attempt_at": iso(d.next_attempt_at) if d.status == "pending" else None,
        "created_at": iso(d.created_at),
        "delivered_at": iso(d.delivered_at),
        "attempts": [{"attempt": a.attempt, "at": iso(a.started_at), "status_code": a.status_code,
                      "latency_ms": a.latency_ms, "error": a.error, "response_excerpt": a.response_excerpt}
                     for a in attempts],
    }
