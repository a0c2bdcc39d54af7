"""The OpenAPI paths of webhook management and sendWebhook: endpoints, deliveries,
redeliver and replay."""

from __future__ import annotations

from typing import Any

from flashfusion.core.web import openapi_parts as parts
from flashfusion.core.web.schemas import requests as bodies
from flashfusion.core.web.schemas.jsonschema import ref
from flashfusion.core.web.schemas.responses import Delivery, Webhook


def webhook_paths() -> dict[str, Any]:
    tag = "Webhooks"
    write = (400, 401, 403, 404, 413, 415, 429, 500)
    desc = "An API key needs the webhook permission; a person's session (with its CSRF token) also works."
    id_body = parts.request_body(ref(bodies.WebhookIdRequest), {"id": "wh_3xYz"})
    webhook_answer = parts.success(["webhook"], webhook=ref(Webhook))
    text = {
        404: "Unknown webhook, or outside the caller's view",
        429: "The caller's API key, or a subscribed endpoint's webhook rate limit (100 events/minute), is exhausted",
    }

    def op(op_id: str, summary: str, ok: dict, codes: tuple[int, ...] = write, **kw: Any) -> dict:
        security = parts.KEY_OR_SESSION_READ if kw.pop("read", False) else parts.KEY_OR_SESSION_WRITE
        return parts.operation(
            op_id,
            summary,
            security,
            ok,
            codes,
            tag=tag,
            description=kw.pop("description", desc),
            text={**text, **kw.pop("text", {})},
            **kw,
        )

    return {
        "/functions/createWebhook": {
            "post": op(
                "createWebhook",
                "Create a webhook endpoint",
                parts.answer(
                    "Created; the signing secret is shown only once",
                    parts.success(
                        ["id", "secret", "webhook"], id=parts.STRING, secret=parts.STRING, webhook=ref(Webhook)
                    ),
                ),
                body=parts.request_body(
                    ref(bodies.CreateWebhookRequest),
                    {
                        "url": "https://hooks.example.com/flashfusion",
                        "events": ["run.completed", "run.failed"],
                        "description": "Deploy notifications",
                    },
                ),
                text={
                    400: "Invalid field, or the URL is refused (scheme, private address, unresolvable host)",
                    404: "A pipeline in pipeline_ids is unknown or outside the key's scope",
                },
            )
        },
        "/functions/listWebhooks": {
            "get": op(
                "listWebhooks",
                "List webhook endpoints",
                parts.answer(
                    "The endpoints the caller may see",
                    parts.success(["webhooks"], webhooks=parts.array(ref(Webhook))),
                ),
                (401, 403, 429, 500),
                read=True,
            )
        },
        "/functions/updateWebhook": {
            "post": op(
                "updateWebhook",
                "Change a webhook endpoint",
                parts.answer("The endpoint after the change", webhook_answer),
                body=parts.request_body(ref(bodies.UpdateWebhookRequest), {"id": "wh_3xYz", "enabled": True}),
            )
        },
        "/functions/deleteWebhook": {
            "post": op(
                "deleteWebhook",
                "Delete a webhook endpoint (its pending deliveries fail)",
                parts.answer("Deleted", parts.success(["id"], id=parts.STRING)),
                body=id_body,
            )
        },
        "/functions/rotateWebhookSecret": {
            "post": op(
                "rotateWebhookSecret",
                "New signing secret; the old one also signs for 24 h",
                parts.answer(
                    "The new secret (shown once)",
                    parts.success(
                        ["id", "secret", "previous_secret_expires_at"],
                        id=parts.STRING,
                        secret=parts.STRING,
                        previous_secret_expires_at=parts.TIME,
                    ),
                ),
                body=id_body,
            )
        },
        "/functions/testWebhook": {
            "post": op(
                "testWebhook",
                "Send a ping event to one endpoint",
                parts.answer(
                    "Queued",
                    parts.success(["event_id", "delivery_id"], event_id=parts.STRING, delivery_id=parts.STRING),
                ),
                body=id_body,
            )
        },
        "/functions/sendWebhook": {
            "post": op(
                "sendWebhook",
                "Send Webhook Notification",
                parts.answer(
                    "The event, and one queued delivery per subscribed endpoint",
                    parts.success(
                        ["event_id", "deliveries"],
                        event_id=parts.STRING,
                        deliveries=parts.array(
                            parts.obj(["id", "webhook_id"], id=parts.STRING, webhook_id=parts.STRING)
                        ),
                    ),
                    parts.SEND_WEBHOOK_ANSWER_EXAMPLE,
                ),
                description="Trigger webhook notifications for pipeline events. " + desc + " Receivers get the "
                "WebhookPayload structure, signed with HMAC-SHA256 in X-FlashFusion-Signature (see the "
                "pipelineEvent webhook).",
                body=parts.request_body(ref(bodies.SendWebhookRequest), parts.SEND_WEBHOOK_EXAMPLE),
                text={
                    404: "Unknown pipeline, or outside the key's scope",
                    429: "The caller's API key, or a subscribed endpoint's webhook rate limit (100 events/minute), "
                    "is exhausted; nothing was sent",
                },
            )
        },
        "/functions/listDeliveries": {
            "get": op(
                "listDeliveries",
                "An endpoint's delivery log, newest first",
                parts.answer(
                    "A page of deliveries, each with its attempts",
                    parts.success(
                        ["deliveries", "next_cursor"],
                        deliveries=parts.array(ref(Delivery)),
                        next_cursor=parts.NULLABLE_STRING,
                    ),
                ),
                (400, 401, 403, 404, 429, 500),
                read=True,
                parameters=[
                    parts.query_param(
                        "webhook_id",
                        "The webhook's id",
                        required=True,
                        schema={"type": "string", "minLength": 1, "maxLength": 40},
                    ),
                    parts.query_param(
                        "status",
                        "Only deliveries in this state",
                        schema={"type": "string", "enum": ["pending", "succeeded", "failed"]},
                    ),
                    parts.query_param(
                        "limit", "Page size (default 50)", schema={"type": "integer", "minimum": 1, "maximum": 200}
                    ),
                    parts.query_param(
                        "cursor",
                        "next_cursor of the previous page",
                        schema={"type": "string", "minLength": 1, "maxLength": 40},
                    ),
                ],
                text={400: "Invalid query parameter, or a cursor from another endpoint"},
            )
        },
        "/functions/redeliver": {
            "post": op(
                "redeliver",
                "Send one delivery again (a new delivery of the same event)",
                parts.answer(
                    "Queued",
                    parts.success(["delivery_id", "event_id"], delivery_id=parts.STRING, event_id=parts.STRING),
                ),
                body=parts.request_body(ref(bodies.RedeliverRequest), {"delivery_id": "dlv_9kL1"}),
                text={404: "Unknown delivery, or its endpoint is outside the caller's view"},
            )
        },
        "/functions/replayWebhooks": {
            "post": op(
                "replayWebhooks",
                "Send again every delivery of an endpoint since a time",
                parts.answer(
                    "How many deliveries were queued (paced by the endpoint's rate limit)",
                    parts.success(
                        ["webhook_id", "deliveries"],
                        webhook_id=parts.STRING,
                        deliveries={"type": "integer", "minimum": 0},
                    ),
                ),
                body=parts.request_body(
                    ref(bodies.ReplayWebhooksRequest),
                    {"webhook_id": "wh_3xYz", "since": "2025-11-21T10:30:00Z", "failed_only": True},
                ),
            )
        },
    }
