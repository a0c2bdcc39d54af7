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
from flashfusion.core.access.permissions import PERMISSIONS
from flashfusion.core.access.sessions import COOKIE
from flashfusion.core.access.users import MAX_PASSWORD_BYTES
from flashfusion.core.runs.service import (
    INPUT_NAME_PATTERN,
    MAX_INPUT_VALUE,
    MAX_INPUTS,
    REF_PATTERN,
)
from flashfusion.core.web.authentication import CSRF_HEADER
from flashfusion.core.webhooks.endpoints import EVENT_TYPES, MAX_DESCRIPTION

# Routes the app serves that this document leaves out on purpose: the dashboard (HTML pages
# behind the session login, and the HTML form posts they make) and its static files.
NOT_DESCRIBED: dict[str, tuple[str, ...]] = {
    "/": ("GET",),
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

ERROR = {"$ref": "#/components/schemas/Error"}
STRING = {"type": "string"}
NULLABLE_STRING = {"type": ["string", "null"]}
TIME = {"type": "string", "description": "ISO 8601, UTC (ends with Z)"}
NULLABLE_TIME = {"type": ["string", "null"], "description": "ISO 8601, UTC (ends with Z)"}
BOOLEAN = {"type": "boolean"}
ID = {"type": "string", "minLength": 1}

# Security requirements (alternatives are OR-ed). A session's state-changing call must also
# carry the CSRF token that login returned.
API_KEY = [{"ApiKey": []}]
SESSION_READ = [{"SessionCookie": []}]
SESSION_WRITE = [{"SessionCookie": [], "CsrfToken": []}]
KEY_OR_SESSION_READ = API_KEY + SESSION_READ
KEY_OR_SESSION_WRITE = API_KEY + SESSION_WRITE
PUBLIC: list = []

ERROR_TEXT = {
    400: "Bad request: invalid JSON, a missing or invalid field (named in the message)",
    401: "Not authenticated: missing, malformed, unknown, revoked or expired API key, or no valid session",
    403: "Authenticated but not allowed: the key lacks the permission, or the session call lacks its CSRF "
         "token or comes cross-site",
    404: "Not found, or outside the caller's pipeline scope",
    405: "Method not allowed",
    409: "Conflict",
    413: "Body larger than 64 KiB",
    415: "Body is not JSON",
    422: "Unprocessable",
    429: "Rate limit exceeded (see Retry-After)",
    500: "Internal error (no details; quote X-Request-ID)",
    502: "The provider failed or refused our credentials",
    504: "The provider did not answer in time",
}

REQUEST_ID = {"X-Request-ID": {
    "description": "The request's id (the caller's own X-Request-ID when sent, else a new one); quote it in reports",
    "required": True, "schema": {"type": "string", "minLength": 1, "maxLength": 128}}}
RATE_LIMIT = {
    "X-RateLimit-Limit": {"description": "Requests allowed per window (API key calls)",
                          "schema": {"type": "integer", "minimum": 0}},
    "X-RateLimit-Remaining": {"description": "Requests left in the window",
                              "schema": {"type": "integer", "minimum": 0}},
    "X-RateLimit-Reset": {"description": "Unix time when the window is full again",
                          "schema": {"type": "integer", "minimum": 0}},
    "RateLimit-Policy": {"description": "IETF draft RateLimit-Policy", "schema": STRING},
    "RateLimit": {"description": "IETF draft RateLimit", "schema": STRING},
}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying", "required": True,
                               "schema": {"type": "integer", "minimum": 1}}}
OPTIONAL_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying, when known",
                                        "schema": {"type": "integer", "minimum": 1}}}


def _json(schema: dict, example: Any = None) -> dict:
    body: dict[str, Any] = {"schema": schema}
    if example is not None:
        body["example"] = example
    return {"application/json": body}


def _obj(required: list[str], **properties: Any) -> dict:
    return {"type": "object", "required": required, "properties": properties}


def _query(name: str, description: str, required: bool = False, schema: dict | None = None) -> dict:
    return {"name": name, "in": "query", "required": required, "description": description,
            "schema": schema or {"type": "string", "minLength": 1, "maxLength": 64}}


HEADERS = {**REQUEST_ID, **RATE_LIMIT, **RETRY_AFTER,
           "Retry-After-Optional": OPTIONAL_RETRY_AFTER["Retry-After"]}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/headers/{name}"}


def _headers(rate_limited: bool, status: int) -> dict:
    """The headers of one answer, as references to ``components.headers``."""
    headers = {"X-Request-ID": _ref("X-Request-ID")}
    if rate_limited:
        headers.update({name: _ref(name) for name in RATE_LIMIT})
    if status == 429:
        headers["Retry-After"] = _ref("Retry-After")
    elif status in (502, 503, 504):
        headers["Retry-After"] = _ref("Retry-After-Optional")
    return headers


def _responses(ok: dict, codes: tuple[int, ...], *, rate_limited: bool, text: dict[int, str] | None = None,
               ok_headers: dict | None = None) -> dict:
    """A 200 answer plus the Error answers ``codes``; every answer names its headers."""
    text = {**ERROR_TEXT, **(text or {})}
    out = {"200": {**ok, "headers": {**_headers(rate_limited, 200), **(ok_headers or {})}}}
    for code in codes:
        out[str(code)] = {"description": text[code], "headers": _headers(rate_limited, code),
                          "content": _json(ERROR)}
    return out


