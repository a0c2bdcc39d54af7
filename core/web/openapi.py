"""The OpenAPI 3.1 description of the API, served at ``/openapi.json``.

Kept beside the resources it describes; a schemathesis run in the test suite holds the
live app to it, and a test walks the Falcon router so that a route added without a
description here fails the suite. The dashboard's HTML pages and its static files are left
out on purpose (``NOT_DESCRIBED``): they are the browser UI, not the API.
"""

from __future__ import annotations

import copy
from typing import Any

from flashfusion.core.access.keycheck import API_KEY_HEADER
from flashfusion.core.access.sessions import COOKIE
from flashfusion.core.web.authentication import CSRF_HEADER
from flashfusion.core.web.openapi_access import access_paths
from flashfusion.core.web.openapi_parts import (
    HEADERS,
    READINESS,
    STRING,
    WEBHOOK_PAYLOAD,
    WEBHOOK_PAYLOAD_EXAMPLE,
    headers_for,
    json_content,
)
from flashfusion.core.web.openapi_pipelines import pipeline_paths
from flashfusion.core.web.openapi_service import hook_paths, service_paths
from flashfusion.core.web.openapi_webhooks import webhook_paths
from flashfusion.core.web.schemas import jsonschema

# Routes the app serves that this document leaves out on purpose: the dashboard (HTML pages
# behind the session login, and the HTML form posts they make) and its static files.
NOT_DESCRIBED: dict[str, tuple[str, ...]] = {
    "/": ("GET",),
    "/docs": ("GET",),
    "/docs/{name}": ("GET",),
    "/login": ("GET", "POST"),
    "/logout": ("POST",),
    "/dashboard": ("GET",),
    "/dashboard/pipelines": ("GET",),
    "/dashboard/pipelines/{pipeline_id}/trigger": ("POST",),
    "/dashboard/runs": ("GET",),
    "/dashboard/runs/{run_id}": ("GET",),
    "/dashboard/runs/{run_id}/cancel": ("POST",),
    "/dashboard/keys": ("GET", "POST"),
    "/dashboard/keys/{key_id}/{action}": ("POST",),
    "/dashboard/webhooks": ("GET", "POST"),
    "/dashboard/webhooks/{hook_id}": ("GET",),
    "/dashboard/webhooks/{hook_id}/{action}": ("POST",),
    "/dashboard/audit": ("GET",),
    "/dashboard/account": ("GET", "POST"),
    "/dashboard/users": ("GET", "POST"),
    "/dashboard/users/{username}/disable": ("POST",),
    "/static/dashboard/{name}": ("GET",),
}
DESCRIPTION = (
    "Trigger pipelines and read their status over GitHub Actions, GitLab CI and local runs; manage API keys, "
    "webhooks and their deliveries.\n\n"
    "Authentication: the pipeline API takes an API key in the X-API-Key header (ffai_...). The management "
    "API (/functions/*) is for people: log in with POST /functions/login, which sets the ff_session cookie and "
    "returns a csrf_token to send as X-CSRF-Token on every state-changing call. The webhook endpoints take "
    "either an API key with the webhook permission or a session.\n\n"
    "Errors: every error, the router's own included (404 for an unknown route, 405 for a method a route does "
    'not take), is JSON {"error", "message"}; every answer carries X-Request-ID.\n\n'
    "Not described here, on purpose: the dashboard (GET / and /login, /logout, /dashboard/... HTML pages and "
    "their form posts) and its static files under /static/dashboard/. They are the browser UI behind the "
    "session login, answer HTML, and are not an API; nor is /docs, the browsable page that renders this "
    "document (/docs and its assets /docs/{name})."
)


