"""Webhook endpoint management and everything that enqueues deliveries by request: create,
list, update, delete, rotate, test (ping), sendWebhook, the delivery log, redeliver and replay.

Who sees what is ``callers.Caller``'s rule; anything outside the caller's view answers 404,
as if it did not exist.
"""

from __future__ import annotations

import builtins
import json
from datetime import datetime, timedelta
from typing import Any

from flashfusion.core.config import Config
from flashfusion.core.errors import BadRequest, NotFound
from flashfusion.core.ids import new_id
from flashfusion.core.storage.db import iso, to_db_time, write_tx
from flashfusion.core.storage.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from flashfusion.core.webhooks import outbox, signing
from flashfusion.core.webhooks import payload as payloads
from flashfusion.core.webhooks.callers import Caller
from flashfusion.core.webhooks.crypto import SecretBox, box_for, endpoint_secrets
from flashfusion.core.webhooks.limits import charge
from flashfusion.core.webhooks.outbox import EVENT_TYPES, PING, new_delivery
from flashfusion.core.webhooks.ssrf import Policy, Resolver, UrlRefused, check_url, system_resolver
from flashfusion.core.webhooks.views import delivery_to_dict, endpoint_to_dict

ROTATION_GRACE = timedelta(hours=24)
MAX_REPLAY = 10000
MAX_DESCRIPTION = 500