def _body(schema: dict, example: Any) -> dict:
    return {"required": True, "content": _json(schema, example)}


def _op(op_id: str, summary: str, security: list, ok: dict, codes: tuple[int, ...], *, tag: str,
        description: str | None = None, body: dict | None = None, parameters: list | None = None,
        text: dict[int, str] | None = None, ok_headers: dict | None = None) -> dict:
    rate_limited = any("ApiKey" in r for r in security)
    op: dict[str, Any] = {"summary": summary, "operationId": op_id, "tags": [tag], "security": security}
    if description:
        op["description"] = description
    if parameters:
        op["parameters"] = parameters
    if body is not None:
        op["requestBody"] = body
    op["responses"] = _responses(ok, codes, rate_limited=rate_limited, text=text, ok_headers=ok_headers)
    return op


STEP = {
    "type": "object",
    "required": ["name", "status"],
    "properties": {
        "name": STRING,
        "status": {"type": "string", "enum": ["pending", "running", "success", "failed", "skipped", "cancelled"]},
        "conclusion": NULLABLE_STRING,
        "stage": NULLABLE_STRING,
        "started_at": NULLABLE_STRING,
        "completed_at": NULLABLE_STRING,
        "duration_seconds": {"type": ["number", "null"]},
        "exit_code": {"type": ["integer", "null"]},
        "url": NULLABLE_STRING,
        "log_tail": NULLABLE_STRING,
    },
}

RUN = {
    "type": "object",
    "required": ["id", "status", "duration_seconds", "steps", "deployment_url"],
    "properties": {
        "id": STRING,
        "pipeline_id": STRING,
        "status": {"type": "string", "enum": ["success", "failed", "running"]},
        "conclusion": NULLABLE_STRING,
        "phase": {"type": "string", "enum": ["queued", "dispatching", "in_progress", "completed"]},
        "provider": STRING,
        "provider_status": NULLABLE_STRING,
        "branch": STRING,
        "workflow_id": NULLABLE_STRING,
        "upstream_run_id": NULLABLE_STRING,
        "html_url": NULLABLE_STRING,
        "deployment_url": NULLABLE_STRING,
        "duration_seconds": {"type": ["integer", "null"]},
        "failed_step": NULLABLE_STRING,
        "error": NULLABLE_STRING,
        "cancel_requested": {"type": "boolean"},
        "steps": {"type": "array", "items": STEP},
        "created_at": NULLABLE_STRING,
        "started_at": NULLABLE_STRING,
        "finished_at": NULLABLE_STRING,
        "updated_at": NULLABLE_STRING,
        "version": {"type": "integer"},
    },
}

RUN_EXAMPLE = {"id": "run_456", "status": "success", "duration_seconds": 120,
               "steps": [{"name": "build", "status": "success", "duration_seconds": 95.2}],
               "deployment_url": "https://demo.example.com"}

USER = _obj(["id", "username", "is_admin", "created_at", "disabled"],
            id=STRING, username=STRING, is_admin=BOOLEAN, created_at=NULLABLE_TIME, disabled=BOOLEAN)

API_KEY_INFO = _obj(
    ["id", "name", "key_preview", "permissions", "pipeline_ids", "created_at", "expires_at", "last_used",
     "usage_count", "revoked"],
    id=STRING, name=STRING, key_preview=STRING,
    permissions={"type": "array", "items": {"type": "string", "enum": list(PERMISSIONS)}},
    pipeline_ids={"type": "array", "items": STRING, "description": "Empty: every pipeline"},
    created_at=NULLABLE_TIME, expires_at=NULLABLE_TIME, last_used=NULLABLE_TIME,
    usage_count={"type": "integer", "minimum": 0}, revoked=BOOLEAN,
    previous_key_expires_at={**TIME, "description": "While a rotation's grace period lasts: when the old secret stops"},
    owner={**NULLABLE_STRING, "description": "Owner's username (administrators' listings only)"},
)

AUDIT_EVENT = _obj(["id", "at", "actor", "action", "target", "client_addr", "key_preview", "detail"],
                   id=STRING, at=NULLABLE_TIME, actor=STRING, action=STRING, target=NULLABLE_STRING,
                   client_addr=NULLABLE_STRING, key_preview=NULLABLE_STRING, detail={"type": ["object", "null"]})

EVENT_NAMES = {"type": "string", "enum": list(EVENT_TYPES)}

WEBHOOK = _obj(
    ["id", "url", "description", "events", "pipeline_ids", "enabled", "disabled_at", "disabled_reason",
     "failing_since", "last_success_at", "previous_secret_expires_at", "created_by", "created_at", "updated_at"],
    id=STRING, url=STRING, description=STRING,
    events={"type": "array", "items": EVENT_NAMES},
    pipeline_ids={"type": "array", "items": STRING, "description": "Empty: every pipeline"},
    enabled=BOOLEAN, disabled_at=NULLABLE_TIME, disabled_reason=NULLABLE_STRING, failing_since=NULLABLE_TIME,
    last_success_at=NULLABLE_TIME, previous_secret_expires_at=NULLABLE_TIME, created_by=NULLABLE_STRING,
    created_at=NULLABLE_TIME, updated_at=NULLABLE_TIME,
)