# Where one answer's ids feed the next call (also what schemathesis' stateful phase follows).
LINKS = {
    ("/api/trigger-pipeline", "post"): {
        "getStatus": {"operationId": "getStatus", "parameters": {"run_id": "$response.body#/run_id"}},
        "cancelRun": {"operationId": "cancelRun", "requestBody": {"run_id": "$response.body#/run_id"}},
    },
    ("/functions/createWebhook", "post"): {
        **{
            name: {"operationId": name, "requestBody": {"id": "$response.body#/id"}}
            for name in ("updateWebhook", "rotateWebhookSecret", "testWebhook", "deleteWebhook")
        },
        "listDeliveries": {"operationId": "listDeliveries", "parameters": {"webhook_id": "$response.body#/id"}},
        "replayWebhooks": {
            "operationId": "replayWebhooks",
            "requestBody": {"webhook_id": "$response.body#/id", "since": "2000-01-01T00:00:00Z"},
        },
    },
    ("/functions/createAPIKey", "post"): {
        name: {"operationId": name, "requestBody": {"id": "$response.body#/id"}}
        for name in ("rotateAPIKey", "revokeAPIKey")
    },
    ("/functions/testWebhook", "post"): {
        "redeliver": {"operationId": "redeliver", "requestBody": {"delivery_id": "$response.body#/delivery_id"}},
    },
}


def document() -> dict[str, Any]:
    paths = {**pipeline_paths(), **access_paths(), **webhook_paths(), **service_paths(), **hook_paths()}
    for (path, method), links in LINKS.items():
        paths[path][method]["responses"]["200"]["links"] = links
    paths["/readyz"]["head"]["responses"]["503"] = {"description": "Not ready", "headers": headers_for(False, 503)}
    paths["/readyz"]["get"]["responses"]["503"] = {
        "description": "Not ready: database unreachable or migrations pending",
        "headers": headers_for(False, 503),
        "content": json_content({"$ref": "#/components/schemas/Readiness"}),
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "FlashFusion CI/CD API", "version": "0.1.0", "description": DESCRIPTION},
        "tags": [{"name": "Pipelines"}, {"name": "Access"}, {"name": "Webhooks"}, {"name": "Service"}],
        "components": {
            "headers": copy.deepcopy(HEADERS),
            "securitySchemes": {
                "ApiKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": API_KEY_HEADER,
                    "description": "ffai_... with per-endpoint permissions and a pipeline scope",
                },
                "SessionCookie": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": COOKIE,
                    "description": "Set by POST /functions/login",
                },
                "CsrfToken": {
                    "type": "apiKey",
                    "in": "header",
                    "name": CSRF_HEADER,
                    "description": "The csrf_token from login; required with the session cookie on "
                    "state-changing (non-GET) calls",
                },
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "message"],
                    "properties": {"error": STRING, "message": STRING},
                    "example": {"error": "Invalid API key format", "message": "API keys must start with ffai_"},
                },
                "WebhookPayload": WEBHOOK_PAYLOAD,
                "Readiness": READINESS,
                **jsonschema.components(),
            },
        },
        "paths": paths,
        "webhooks": {
            "pipelineEvent": {
                "post": {
                    "summary": "What a webhook endpoint receives",
                    "description": "POSTed to each subscribed endpoint. Verify X-FlashFusion-Signature: the hex "
                    "HMAC-SHA256 of the raw body with the endpoint's secret. Standard Webhooks headers "
                    "(webhook-id, webhook-timestamp, webhook-signature) are sent too.",
                    "parameters": [
                        {"name": "X-FlashFusion-Signature", "in": "header", "required": True, "schema": STRING},
                        {
                            "name": "X-FlashFusion-Event",
                            "in": "header",
                            "required": True,
                            "schema": STRING,
                            "example": "run.completed",
                        },
                    ],
                    "requestBody": {
                        "required": True,
                        "content": json_content(
                            {"$ref": "#/components/schemas/WebhookPayload"}, WEBHOOK_PAYLOAD_EXAMPLE
                        ),
                    },
                    "responses": {
                        "200": {"description": "Any 2xx acknowledges the delivery; anything else is retried"}
                    },
                }
            }
        },
    }