class WebhookService:
    """Built once per process by the gateway (``gateway.webhooks``); it reads the gateway's
    configuration and clock when called."""

    def __init__(self, gateway, *, resolver: Resolver = system_resolver, box: SecretBox | None = None) -> None:
        self.gw = gateway
        self.resolver = resolver
        self._box = box

    @property
    def config(self) -> Config:
        return self.gw.config

    @property
    def policy(self) -> Policy:
        return Policy.from_config(self.config.webhooks)

    @property
    def box(self) -> SecretBox:
        if self._box is None:
            self._box = box_for(self.config)
        return self._box

    def now(self) -> datetime:
        return self.gw.clock()

    @property
    def limit(self) -> int:
        return self.config.rate_limits.webhook_events_per_minute

    # --- validation -----------------------------------------------------------------

    def check_url(self, url: Any) -> str:
        if not isinstance(url, str):
            raise BadRequest("'url' is required and must be a string", error="Missing parameter")
        try:
            check_url(url.strip(), self.policy, self.resolver)
        except UrlRefused as exc:
            raise BadRequest(exc.message, error="Invalid webhook URL") from None
        return url.strip()

    def _events(self, value: Any) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(e, str) for e in value):
            raise BadRequest(f"'events' must be an array of: {', '.join(EVENT_TYPES)}", error="Invalid parameter")
        unknown = [e for e in value if e not in EVENT_TYPES]
        if unknown:
            raise BadRequest(
                f"unknown event {unknown[0][:60]!r} (known: {', '.join(EVENT_TYPES)})", error="Invalid parameter"
            )
        chosen = sorted(set(value))
        return [] if set(chosen) == set(EVENT_TYPES) else chosen

    def _pipelines(self, caller: Caller, value: Any) -> list[str]:
        if value is None:
            return sorted(caller.scope)
        if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
            raise BadRequest("'pipeline_ids' must be an array of pipeline ids", error="Invalid parameter")
        for pid in value:
            if not caller.may_see_pipeline(pid) or self.config.pipeline(pid) is None:
                raise NotFound("Pipeline not found", error="Pipeline not found")
        chosen = sorted(set(value))
        if not chosen and caller.scope:
            return sorted(caller.scope)
        return chosen

    def _description(self, value: Any) -> str:
        if value is None:
            return ""
        if not isinstance(value, str) or len(value) > MAX_DESCRIPTION:
            raise BadRequest(
                f"'description' must be a string of at most {MAX_DESCRIPTION} characters", error="Invalid parameter"
            )
        return value

    def visible(self, caller: Caller, endpoint_id: Any) -> WebhookEndpoint:
        if not isinstance(endpoint_id, str) or not endpoint_id:
            raise BadRequest("'id' is required", error="Missing parameter")
        ep = WebhookEndpoint.get_or_none(WebhookEndpoint.id == endpoint_id)
        if ep is None or not caller.may_see(ep):
            raise NotFound("Webhook not found", error="Webhook not found")
        return ep

    # --- endpoints ------------------------------------------------------------------

    def create(self, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
        url = self.check_url(body.get("url"))
        events = self._events(body.get("events"))
        pipelines = self._pipelines(caller, body.get("pipeline_ids"))
        description = self._description(body.get("description"))
        secret = signing.new_secret()
        now = self.now()
        ep_id = new_id("wh")
        with write_tx():
            ep = WebhookEndpoint.create(
                id=ep_id,
                url=url,
                description=description,
                events=events,
                pipeline_ids=pipelines,
                secret_enc=self.box.encrypt(secret, ep_id),
                owner_id=caller.owner_id,
                created_by=caller.name[:200],
                created_at=to_db_time(now),
                updated_at=to_db_time(now),
            )
            caller.audit("webhook.created", ep.id, url=url, events=events, pipeline_ids=pipelines)
        return {"success": True, "id": ep.id, "secret": secret, "webhook": endpoint_to_dict(ep, now)}

    def list(self, caller: Caller) -> list[dict[str, Any]]:
        now = self.now()
        rows = WebhookEndpoint.select().where(WebhookEndpoint.deleted_at.is_null()).order_by(WebhookEndpoint.created_at)
        return [endpoint_to_dict(ep, now) for ep in rows if caller.may_see(ep)]

    def update(self, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
        ep = self.visible(caller, body.get("id"))
        changes: dict[str, Any] = {}
        if "url" in body:
            changes["url"] = self.check_url(body.get("url"))
        if "events" in body:
            changes["events"] = self._events(body.get("events"))
        if "pipeline_ids" in body:
            changes["pipeline_ids"] = self._pipelines(caller, body.get("pipeline_ids"))
        if "description" in body:
            changes["description"] = self._description(body.get("description"))
        if "enabled" in body:
            enabled = body.get("enabled")
            if not isinstance(enabled, bool):
                raise BadRequest("'enabled' must be a boolean", error="Invalid parameter")
            if enabled and ep.disabled_at is not None:
                changes.update(disabled_at=None, disabled_reason=None, failing_since=None)
            elif not enabled and ep.disabled_at is None:
                changes.update(disabled_at=to_db_time(self.now()), disabled_reason="disabled by " + caller.name[:150])
        now = self.now()
        with write_tx():
            if changes:
                changes["updated_at"] = to_db_time(now)
                WebhookEndpoint.update(**changes).where(WebhookEndpoint.id == ep.id).execute()
                if changes.get("disabled_at", 1) is None:
                    # resume what waited while the endpoint was off
                    WebhookDelivery.update(next_attempt_at=to_db_time(now)).where(
                        (WebhookDelivery.endpoint_id == ep.id) & (WebhookDelivery.status == "pending")
                    ).execute()
            caller.audit("webhook.updated", ep.id, fields=sorted(k for k in changes if k != "updated_at"))
        return {"success": True, "webhook": endpoint_to_dict(WebhookEndpoint.get_by_id(ep.id), now)}

    def delete(self, caller: Caller, endpoint_id: Any) -> dict[str, Any]:
        ep = self.visible(caller, endpoint_id)
        now = to_db_time(self.now())
        with write_tx():
            WebhookEndpoint.update(
                deleted_at=now, updated_at=now, secret_enc="", previous_secret_enc=None, previous_expires_at=None
            ).where(WebhookEndpoint.id == ep.id).execute()
            WebhookDelivery.update(
                status="failed", last_error="endpoint deleted", lease_owner=None, lease_until=None, updated_at=now
            ).where((WebhookDelivery.endpoint_id == ep.id) & (WebhookDelivery.status == "pending")).execute()
            caller.audit("webhook.deleted", ep.id)
        return {"success": True, "id": ep.id}

    def rotate(self, caller: Caller, endpoint_id: Any) -> dict[str, Any]:
        ep = self.visible(caller, endpoint_id)
        secret = signing.new_secret()
        now = self.now()
        expires = now + ROTATION_GRACE
        with write_tx():
            WebhookEndpoint.update(
                secret_enc=self.box.encrypt(secret, ep.id),
                previous_secret_enc=ep.secret_enc,
                previous_expires_at=to_db_time(expires),
                updated_at=to_db_time(now),
            ).where(WebhookEndpoint.id == ep.id).execute()
            caller.audit("webhook.secret_rotated", ep.id)
        return {"success": True, "id": ep.id, "secret": secret, "previous_secret_expires_at": iso(expires)}

    def secrets_for(self, ep: WebhookEndpoint, now: datetime) -> builtins.list[str]:  # list: the method above
        return endpoint_secrets(self.box, ep, now)

    # --- enqueueing -----------------------------------------------------------------

    def _charge(self, endpoint_ids: builtins.list[str]) -> None:
        charge(endpoint_ids, self.limit)

    def send(self, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
        event_type = body.get("event_type")
        if event_type is None:
            raise BadRequest("'event_type' is required", error="Missing parameter")
        if event_type not in EVENT_TYPES:
            raise BadRequest(f"'event_type' must be one of: {', '.join(EVENT_TYPES)}", error="Invalid parameter")
        pipeline_id = body.get("pipeline_id")
        if pipeline_id is None:
            raise BadRequest("'pipeline_id' is required", error="Missing parameter")
        if not isinstance(pipeline_id, str) or not pipeline_id or len(pipeline_id) > 64:
            raise BadRequest("'pipeline_id' must be a string of at most 64 characters", error="Invalid parameter")
        data = body.get("payload")
        if data is None:
            raise BadRequest("'payload' is required", error="Missing parameter")
        if not isinstance(data, dict):
            raise BadRequest("'payload' must be a JSON object", error="Invalid parameter")
        if not caller.may_see_pipeline(pipeline_id) or self.config.pipeline(pipeline_id) is None:
            raise NotFound("Pipeline not found", error="Pipeline not found")
        now = self.now()
        try:
            text = payloads.build_body(event_type, outbox.timestamp(now), pipeline_id, data).decode("utf-8")
        except payloads.PayloadError as exc:
            raise BadRequest(f"'payload' cannot be sent: {exc}", error="Invalid parameter") from None
        with write_tx():
            targets = [ep for ep in outbox.live_endpoints() if outbox.matches(ep, event_type, pipeline_id)]
            self._charge([ep.id for ep in targets])
            event = outbox.record(event_type, pipeline_id, json.loads(text)["data"], now=now)
            rows = outbox.fan_out([(event, targets)], now, rate_counted=True)
        return {
            "success": True,
            "event_id": event.id,
            "deliveries": [{"id": r["id"], "webhook_id": r["endpoint_id"]} for r in rows],
        }

    def test(self, caller: Caller, endpoint_id: Any) -> dict[str, Any]:
        ep = self.visible(caller, endpoint_id)
        now = self.now()
        data = {"webhook_id": ep.id, "message": "Test event from FlashFusion"}
        with write_tx():
            self._charge([ep.id])
            event = outbox.record(PING, None, data, now=now)
            rows = outbox.fan_out([(event, [ep])], now, rate_counted=True)
        return {"success": True, "event_id": event.id, "delivery_id": rows[0]["id"]}

    # --- the delivery log -----------------------------------------------------------

    def deliveries(
        self, caller: Caller, endpoint_id: str, *, status: str | None, limit: int, cursor: str | None
    ) -> dict[str, Any]:
        ep = self.visible(caller, endpoint_id)
        query = WebhookDelivery.select().where(WebhookDelivery.endpoint_id == ep.id)
        if status is not None:
            if status not in ("pending", "succeeded", "failed"):
                raise BadRequest("'status' must be pending, succeeded or failed", error="Invalid parameter")
            query = query.where(WebhookDelivery.status == status)
        if cursor is not None:
            anchor = WebhookDelivery.get_or_none(
                (WebhookDelivery.id == cursor) & (WebhookDelivery.endpoint_id == ep.id)
            )
            if anchor is None:
                raise BadRequest("'cursor' is not valid", error="Invalid parameter")
            same_time = WebhookDelivery.created_at == anchor.created_at
            query = query.where(
                (WebhookDelivery.created_at < anchor.created_at) | (same_time & (WebhookDelivery.id < anchor.id))
            )
        rows = list(query.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc()).limit(limit + 1))
        more = len(rows) > limit
        rows = rows[:limit]
        attempts: dict[str, list[WebhookAttempt]] = {}
        if rows:
            for a in (
                WebhookAttempt.select()
                .where(WebhookAttempt.delivery_id.in_([r.id for r in rows]))
                .order_by(WebhookAttempt.attempt)
            ):
                attempts.setdefault(a.delivery_id, []).append(a)
        return {
            "success": True,
            "deliveries": [delivery_to_dict(r, attempts.get(r.id, [])) for r in rows],
            "next_cursor": rows[-1].id if more else None,
        }

    def redeliver(self, caller: Caller, delivery_id: Any) -> dict[str, Any]:
        if not isinstance(delivery_id, str) or not delivery_id:
            raise BadRequest("'delivery_id' is required", error="Missing parameter")
        old = WebhookDelivery.get_or_none(WebhookDelivery.id == delivery_id)
        if old is None:
            raise NotFound("Delivery not found", error="Delivery not found")
        try:
            ep = self.visible(caller, old.endpoint_id)
        except NotFound:
            raise NotFound("Delivery not found", error="Delivery not found") from None
        now = self.now()
        with write_tx():
            self._charge([ep.id])
            row = new_delivery(ep.id, old.event_id, old.event_type, old.pipeline_id, old.body, now, rate_counted=True)
            WebhookDelivery.insert(row).execute()
        return {"success": True, "delivery_id": row["id"], "event_id": old.event_id}

    def replay(self, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
        ep = self.visible(caller, body.get("webhook_id") or body.get("id"))
        since_text = body.get("since")
        if not isinstance(since_text, str):
            raise BadRequest(
                "'since' is required (an ISO 8601 time such as 2025-11-21T10:30:00Z)", error="Missing parameter"
            )
        try:
            since = datetime.fromisoformat(since_text.replace("Z", "+00:00"))
        except ValueError:
            raise BadRequest(
                "'since' must be an ISO 8601 time such as 2025-11-21T10:30:00Z", error="Invalid parameter"
            ) from None
        if since.tzinfo is None:
            raise BadRequest("'since' needs a time zone (end it with Z for UTC)", error="Invalid parameter")
        failed_only = body.get("failed_only", False)
        if not isinstance(failed_only, bool):
            raise BadRequest("'failed_only' must be a boolean", error="Invalid parameter")
        query = WebhookDelivery.select().where(
            (WebhookDelivery.endpoint_id == ep.id)
            & (WebhookDelivery.created_at >= to_db_time(since))
            & (WebhookDelivery.status != "pending")
        )
        if failed_only:
            query = query.where(WebhookDelivery.status == "failed")
        now = self.now()
        rows, seen = [], set()
        for old in query.order_by(WebhookDelivery.created_at).limit(MAX_REPLAY * 2):
            if old.event_id in seen:
                continue
            seen.add(old.event_id)
            # replays go through the endpoint's rate limit at delivery time: delayed, not refused
            rows.append(
                new_delivery(ep.id, old.event_id, old.event_type, old.pipeline_id, old.body, now, rate_counted=False)
            )
            if len(rows) >= MAX_REPLAY:
                break
        with write_tx():
            outbox.insert_deliveries(rows)
        return {"success": True, "webhook_id": ep.id, "deliveries": len(rows)}