ATTEMPT = _obj(["attempt", "at", "status_code", "latency_ms", "error", "response_excerpt"],
               attempt={"type": "integer"}, at=NULLABLE_TIME, status_code={"type": ["integer", "null"]},
               latency_ms={"type": ["integer", "null"]}, error=NULLABLE_STRING, response_excerpt=NULLABLE_STRING)

DELIVERY = _obj(
    ["id", "webhook_id", "event_id", "event", "pipeline_id", "status", "attempt", "status_code", "latency_ms",
     "error", "response_excerpt", "next_attempt_at", "created_at", "delivered_at", "attempts"],
    id=STRING, webhook_id=STRING, event_id=STRING,
    event={"type": "string", "description": "An event type, or ping for testWebhook"},
    pipeline_id=NULLABLE_STRING, status={"type": "string", "enum": ["pending", "succeeded", "failed"]},
    attempt={"type": "integer", "minimum": 0}, status_code={"type": ["integer", "null"]},
    latency_ms={"type": ["integer", "null"]}, error=NULLABLE_STRING, response_excerpt=NULLABLE_STRING,
    next_attempt_at=NULLABLE_TIME, created_at=NULLABLE_TIME, delivered_at=NULLABLE_TIME,
    attempts={"type": "array", "items": ATTEMPT},
)

# The spec's payload structure, as webhook receivers get it.
WEBHOOK_PAYLOAD_EXAMPLE = {"event": "run.completed", "timestamp": "2025-11-21T10:30:00Z", "pipeline_id": "abc123",
                           "data": {"run_id": "run_456", "status": "success", "duration": "2m 30s"}}
WEBHOOK_PAYLOAD = {**_obj(["event", "timestamp", "pipeline_id", "data"],
                          event=STRING, timestamp=TIME, pipeline_id=NULLABLE_STRING, data={"type": "object"}),
                   "example": WEBHOOK_PAYLOAD_EXAMPLE}

PIPELINE_CHECK = _obj(
    ["provider", "status"],
    provider=STRING,
    status={"type": "string", "enum": ["ok", "degraded", "checking"],
            "description": "checking: not checked yet since this process started"},
    problems={"type": "array", "items": STRING, "description": "Only when degraded"},
)
READINESS = {
    **_obj(["success", "status"],
           success=BOOLEAN,
           status={"type": "string", "enum": ["ready", "degraded", "not_ready"],
                   "description": "not_ready (503): database unreachable, migrations pending or the schema newer "
                                  "than this release; degraded (200): a pipeline's provider check found problems. "
                                  "checks, pipelines and pipelines_checked_at are sent only to an administrator's "
                                  "session"},
           checks={"type": "object", "required": ["database"],
                   "properties": {"database": {"type": "string", "description": "ok, or what is wrong"}},
                   "additionalProperties": STRING},
           pipelines={"type": "object", "additionalProperties": PIPELINE_CHECK,
                      "description": "Each configured pipeline's provider check, by pipeline id"},
           pipelines_checked_at=NULLABLE_TIME),
    "example": {"success": True, "status": "degraded", "checks": {"database": "ok"},
                "pipelines": {"demo": {"provider": "local", "status": "ok"},
                              "web": {"provider": "github", "status": "degraded",
                                      "problems": ["workflow deploy.yml not found in owner/repo"]}},
                "pipelines_checked_at": "2025-11-21T10:30:00Z"},
}

CREATE_KEY_EXAMPLE = {"name": "Production Deploy Key", "permissions": ["trigger_pipeline", "read_runs"],
                      "pipeline_ids": ["id1", "id2"], "expires_in_days": 90}
CREATE_KEY_ANSWER_EXAMPLE = {"success": True, "id": "key_id", "name": "Production Deploy Key",
                             "plaintext_key": "ffai_...", "key_preview": "...abc123"}
SEND_WEBHOOK_EXAMPLE = {"event_type": "run.completed", "pipeline_id": "abc123",
                        "payload": {"run_id": "string", "status": "success", "duration": "2m 30s"}}
SEND_WEBHOOK_ANSWER_EXAMPLE = {"success": True, "event_id": "evt_7Hq2", "deliveries": [
    {"id": "dlv_9kL1", "webhook_id": "wh_3xYz"}]}

DESCRIPTION = (
    "Trigger pipelines and read their status over GitHub Actions, GitLab CI and local runs; manage API keys, "
    "webhooks and their deliveries.\n\n"
    "Authentication: the pipeline API takes an API key in the X-API-Key header (ffai_...). The management "
    "API (/functions/*) is for people: log in with POST /functions/login, which sets the ff_session cookie and "
    "returns a csrf_token to send as X-CSRF-Token on every state-changing call. The webhook endpoints take "
    "either an API key with the webhook permission or a session.\n\n"
    "Errors: every error, the router's own included (404 for an unknown route, 405 for a method a route does "
    "not take), is JSON {\"error\", \"message\"}; every answer carries X-Request-ID.\n\n"
    "Not described here, on purpose: the dashboard (GET / and /login, /logout, /dashboard/... HTML pages and "
    "their form posts) and its static files under /static/dashboard/. They are the browser UI behind the "
    "session login, answer HTML, and are not an API."
)


