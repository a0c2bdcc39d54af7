"""Endpoints and deliveries as the API, the CLI and the dashboard show them, declared once
as Structs (/openapi.json describes ``Webhook``, ``Delivery`` and ``Attempt`` from them);
the ``*_to_dict`` functions give them as plain JSON types."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from flashfusion.core.answer_types import EveryPipelineIfEmpty, NullableTime
from flashfusion.core.storage.db import from_db_time, iso, utcnow
from flashfusion.core.storage.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from flashfusion.core.webhooks.outbox import EVENT_TYPES

EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]
DELIVERY_STATUSES = ("pending", "succeeded", "failed")


class Webhook(Struct, kw_only=True):
    id: str
    url: str
    description: str
    events: list[EventType]
    pipeline_ids: EveryPipelineIfEmpty
    enabled: bool
    disabled_at: NullableTime
    disabled_reason: str | None
    failing_since: NullableTime
    last_success_at: NullableTime
    previous_secret_expires_at: NullableTime
    created_by: str | None
    created_at: NullableTime
    updated_at: NullableTime


class Attempt(Struct, kw_only=True):
    attempt: int
    at: NullableTime
    status_code: int | None
    latency_ms: int | None
    error: str | None
    response_excerpt: str | None


class Delivery(Struct, kw_only=True):
    id: str
    webhook_id: str
    event_id: str
    event: Annotated[str, Meta(description="An event type, or ping for testWebhook")]
    pipeline_id: str | None
    status: Literal[DELIVERY_STATUSES]  # type: ignore[valid-type]
    attempt: Annotated[int, Meta(ge=0)]
    status_code: int | None
    latency_ms: int | None
    error: str | None
    response_excerpt: str | None
    next_attempt_at: NullableTime
    created_at: NullableTime
    delivered_at: NullableTime
    attempts: list[Attempt]


def endpoint_view(ep: WebhookEndpoint, now: datetime | None = None) -> Webhook:
    now = now or utcnow()
    rotation = from_db_time(ep.previous_expires_at)
    return Webhook(
        id=ep.id,
        url=ep.url,
        description=ep.description,
        events=list(ep.events) or list(EVENT_TYPES),
        pipeline_ids=list(ep.pipeline_ids),
        enabled=ep.disabled_at is None,
        disabled_at=iso(ep.disabled_at),
        disabled_reason=ep.disabled_reason,
        failing_since=iso(ep.failing_since),
        last_success_at=iso(ep.last_success_at),
        previous_secret_expires_at=iso(rotation) if rotation and rotation > now else None,
        created_by=ep.created_by,
        created_at=iso(ep.created_at),
        updated_at=iso(ep.updated_at),
    )


def endpoint_to_dict(ep: WebhookEndpoint, now: datetime | None = None) -> dict[str, Any]:
    return msgspec.to_builtins(endpoint_view(ep, now))


def delivery_view(d: WebhookDelivery, attempts: Iterable[WebhookAttempt] = ()) -> Delivery:
    return Delivery(
        id=d.id,
        webhook_id=d.endpoint_id,
        event_id=d.event_id,
        event=d.event_type,
        pipeline_id=d.pipeline_id,
        status=d.status,
        attempt=d.attempts,
        status_code=d.last_status_code,
        latency_ms=d.last_latency_ms,
        error=d.last_error,
        response_excerpt=d.last_response,
        next_attempt_at=iso(d.next_attempt_at) if d.status == "pending" else None,
        created_at=iso(d.created_at),
        delivered_at=iso(d.delivered_at),
        attempts=[
            Attempt(
                attempt=a.attempt,
                at=iso(a.started_at),
                status_code=a.status_code,
                latency_ms=a.latency_ms,
                error=a.error,
                response_excerpt=a.response_excerpt,
            )
            for a in attempts
        ],
    )


def delivery_to_dict(d: WebhookDelivery, attempts: Iterable[WebhookAttempt] = ()) -> dict[str, Any]:
    return msgspec.to_builtins(delivery_view(d, attempts))
