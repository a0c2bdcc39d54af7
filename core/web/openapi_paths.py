"""The paths of the OpenAPI document: each operation's answers, parameters and security;
request bodies are the schemas of core/web/schemas, by reference."""

from __future__ import annotations

from typing import Any

from flashfusion.core.access.sessions import COOKIE
from flashfusion.core.web.authentication import CSRF_HEADER
from flashfusion.core.web.openapi_parts import (
    API_KEY,
    BOOLEAN,
    CREATE_KEY_ANSWER_EXAMPLE,
    CREATE_KEY_EXAMPLE,
    ERROR,
    KEY_OR_SESSION_READ,
    KEY_OR_SESSION_WRITE,
    NULLABLE_STRING,
    PUBLIC,
    RUN_EXAMPLE,
    SEND_WEBHOOK_ANSWER_EXAMPLE,
    SEND_WEBHOOK_EXAMPLE,
    SESSION_READ,
    SESSION_WRITE,
    STRING,
    TIME,
    headers_for,
    json_content,
    obj,
    operation,
    query_param,
    request_body,
)
from flashfusion.core.web.schemas.jsonschema import ref
from flashfusion.core.web.schemas.requests import (
    CancelRunRequest,
    CreateAPIKeyRequest,
    CreateWebhookRequest,
    KeyIdRequest,
    LoginRequest,
    RedeliverRequest,
    ReplayWebhooksRequest,
    SendWebhookRequest,
    TriggerPipelineRequest,
    TriggerPipelinesRequest,
    UpdateWebhookRequest,
    WebhookIdRequest,
)
from flashfusion.core.web.schemas.responses import ConfigAnswer, RunAnswer, RunsPage, TriggerPipelineAnswer, User