def _pipeline_paths() -> dict[str, Any]:
    trigger_body = {
        "type": "object",
        "required": ["pipeline_id"],
        "properties": {
            "pipeline_id": {"type": "string", "minLength": 1, "maxLength": 64},
            "branch": {"type": "string", "pattern": REF_PATTERN},
            "inputs": {"type": "object", "maxProperties": MAX_INPUTS, "propertyNames": {"pattern": INPUT_NAME_PATTERN},
                       "additionalProperties": {"type": "string", "maxLength": MAX_INPUT_VALUE}},
        },
    }
    trigger_answer = {
        "type": "object",
        "required": ["success", "run_id", "status", "workflow_id"],
        "properties": {
            "success": {"type": "boolean"}, "run_id": STRING,
            "status": {"type": "string", "enum": ["running", "success", "failed"]},
            "workflow_id": STRING, "phase": STRING, "conclusion": NULLABLE_STRING,
            "upstream_run_id": NULLABLE_STRING, "html_url": NULLABLE_STRING,
        },
    }
    config_answer = {
        "type": "object", "required": ["success", "config"],
        "properties": {"success": {"type": "boolean"}, "config": {
            "type": "object",
            "required": ["id", "name", "provider", "project_type", "repository_name", "branch", "triggers",
                         "build_command", "quality_gates"],
            "properties": {
                "id": STRING, "name": STRING, "provider": STRING, "project_type": STRING, "repository_name": STRING,
                "branch": STRING, "triggers": {"type": "object"}, "build_command": STRING,
                "quality_gates": {"type": "object"}, "steps": {"type": "array"},
                "timeout_seconds": {"type": "integer"}, "workflow": NULLABLE_STRING,
            }}},
    }
    run_answer = _obj(["success", "run"], success=BOOLEAN, run={"$ref": "#/components/schemas/Run"})
    tag = "Pipelines"
    return {
        "/api/trigger-pipeline": {"post": _op(
            "triggerPipeline", "Trigger Pipeline Run", API_KEY,
            {"description": "Run created", "content": _json(trigger_answer, {
                "success": True, "run_id": "run_456", "status": "running", "workflow_id": "deploy.yml"})},
            (400, 401, 403, 404, 409, 413, 415, 422, 429, 500, 502, 504), tag=tag,
            description="Required permission: trigger_pipeline.",
            parameters=[{"name": "Idempotency-Key", "in": "header", "required": False,
                         "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                         "description": "Returns the same run for 24 h when repeated"}],
            body=_body(trigger_body, {"pipeline_id": "abc123"}),
            text={409: "An earlier request with this Idempotency-Key is still in progress",
                  422: "Upstream refused the dispatch, or an Idempotency-Key was reused with another body"})},
        "/api/get-status": {"get": _op(
            "getStatus", "Get Pipeline Status", API_KEY,
            {"description": "The run", "content": _json(run_answer, {"success": True, "run": RUN_EXAMPLE})},
            (400, 401, 403, 404, 429, 500), tag=tag, description="Required permission: read_runs.",
            parameters=[
                _query("run_id", "Pipeline run identifier", required=True),
                _query("wait", "Long-poll: answer when the run changes, at most this many seconds",
                       schema={"type": "integer", "minimum": 0, "maximum": 60}),
                _query("version", "The run version last seen (for wait)",
                       schema={"type": "integer", "minimum": 0, "maximum": 2147483647}),
            ])},
        "/api/get-config": {"get": _op(
            "getConfig", "Get Pipeline Configuration", API_KEY,
            {"description": "The pipeline", "content": _json(config_answer, {
                "success": True, "config": {"id": "abc123", "name": "Web", "provider": "github",
                                            "project_type": "nextjs", "repository_name": "owner/repo",
                                            "branch": "main", "triggers": {"push": ["main"]},
                                            "build_command": "npm run build",
                                            "quality_gates": {"max_duration_seconds": 600}}})},
            (400, 401, 403, 404, 429, 500), tag=tag, description="Required permission: read_config.",
            parameters=[_query("pipeline_id", "Pipeline identifier", required=True)])},
        "/api/runs": {"get": _op(
            "listRuns", "List runs, newest first", API_KEY,
            {"description": "A page of runs", "content": _json(_obj(
                ["success", "runs", "next_cursor"], success=BOOLEAN,
                runs={"type": "array", "items": {"$ref": "#/components/schemas/Run"}},
                next_cursor=NULLABLE_STRING))},
            (400, 401, 403, 404, 429, 500), tag=tag, description="Required permission: read_runs.",
            parameters=[
                _query("pipeline_id", "Only this pipeline"),
                _query("status", "Only runs with this status",
                       schema={"type": "string", "enum": ["running", "success", "failed"]}),
                _query("limit", "Page size", schema={"type": "integer", "minimum": 1, "maximum": 100}),
                _query("cursor", "next_cursor of the previous page",
                       schema={"type": "string", "minLength": 1, "maxLength": 200}),
            ])},
        "/api/cancel-run": {"post": _op(
            "cancelRun", "Cancel a run", API_KEY,
            {"description": "Cancellation requested", "content": _json(run_answer)},
            (400, 401, 403, 404, 413, 415, 429, 500), tag=tag, description="Required permission: trigger_pipeline.",
            body=_body(_obj(["run_id"], run_id={"type": "string", "minLength": 1, "maxLength": 64}),
                       {"run_id": "run_456"}))},
    }


def _access_paths() -> dict[str, Any]:
    tag = "Access"
    key_id_body = _body(_obj(["id"], id={**ID, "description": "The key's id (not the key)"}), {"id": "key_id"})
    session_write = (400, 401, 403, 413, 415, 500)
    return {
        "/functions/login": {"post": _op(
            "login", "Log in (people)", PUBLIC,
            {"description": f"Logged in: the {COOKIE} cookie is set (HttpOnly, SameSite=Lax)",
             "content": _json(_obj(["success", "user", "csrf_token", "expires_at"], success=BOOLEAN,
                                   user=USER, csrf_token={**STRING, "description": f"Send as {CSRF_HEADER}"},
                                   expires_at=TIME))},
            (400, 401, 413, 415, 429, 500), tag=tag,
            description="Throttled per account and per client address; unknown users and wrong passwords get "
                        "the same 401.",
            body=_body(_obj(["username", "password"],
                            username={"type": "string", "minLength": 1, "maxLength": 100},
                            password={"type": "string", "minLength": 1, "maxLength": MAX_PASSWORD_BYTES,
                                      "description": f"At most {MAX_PASSWORD_BYTES} bytes (UTF-8)"}),
                       {"username": "alice", "password": "correct horse battery staple"}),
            text={401: "Wrong username or password, or a cross-site login", 429: "Too many failed logins"},
            ok_headers={"Set-Cookie": {"description": f"The {COOKIE} session cookie", "required": True,
                                       "schema": STRING}})},
        "/functions/logout": {"post": _op(
            "logout", "Log out (ends the session)", SESSION_WRITE,
            {"description": "Logged out", "content": _json(_obj(["success"], success=BOOLEAN), {"success": True})},
            (401, 403, 500), tag=tag)},
        "/functions/createAPIKey": {"post": _op(
            "createAPIKey", "Create API Key", SESSION_WRITE,
            {"description": "The key; plaintext_key is shown only once",
             "content": _json(_obj(["success", "id", "name", "plaintext_key", "key_preview"], success=BOOLEAN,
                                   id=STRING, name=STRING, plaintext_key={"type": "string", "pattern": "^ffai_"},
                                   key_preview=STRING), CREATE_KEY_ANSWER_EXAMPLE)},
            session_write, tag=tag,
            description="Authentication: user session (not API key). Save the plaintext_key immediately: it is "
                        "only shown once.",
            body=_body(_obj(["name", "permissions"],
                            name={"type": "string", "minLength": 1, "maxLength": 200},
                            permissions={"type": "array", "minItems": 1,
                                         "items": {"type": "string", "enum": list(PERMISSIONS)}},
                            pipeline_ids={"type": ["array", "null"], "items": STRING,
                                          "description": "Pipeline scope; empty or absent: every pipeline"},
                            expires_in_days={"type": ["integer", "null"], "minimum": 1, "maximum": 365,
                                             "description": "Default 90"}),
                       CREATE_KEY_EXAMPLE),
            text={400: "Invalid name, permissions, pipeline_ids (unknown pipeline) or expires_in_days"})},
        "/functions/listAPIKeys": {"get": _op(
            "listAPIKeys", "List API keys (never the keys themselves)", SESSION_READ,
            {"description": "The caller's keys; an administrator's listing has every key and its owner",
             "content": _json(_obj(["success", "keys"], success=BOOLEAN,
                                   keys={"type": "array", "items": {"$ref": "#/components/schemas/ApiKeyInfo"}}))},
            (401, 500), tag=tag)},
        "/functions/revokeAPIKey": {"post": _op(
            "revokeAPIKey", "Revoke an API key at once", SESSION_WRITE,
            {"description": "Revoked", "content": _json(_obj(["success", "key"], success=BOOLEAN,
                                                             key={"$ref": "#/components/schemas/ApiKeyInfo"}))},
            session_write[:3] + (404,) + session_write[3:], tag=tag, body=key_id_body,
            text={404: "No such key among the caller's keys"})},
        "/functions/rotateAPIKey": {"post": _op(
            "rotateAPIKey", "Rotate an API key's secret", SESSION_WRITE,
            {"description": "The new secret (shown once); the old one works until previous_key_expires_at",
             "content": _json(_obj(["success", "id", "name", "plaintext_key", "key_preview",
                                    "previous_key_expires_at"], success=BOOLEAN, id=STRING, name=STRING,
                                   plaintext_key={"type": "string", "pattern": "^ffai_"}, key_preview=STRING,
                                   previous_key_expires_at=TIME))},
            session_write[:3] + (404,) + session_write[3:], tag=tag, body=key_id_body,
            text={400: "Invalid id, or the key is revoked", 404: "No such key among the caller's keys"})},
        "/functions/listAuditEvents": {"get": _op(
            "listAuditEvents", "The audit log, newest first (administrators)", SESSION_READ,
            {"description": "Audit events", "content": _json(_obj(
                ["success", "events"], success=BOOLEAN,
                events={"type": "array", "items": {"$ref": "#/components/schemas/AuditEvent"}}))},
            (400, 401, 403, 500), tag=tag,
            parameters=[_query("limit", "At most this many events (default 100)",
                               schema={"type": "integer", "minimum": 1, "maximum": 500}),
                        _query("action", "Only this action, e.g. key.created")],
            text={403: "Only administrators may read the audit log"})},
    }


def _webhook_paths() -> dict[str, Any]:
    tag = "Webhooks"
    write = (400, 401, 403, 404, 413, 415, 429, 500)
    desc = "An API key needs the webhook permission; a person's session (with its CSRF token) also works."
    id_body = _body(_obj(["id"], id={**ID, "description": "The webhook's id"}), {"id": "wh_3xYz"})
    webhook_answer = _obj(["success", "webhook"], success=BOOLEAN, webhook={"$ref": "#/components/schemas/Webhook"})
    text = {404: "Unknown webhook, or outside the caller's view",
            429: "The caller's API key, or a subscribed endpoint's webhook rate limit (100 events/minute), "
                 "is exhausted"}
    events = {"type": ["array", "null"], "items": EVENT_NAMES, "description": "Empty or absent: every event"}
    pipelines = {"type": ["array", "null"], "items": STRING,
                 "description": "Only events of these pipelines; empty or absent: the key's scope (every pipeline "
                                "for an unscoped key)"}
    description = {"type": ["string", "null"], "maxLength": MAX_DESCRIPTION}

    def op(op_id: str, summary: str, ok: dict, codes: tuple[int, ...] = write, **kw: Any) -> dict:
        security = KEY_OR_SESSION_READ if kw.pop("read", False) else KEY_OR_SESSION_WRITE
        return _op(op_id, summary, security, ok, codes, tag=tag, description=kw.pop("description", desc),
                   text={**text, **kw.pop("text", {})}, **kw)

    return {
        "/functions/createWebhook": {"post": op(
            "createWebhook", "Create a webhook endpoint",
            {"description": "Created; the signing secret is shown only once",
             "content": _json(_obj(["success", "id", "secret", "webhook"], success=BOOLEAN, id=STRING,
                                   secret=STRING, webhook={"$ref": "#/components/schemas/Webhook"}))},
            body=_body(_obj(["url"], url={"type": "string", "description": "https URL; private addresses are "
                                                                          "refused unless allowed in config"},
                            events=events, pipeline_ids=pipelines, description=description),
                       {"url": "https://hooks.example.com/flashfusion", "events": ["run.completed", "run.failed"],
                        "description": "Deploy notifications"}),
            text={400: "Invalid field, or the URL is refused (scheme, private address, unresolvable host)",
                  404: "A pipeline in pipeline_ids is unknown or outside the key's scope"})},
        "/functions/listWebhooks": {"get": op(
            "listWebhooks", "List webhook endpoints",
            {"description": "The endpoints the caller may see",
             "content": _json(_obj(["success", "webhooks"], success=BOOLEAN,
                                   webhooks={"type": "array", "items": {"$ref": "#/components/schemas/Webhook"}}))},
            (401, 403, 429, 500), read=True)},
        "/functions/updateWebhook": {"post": op(
            "updateWebhook", "Change a webhook endpoint",
            {"description": "The endpoint after the change", "content": _json(webhook_answer)},
            body=_body(_obj(["id"], id=ID, url=STRING, events=events, pipeline_ids=pipelines,
                            description=description, enabled={"type": "boolean", "description":
                                                              "true re-enables an endpoint disabled after failures"}),
                       {"id": "wh_3xYz", "enabled": True}))},
        "/functions/deleteWebhook": {"post": op(
            "deleteWebhook", "Delete a webhook endpoint (its pending deliveries fail)",
            {"description": "Deleted", "content": _json(_obj(["success", "id"], success=BOOLEAN, id=STRING))},
            body=id_body)},
        "/functions/rotateWebhookSecret": {"post": op(
            "rotateWebhookSecret", "New signing secret; the old one also signs for 24 h",
            {"description": "The new secret (shown once)",
             "content": _json(_obj(["success", "id", "secret", "previous_secret_expires_at"], success=BOOLEAN,
                                   id=STRING, secret=STRING, previous_secret_expires_at=TIME))},
            body=id_body)},
        "/functions/testWebhook": {"post": op(
            "testWebhook", "Send a ping event to one endpoint",
            {"description": "Queued", "content": _json(_obj(["success", "event_id", "delivery_id"], success=BOOLEAN,
                                                             event_id=STRING, delivery_id=STRING))},
            body=id_body)},
        "/functions/sendWebhook": {"post": op(
            "sendWebhook", "Send Webhook Notification",
            {"description": "The event, and one queued delivery per subscribed endpoint",
             "content": _json(_obj(["success", "event_id", "deliveries"], success=BOOLEAN, event_id=STRING,
                                   deliveries={"type": "array", "items": _obj(["id", "webhook_id"], id=STRING,
                                                                              webhook_id=STRING)}),
                              SEND_WEBHOOK_ANSWER_EXAMPLE)},
            description="Trigger webhook notifications for pipeline events. " + desc + " Receivers get the "
                        "WebhookPayload structure, signed with HMAC-SHA256 in X-FlashFusion-Signature (see the "
                        "pipelineEvent webhook).",
            body=_body(_obj(["event_type", "pipeline_id", "payload"], event_type=EVENT_NAMES,
                            pipeline_id={"type": "string", "minLength": 1, "maxLength": 64},
                            payload={"type": "object", "description": "Sent as the payload's data"}),
                       SEND_WEBHOOK_EXAMPLE),
            text={404: "Unknown pipeline, or outside the key's scope",
                  429: "The caller's API key, or a subscribed endpoint's webhook rate limit (100 events/minute), "
                       "is exhausted; nothing was sent"})},
        "/functions/listDeliveries": {"get": op(
            "listDeliveries", "An endpoint's delivery log, newest first",
            {"description": "A page of deliveries, each with its attempts",
             "content": _json(_obj(["success", "deliveries", "next_cursor"], success=BOOLEAN,
                                   deliveries={"type": "array", "items": {"$ref": "#/components/schemas/Delivery"}},
                                   next_cursor=NULLABLE_STRING))},
            (400, 401, 403, 404, 429, 500), read=True,
            parameters=[_query("webhook_id", "The webhook's id", required=True,
                               schema={"type": "string", "minLength": 1, "maxLength": 40}),
                        _query("status", "Only deliveries in this state",
                               schema={"type": "string", "enum": ["pending", "succeeded", "failed"]}),
                        _query("limit", "Page size (default 50)",
                               schema={"type": "integer", "minimum": 1, "maximum": 200}),
                        _query("cursor", "next_cursor of the previous page",
                               schema={"type": "string", "minLength": 1, "maxLength": 40})],
            text={400: "Invalid query parameter, or a cursor from another endpoint"})},
        "/functions/redeliver": {"post": op(
            "redeliver", "Send one delivery again (a new delivery of the same event)",
            {"description": "Queued", "content": _json(_obj(["success", "delivery_id", "event_id"], success=BOOLEAN,
                                                             delivery_id=STRING, event_id=STRING))},
            body=_body(_obj(["delivery_id"], delivery_id=ID,
                            id={**STRING, "description": "Accepted instead of delivery_id"}),
                       {"delivery_id": "dlv_9kL1"}),
            text={404: "Unknown delivery, or its endpoint is outside the caller's view"})},
        "/functions/replayWebhooks": {"post": op(
            "replayWebhooks", "Send again every delivery of an endpoint since a time",
            {"description": "How many deliveries were queued (paced by the endpoint's rate limit)",
             "content": _json(_obj(["success", "webhook_id", "deliveries"], success=BOOLEAN, webhook_id=STRING,
                                   deliveries={"type": "integer", "minimum": 0}))},
            body=_body(_obj(["webhook_id", "since"], webhook_id=ID,
                            id={**STRING, "description": "Accepted instead of webhook_id"},
                            since={"type": "string", "description": "ISO 8601 with a time zone"},
                            failed_only={"type": "boolean", "description": "Only deliveries that failed"}),
                       {"webhook_id": "wh_3xYz", "since": "2025-11-21T10:30:00Z", "failed_only": True}))},
    }


def _service_paths() -> dict[str, Any]:
    tag = "Service"
    return {
        "/healthz": {
            "get": _op("healthz", "Liveness", PUBLIC,
                       {"description": "Alive", "content": _json(_obj(["success", "status"], success=BOOLEAN,
                                                                      status={"type": "string", "enum": ["ok"]}),
                                                                 {"success": True, "status": "ok"})},
                       (500,), tag=tag),
            "head": _op("healthzHead", "Liveness, as GET without a body", PUBLIC, {"description": "Alive"}, (),
                        tag=tag),
        },
        "/readyz": {
            "get": _op("readyz", "Readiness", PUBLIC,
                       {"description": "Ready (status ready), or serving with some pipelines degraded (status "
                                       "degraded)",
                        "content": _json({"$ref": "#/components/schemas/Readiness"})},
                       (500,), tag=tag,
                       description="503 only when the database is unreachable, behind on migrations or migrated by "
                                   "a newer release. Each pipeline's provider check is reported under pipelines (to "
                                   "an administrator's session only) without failing readiness."),
            "head": _op("readyzHead", "Readiness, as GET without a body", PUBLIC,
                        {"description": "Ready or degraded (503 when not ready)"}, (), tag=tag),
        },
        "/openapi.json": {"get": _op(
            "openapi", "This document", PUBLIC,
            {"description": "The OpenAPI 3.1 document",
             "content": _json(_obj(["openapi", "info", "paths"], openapi=STRING, info={"type": "object"},
                                   paths={"type": "object"}))},
            (500,), tag=tag)},
    }


# Where one answer's ids feed the next call (also what schemathesis' stateful phase follows).
LINKS = {
    ("/api/trigger-pipeline", "post"): {
        "getStatus": {"operationId": "getStatus", "parameters": {"run_id": "$response.body#/run_id"}},
        "cancelRun": {"operationId": "cancelRun", "requestBody": {"run_id": "$response.body#/run_id"}},
    },
    ("/functions/createWebhook", "post"): {
        **{name: {"operationId": name, "requestBody": {"id": "$response.body#/id"}}
           for name in ("updateWebhook", "rotateWebhookSecret", "testWebhook", "deleteWebhook")},
        "listDeliveries": {"operationId": "listDeliveries", "parameters": {"webhook_id": "$response.body#/id"}},
        "replayWebhooks": {"operationId": "replayWebhooks",
                           "requestBody": {"webhook_id": "$response.body#/id", "since": "2000-01-01T00:00:00Z"}},
    },
    ("/functions/createAPIKey", "post"): {
        name: {"operationId": name, "requestBody": {"id": "$response.body#/id"}}
        for name in ("rotateAPIKey", "revokeAPIKey")
    },
    ("/functions/testWebhook", "post"): {
        "redeliver": {"operationId": "redeliver", "requestBody": {"delivery_id": "$response.body#/delivery_id"}},
    },
}


def _provider_hook_paths() -> dict[str, Any]:
    """``POST /hooks/{provider}``: provider webhooks in (see README "Provider webhooks in")."""
    error = _json(ERROR)
    return {"/hooks/{provider}": {"post": {
        "operationId": "providerHook", "tags": ["Service"], "security": [],
        "summary": "Receive a provider's webhook (GitHub, GitLab)",
        "description": "Authenticated by the provider's signature (GitHub X-Hub-Signature-256; GitLab "
                       "X-Gitlab-Token and, with a signing token, webhook-signature), not by an API key. "
                       "The delivery is stored and applied by the worker; a delivery id seen before is "
                       "applied once. Unknown events are acknowledged and ignored.",
        "parameters": [{"name": "provider", "in": "path", "required": True, "schema": STRING,
                        "description": "a [providers.NAME] table with webhook_secret_env"}],
        "requestBody": {"required": True, "content": _json({"type": "object"})},
        "responses": {
            "202": {"description": "Accepted (status accepted, duplicate or ignored)", "headers": _headers(False, 202),
                    "content": _json(_obj(["success", "status"], success={"type": "boolean"}, status=STRING))},
            **{str(code): {"description": text, "headers": _headers(False, code), "content": error}
               for code, text in ((401, "Missing or wrong signature; nothing stored"), (404, "No such provider"),
                                  (413, "Body larger than 1 MiB"))},
        },
    }}}


def document() -> dict[str, Any]:
    paths = {**_pipeline_paths(), **_access_paths(), **_webhook_paths(), **_service_paths(),
             **_provider_hook_paths()}
    for (path, method), links in LINKS.items():
        paths[path][method]["responses"]["200"]["links"] = links
    paths["/readyz"]["head"]["responses"]["503"] = {"description": "Not ready", "headers": _headers(False, 503)}
    paths["/readyz"]["get"]["responses"]["503"] = {
        "description": "Not ready: database unreachable or migrations pending",
        "headers": _headers(False, 503), "content": _json({"$ref": "#/components/schemas/Readiness"})}
    return {
        "openapi": "3.1.0",
        "info": {"title": "FlashFusion CI/CD API", "version": "0.1.0", "description": DESCRIPTION},
        "tags": [{"name": "Pipelines"}, {"name": "Access"}, {"name": "Webhooks"}, {"name": "Service"}],
        "components": {
            "headers": copy.deepcopy(HEADERS),
            "securitySchemes": {
                "ApiKey": {"type": "apiKey", "in": "header", "name": API_KEY_HEADER,
                           "description": "ffai_... with per-endpoint permissions and a pipeline scope"},
                "SessionCookie": {"type": "apiKey", "in": "cookie", "name": COOKIE,
                                  "description": "Set by POST /functions/login"},
                "CsrfToken": {"type": "apiKey", "in": "header", "name": CSRF_HEADER,
                              "description": "The csrf_token from login; required with the session cookie on "
                                             "state-changing (non-GET) calls"},
            },
            "schemas": {
                "Error": {"type": "object", "required": ["error", "message"],
                          "properties": {"error": STRING, "message": STRING},
                          "example": {"error": "Invalid API key format", "message": "API keys must start with ffai_"}},
                "Run": RUN,
                "Step": STEP,
                "User": USER,
                "ApiKeyInfo": API_KEY_INFO,
                "AuditEvent": AUDIT_EVENT,
                "Webhook": WEBHOOK,
                "Delivery": DELIVERY,
                "WebhookPayload": WEBHOOK_PAYLOAD,
                "Readiness": READINESS,
            },
        },
        "paths": paths,
        "webhooks": {"pipelineEvent": {"post": {
            "summary": "What a webhook endpoint receives",
            "description": "POSTed to each subscribed endpoint. Verify X-FlashFusion-Signature: the hex "
                           "HMAC-SHA256 of the raw body with the endpoint's secret. Standard Webhooks headers "
                           "(webhook-id, webhook-timestamp, webhook-signature) are sent too.",
            "parameters": [
                {"name": "X-FlashFusion-Signature", "in": "header", "required": True, "schema": STRING},
                {"name": "X-FlashFusion-Event", "in": "header", "required": True, "schema": STRING,
                 "example": "run.completed"},
            ],
            "requestBody": {"required": True, "content": _json({"$ref": "#/components/schemas/WebhookPayload"},
                                                               WEBHOOK_PAYLOAD_EXAMPLE)},
            "responses": {"200": {"description": "Any 2xx acknowledges the delivery; anything else is retried"}},
        }}},
    }