def pipeline_paths() -> dict[str, Any]:
    tag = "Pipelines"
    return {
        "/api/trigger-pipeline": {"post": operation(
            "triggerPipeline", "Trigger Pipeline Run", API_KEY,
            {"description": "Run created", "content": json_content(ref(TriggerPipelineAnswer), {
                "success": True, "run_id": "run_456", "status": "running", "workflow_id": "deploy.yml"})},
            (400, 401, 403, 404, 409, 413, 415, 422, 429, 500, 502, 504), tag=tag,
            description="Required permission: trigger_pipeline.",
            parameters=[{"name": "Idempotency-Key", "in": "header", "required": False,
                         "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                         "description": "Returns the same run for 24 h when repeated"}],
            body=request_body(ref(TriggerPipelineRequest), {"pipeline_id": "abc123"}),
            text={409: "An earlier request with this Idempotency-Key is still in progress",
                  422: "Upstream refused the dispatch, or an Idempotency-Key was reused with another body"})},
        "/api/get-status": {"get": operation(
            "getStatus", "Get Pipeline Status", API_KEY,
            {"description": "The run", "content": json_content(ref(RunAnswer), {"success": True, "run": RUN_EXAMPLE})},
            (400, 401, 403, 404, 429, 500), tag=tag, description="Required permission: read_runs.",
            parameters=[
                query_param("run_id", "Pipeline run identifier", required=True),
                query_param("wait", "Long-poll: answer when the run changes, at most this many seconds",
                       schema={"type": "integer", "minimum": 0, "maximum": 60}),
                query_param("version", "The run version last seen (for wait)",
                       schema={"type": "integer", "minimum": 0, "maximum": 2147483647}),
            ])},
        "/api/get-config": {"get": operation(
            "getConfig", "Get Pipeline Configuration", API_KEY,
            {"description": "The pipeline", "content": json_content(ref(ConfigAnswer), {
                "success": True, "config": {"id": "abc123", "name": "Web", "provider": "github",
                                            "project_type": "nextjs", "repository_name": "owner/repo",
                                            "branch": "main", "triggers": {"push": ["main"]},
                                            "build_command": "npm run build",
                                            "quality_gates": {"max_duration_seconds": 600}}})},
            (400, 401, 403, 404, 429, 500), tag=tag, description="Required permission: read_config.",
            parameters=[query_param("pipeline_id", "Pipeline identifier", required=True)])},
        "/api/runs": {"get": operation(
            "listRuns", "List runs, newest first", API_KEY,
            {"description": "A page of runs", "content": json_content(ref(RunsPage))},
            (400, 401, 403, 404, 429, 500), tag=tag, description="Required permission: read_runs.",
            parameters=[
                query_param("pipeline_id", "Only this pipeline"),
                query_param("status", "Only runs with this status",
                       schema={"type": "string", "enum": ["running", "success", "failed"]}),
                query_param("limit", "Page size", schema={"type": "integer", "minimum": 1, "maximum": 100}),
                query_param("cursor", "next_cursor of the previous page",
                       schema={"type": "string", "minLength": 1, "maxLength": 200}),
            ])},
        "/api/get-artifact": {"get": operation(
            "getArtifact", "Download a run's artifact", API_KEY,
            {"description": "The artifact's bytes, streamed from upstream (GitHub and GitLab send a zip archive)",
             "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
            (400, 401, 403, 404, 429, 500, 502, 504), tag=tag,
            description="Required permission: read_runs. The download_url of an artifact in get-status.",
            parameters=[query_param("run_id", "Pipeline run identifier", required=True),
                        query_param("name", "The artifact's name", required=True)],
            text={404: "Unknown run or artifact, outside the caller's pipeline scope, or expired upstream"})},
        "/api/trigger-pipelines": {"post": operation(
            "triggerPipelines", "Trigger several pipeline runs as a group", API_KEY,
            {"description": "The group and its runs (a member upstream refused is failed, with error)",
             "content": json_content(obj(
                 ["success", "group_id", "runs"], success=BOOLEAN, group_id=STRING,
                 runs={"type": "array", "items": obj(
                     ["run_id", "pipeline_id", "status"], run_id=STRING, pipeline_id=STRING,
                     status={"type": "string", "enum": ["running", "success", "failed"]}, phase=STRING,
                     conclusion=NULLABLE_STRING, upstream_run_id=NULLABLE_STRING, html_url=NULLABLE_STRING,
                     error={**STRING, "description": "Why upstream refused this member"})}),
                 {"success": True, "group_id": "grp_1", "runs": [
                     {"run_id": "run_1", "pipeline_id": "web", "status": "running"},
                     {"run_id": "run_2", "pipeline_id": "api", "status": "running"}]})},
            (400, 401, 403, 404, 409, 413, 415, 422, 429, 500), tag=tag,
            description="Required permission: trigger_pipeline, and every pipeline in the key's scope; every "
                        "member is checked before any run starts.",
            parameters=[{"name": "Idempotency-Key", "in": "header", "required": False,
                         "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                         "description": "Returns the same group for 24 h when repeated"}],
            body=request_body(ref(TriggerPipelinesRequest), {"runs": [{"pipeline_id": "web"},
                                                                      {"pipeline_id": "api", "branch": "main"}]}))},
        "/api/get-group": {"get": operation(
            "getGroup", "Get a group of runs", API_KEY,
            {"description": "The group: running until all its runs end, then failed if any failed, else success",
             "content": json_content(obj(["success", "group"], success=BOOLEAN, group=obj(
                 ["id", "status", "failed_runs", "runs", "created_at", "completed_at"], id=STRING,
                 status={"type": "string", "enum": ["running", "success", "failed"]},
                 failed_runs={"type": "array", "items": STRING},
                 runs={"type": "array", "items": {"$ref": "#/components/schemas/Run"},
                       "description": "The runs the caller's key may see"},
                 created_at=NULLABLE_STRING, completed_at=NULLABLE_STRING)))},
            (400, 401, 403, 404, 429, 500), tag=tag, description="Required permission: read_runs.",
            parameters=[query_param("group_id", "The group_id trigger-pipelines returned", required=True)])},
        "/api/cancel-run": {"post": operation(
            "cancelRun", "Cancel a run", API_KEY,
            {"description": "Cancellation requested", "content": json_content(ref(RunAnswer))},
            (400, 401, 403, 404, 413, 415, 429, 500), tag=tag, description="Required permission: trigger_pipeline.",
            body=request_body(ref(CancelRunRequest), {"run_id": "run_456"}))},
    }


def access_paths() -> dict[str, Any]:
    tag = "Access"
    key_id_body = request_body(ref(KeyIdRequest), {"id": "key_id"})
    session_write = (400, 401, 403, 413, 415, 500)
    return {
        "/functions/login": {"post": operation(
            "login", "Log in (people)", PUBLIC,
            {"description": f"Logged in: the {COOKIE} cookie is set (HttpOnly, SameSite=Lax)",
             "content": json_content(obj(["success", "user", "csrf_token", "expires_at"], success=BOOLEAN,
                                   user=ref(User), csrf_token={**STRING, "description": f"Send as {CSRF_HEADER}"},
                                   expires_at=TIME))},
            (400, 401, 413, 415, 429, 500), tag=tag,
            description="Throttled per account and per client address; unknown users and wrong passwords get "
                        "the same 401.",
            body=request_body(ref(LoginRequest), {"username": "alice", "password": "correct horse battery staple"}),
            text={401: "Wrong username or password, or a cross-site login", 429: "Too many failed logins"},
            ok_headers={"Set-Cookie": {"description": f"The {COOKIE} session cookie", "required": True,
                                       "schema": STRING}})},
        "/functions/logout": {"post": operation(
            "logout", "Log out (ends the session)", SESSION_WRITE,
            {"description": "Logged out",
             "content": json_content(obj(["success"], success=BOOLEAN), {"success": True})},
            (401, 403, 500), tag=tag)},
        "/functions/createAPIKey": {"post": operation(
            "createAPIKey", "Create API Key", SESSION_WRITE,
            {"description": "The key; plaintext_key is shown only once",
             "content": json_content(obj(["success", "id", "name", "plaintext_key", "key_preview"], success=BOOLEAN,
                                   id=STRING, name=STRING, plaintext_key={"type": "string", "pattern": "^ffai_"},
                                   key_preview=STRING), CREATE_KEY_ANSWER_EXAMPLE)},
            session_write, tag=tag,
            description="Authentication: user session (not API key). Save the plaintext_key immediately: it is "
                        "only shown once.",
            body=request_body(ref(CreateAPIKeyRequest), CREATE_KEY_EXAMPLE),
            text={400: "Invalid name, permissions, pipeline_ids (unknown pipeline) or expires_in_days"})},
        "/functions/listAPIKeys": {"get": operation(
            "listAPIKeys", "List API keys (never the keys themselves)", SESSION_READ,
            {"description": "The caller's keys; an administrator's listing has every key and its owner",
             "content": json_content(obj(["success", "keys"], success=BOOLEAN,
                                   keys={"type": "array", "items": {"$ref": "#/components/schemas/ApiKeyInfo"}}))},
            (401, 500), tag=tag)},
        "/functions/revokeAPIKey": {"post": operation(
            "revokeAPIKey", "Revoke an API key at once", SESSION_WRITE,
            {"description": "Revoked", "content": json_content(obj(["success", "key"], success=BOOLEAN,
                                                             key={"$ref": "#/components/schemas/ApiKeyInfo"}))},
            session_write[:3] + (404,) + session_write[3:], tag=tag, body=key_id_body,
            text={404: "No such key among the caller's keys"})},
        "/functions/rotateAPIKey": {"post": operation(
            "rotateAPIKey", "Rotate an API key's secret", SESSION_WRITE,
            {"description": "The new secret (shown once); the old one works until previous_key_expires_at",
             "content": json_content(obj(["success", "id", "name", "plaintext_key", "key_preview",
                                    "previous_key_expires_at"], success=BOOLEAN, id=STRING, name=STRING,
                                   plaintext_key={"type": "string", "pattern": "^ffai_"}, key_preview=STRING,
                                   previous_key_expires_at=TIME))},
            session_write[:3] + (404,) + session_write[3:], tag=tag, body=key_id_body,
            text={400: "Invalid id, or the key is revoked", 404: "No such key among the caller's keys"})},
        "/functions/listAuditEvents": {"get": operation(
            "listAuditEvents", "The audit log, newest first (administrators)", SESSION_READ,
            {"description": "Audit events", "content": json_content(obj(
                ["success", "events"], success=BOOLEAN,
                events={"type": "array", "items": {"$ref": "#/components/schemas/AuditEvent"}}))},
            (400, 401, 403, 500), tag=tag,
            parameters=[query_param("limit", "At most this many events (default 100)",
                               schema={"type": "integer", "minimum": 1, "maximum": 500}),
                        query_param("action", "Only this action, e.g. key.created")],
            text={403: "Only administrators may read the audit log"})},
    }


def webhook_paths() -> dict[str, Any]:
    tag = "Webhooks"
    write = (400, 401, 403, 404, 413, 415, 429, 500)
    desc = "An API key needs the webhook permission; a person's session (with its CSRF token) also works."
    id_body = request_body(ref(WebhookIdRequest), {"id": "wh_3xYz"})
    webhook_answer = obj(["success", "webhook"], success=BOOLEAN, webhook={"$ref": "#/components/schemas/Webhook"})
    text = {404: "Unknown webhook, or outside the caller's view",
            429: "The caller's API key, or a subscribed endpoint's webhook rate limit (100 events/minute), "
                 "is exhausted"}

    def op(op_id: str, summary: str, ok: dict, codes: tuple[int, ...] = write, **kw: Any) -> dict:
        security = KEY_OR_SESSION_READ if kw.pop("read", False) else KEY_OR_SESSION_WRITE
        return operation(op_id, summary, security, ok, codes, tag=tag, description=kw.pop("description", desc),
                   text={**text, **kw.pop("text", {})}, **kw)

    return {
        "/functions/createWebhook": {"post": op(
            "createWebhook", "Create a webhook endpoint",
            {"description": "Created; the signing secret is shown only once",
             "content": json_content(obj(["success", "id", "secret", "webhook"], success=BOOLEAN, id=STRING,
                                   secret=STRING, webhook={"$ref": "#/components/schemas/Webhook"}))},
            body=request_body(ref(CreateWebhookRequest), {
                "url": "https://hooks.example.com/flashfusion", "events": ["run.completed", "run.failed"],
                "description": "Deploy notifications"}),
            text={400: "Invalid field, or the URL is refused (scheme, private address, unresolvable host)",
                  404: "A pipeline in pipeline_ids is unknown or outside the key's scope"})},
        "/functions/listWebhooks": {"get": op(
            "listWebhooks", "List webhook endpoints",
            {"description": "The endpoints the caller may see",
             "content": json_content(obj(["success", "webhooks"], success=BOOLEAN,
                                   webhooks={"type": "array", "items": {"$ref": "#/components/schemas/Webhook"}}))},
            (401, 403, 429, 500), read=True)},
        "/functions/updateWebhook": {"post": op(
            "updateWebhook", "Change a webhook endpoint",
            {"description": "The endpoint after the change", "content": json_content(webhook_answer)},
            body=request_body(ref(UpdateWebhookRequest), {"id": "wh_3xYz", "enabled": True}))},
        "/functions/deleteWebhook": {"post": op(
            "deleteWebhook", "Delete a webhook endpoint (its pending deliveries fail)",
            {"description": "Deleted", "content": json_content(obj(["success", "id"], success=BOOLEAN, id=STRING))},
            body=id_body)},
        "/functions/rotateWebhookSecret": {"post": op(
            "rotateWebhookSecret", "New signing secret; the old one also signs for 24 h",
            {"description": "The new secret (shown once)",
             "content": json_content(obj(["success", "id", "secret", "previous_secret_expires_at"], success=BOOLEAN,
                                   id=STRING, secret=STRING, previous_secret_expires_at=TIME))},
            body=id_body)},
        "/functions/testWebhook": {"post": op(
            "testWebhook", "Send a ping event to one endpoint",
            {"description": "Queued",
             "content": json_content(obj(["success", "event_id", "delivery_id"], success=BOOLEAN,
                                                             event_id=STRING, delivery_id=STRING))},
            body=id_body)},
        "/functions/sendWebhook": {"post": op(
            "sendWebhook", "Send Webhook Notification",
            {"description": "The event, and one queued delivery per subscribed endpoint",
             "content": json_content(obj(["success", "event_id", "deliveries"], success=BOOLEAN, event_id=STRING,
                                   deliveries={"type": "array", "items": obj(["id", "webhook_id"], id=STRING,
                                                                              webhook_id=STRING)}),
                              SEND_WEBHOOK_ANSWER_EXAMPLE)},
            description="Trigger webhook notifications for pipeline events. " + desc + " Receivers get the "
                        "WebhookPayload structure, signed with HMAC-SHA256 in X-FlashFusion-Signature (see the "
                        "pipelineEvent webhook).",
            body=request_body(ref(SendWebhookRequest), SEND_WEBHOOK_EXAMPLE),
            text={404: "Unknown pipeline, or outside the key's scope",
                  429: "The caller's API key, or a subscribed endpoint's webhook rate limit (100 events/minute), "
                       "is exhausted; nothing was sent"})},
        "/functions/listDeliveries": {"get": op(
            "listDeliveries", "An endpoint's delivery log, newest first",
            {"description": "A page of deliveries, each with its attempts",
             "content": json_content(obj(["success", "deliveries", "next_cursor"], success=BOOLEAN,
                                   deliveries={"type": "array", "items": {"$ref": "#/components/schemas/Delivery"}},
                                   next_cursor=NULLABLE_STRING))},
            (400, 401, 403, 404, 429, 500), read=True,
            parameters=[query_param("webhook_id", "The webhook's id", required=True,
                               schema={"type": "string", "minLength": 1, "maxLength": 40}),
                        query_param("status", "Only deliveries in this state",
                               schema={"type": "string", "enum": ["pending", "succeeded", "failed"]}),
                        query_param("limit", "Page size (default 50)",
                               schema={"type": "integer", "minimum": 1, "maximum": 200}),
                        query_param("cursor", "next_cursor of the previous page",
                               schema={"type": "string", "minLength": 1, "maxLength": 40})],
            text={400: "Invalid query parameter, or a cursor from another endpoint"})},
        "/functions/redeliver": {"post": op(
            "redeliver", "Send one delivery again (a new delivery of the same event)",
            {"description": "Queued",
             "content": json_content(obj(["success", "delivery_id", "event_id"], success=BOOLEAN,
                                                             delivery_id=STRING, event_id=STRING))},
            body=request_body(ref(RedeliverRequest), {"delivery_id": "dlv_9kL1"}),
            text={404: "Unknown delivery, or its endpoint is outside the caller's view"})},
        "/functions/replayWebhooks": {"post": op(
            "replayWebhooks", "Send again every delivery of an endpoint since a time",
            {"description": "How many deliveries were queued (paced by the endpoint's rate limit)",
             "content": json_content(obj(["success", "webhook_id", "deliveries"], success=BOOLEAN, webhook_id=STRING,
                                   deliveries={"type": "integer", "minimum": 0}))},
            body=request_body(ref(ReplayWebhooksRequest), {"webhook_id": "wh_3xYz", "since": "2025-11-21T10:30:00Z",
                                                               "failed_only": True}))},
    }


def service_paths() -> dict[str, Any]:
    tag = "Service"
    return {
        "/healthz": {
            "get": operation("healthz", "Liveness", PUBLIC,
                       {"description": "Alive", "content": json_content(obj(["success", "status"], success=BOOLEAN,
                                                                      status={"type": "string", "enum": ["ok"]}),
                                                                 {"success": True, "status": "ok"})},
                       (500,), tag=tag),
            "head": operation("healthzHead", "Liveness, as GET without a body", PUBLIC, {"description": "Alive"}, (),
                        tag=tag),
        },
        "/readyz": {
            "get": operation("readyz", "Readiness", PUBLIC,
                       {"description": "Ready (status ready), or serving with some pipelines degraded (status "
                                       "degraded)",
                        "content": json_content({"$ref": "#/components/schemas/Readiness"})},
                       (500,), tag=tag,
                       description="503 only when the database is unreachable, behind on migrations or migrated by "
                                   "a newer release. Each pipeline's provider check is reported under pipelines (to "
                                   "an administrator's session only) without failing readiness."),
            "head": operation("readyzHead", "Readiness, as GET without a body", PUBLIC,
                        {"description": "Ready or degraded (503 when not ready)"}, (), tag=tag),
        },
        "/openapi.json": {"get": operation(
            "openapi", "This document", PUBLIC,
            {"description": "The OpenAPI 3.1 document",
             "content": json_content(obj(["openapi", "info", "paths"], openapi=STRING, info={"type": "object"},
                                   paths={"type": "object"}))},
            (500,), tag=tag)},
        "/metrics": {"get": operation(
            "metrics", "Prometheus metrics", PUBLIC,
            {"description": "The Prometheus text exposition (format 0.0.4)",
             "content": {"text/plain; version=0.0.4; charset=utf-8": {"schema": STRING}}},
            (401, 403, 500), tag=tag,
            description="With [metrics] token_env set, send Authorization: Bearer <token>; without it, only "
                        "loopback clients that came directly (no proxy header) are answered.")},
    }


def hook_paths() -> dict[str, Any]:
    """``POST /hooks/{provider}``: provider webhooks in (see docs/provider-webhooks.md)."""
    error = json_content(ERROR)
    return {"/hooks/{provider}": {"post": {
        "operationId": "providerHook", "tags": ["Service"], "security": [],
        "summary": "Receive a provider's webhook (GitHub, GitLab)",
        "description": "Authenticated by the provider's signature (GitHub X-Hub-Signature-256; GitLab "
                       "X-Gitlab-Token and, with a signing token, webhook-signature), not by an API key. "
                       "The delivery is stored and applied by the worker; a delivery id seen before is "
                       "applied once. Unknown events are acknowledged and ignored.",
        "parameters": [{"name": "provider", "in": "path", "required": True, "schema": STRING,
                        "description": "a [providers.NAME] table with webhook_secret_env"}],
        "requestBody": {"required": True, "content": json_content({"type": "object"})},
        "responses": {
            "202": {"description": "Accepted (status accepted, duplicate or ignored)", "headers": headers_for(False, 202),
                    "content": json_content(obj(["success", "status"], success={"type": "boolean"}, status=STRING))},
            **{str(code): {"description": text, "headers": headers_for(False, code), "content": error}
               for code, text in ((401, "Missing or wrong signature; nothing stored"), (404, "No such provider"),
                                  (413, "Body larger than 1 MiB"))},
        },
    }}}
