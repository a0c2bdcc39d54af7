"""The building blocks of the OpenAPI document: security requirements, error answers,
headers, the helpers that write one operation, and the schemas of the answers."""

from __future__ import annotations

from typing import Any

from flashfusion.core.access.permissions import PERMISSIONS
from flashfusion.core.webhooks.outbox import EVENT_TYPES

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


def json_content(schema: dict, example: Any = None) -> dict:
    body: dict[str, Any] = {"schema": schema}
    if example is not None:
        body["example"] = example
    return {"application/json": body}


def obj(required: list[str], **properties: Any) -> dict:
    return {"type": "object", "required": required, "properties": properties}


def query_param(name: str, description: str, required: bool = False, schema: dict | None = None) -> dict:
    return {"name": name, "in": "query", "required": required, "description": description,
            "schema": schema or {"type": "string", "minLength": 1, "maxLength": 64}}


HEADERS = {**REQUEST_ID, **RATE_LIMIT, **RETRY_AFTER,
           "Retry-After-Optional": OPTIONAL_RETRY_AFTER["Retry-After"]}


def header_ref(name: str) -> dict:
    return {"$ref": f"#/components/headers/{name}"}


def headers_for(rate_limited: bool, status: int) -> dict:
    """The headers of one answer, as references to ``components.headers``."""
    headers = {"X-Request-ID": header_ref("X-Request-ID")}
    if rate_limited:
        headers.update({name: header_ref(name) for name in RATE_LIMIT})
    if status == 429:
        headers["Retry-After"] = header_ref("Retry-After")
    elif status in (502, 503, 504):
        headers["Retry-After"] = header_ref("Retry-After-Optional")
    return headers


def responses(ok: dict, codes: tuple[int, ...], *, rate_limited: bool, text: dict[int, str] | None = None,
               ok_headers: dict | None = None) -> dict:
    """A 200 answer plus the Error answers ``codes``; every answer names its headers."""
    text = {**ERROR_TEXT, **(text or {})}
    out = {"200": {**ok, "headers": {**headers_for(rate_limited, 200), **(ok_headers or {})}}}
    for code in codes:
        out[str(code)] = {"description": text[code], "headers": headers_for(rate_limited, code),
                          "content": json_content(ERROR)}
    return out


def request_body(schema: dict, example: Any) -> dict:
    return {"required": True, "content": json_content(schema, example)}


def operation(op_id: str, summary: str, security: list, ok: dict, codes: tuple[int, ...], *, tag: str,
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
    op["responses"] = responses(ok, codes, rate_limited=rate_limited, text=text, ok_headers=ok_headers)
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
        "trigger": {"type": "object", "required": ["kind"],
                    "description": "What started the run: kind api (key_name, key_preview), dashboard (user), "
                                   "push (commit, pusher, branch), schedule (cron, due), upstream, or unknown",
                    "properties": {"kind": {"type": "string",
                                            "enum": ["api", "dashboard", "push", "schedule", "upstream", "unknown"]}}},
        "outputs": {"type": "object", "additionalProperties": STRING,
                    "description": "What the run's steps wrote as outputs (at most 64, 64 KiB in all)"},
        "artifacts": {"type": "array", "items": obj(
            ["name", "size", "expires_at", "download_url"], name=STRING, size={"type": ["integer", "null"]},
            expires_at=NULLABLE_STRING,
            download_url={**STRING, "description": "GET it on this gateway with the same API key"})},
        "quality_gates": {"type": "array", "description": "The pipeline's gates, judged when the run finished",
                          "items": obj(["name", "expected", "actual", "passed"], name=STRING, expected={},
                                       actual={}, passed={"type": "boolean"},
                                       reason={**STRING, "description": "Why it failed"})},
        "group_id": {**NULLABLE_STRING, "description": "The group of a run started by trigger-pipelines"},
        "version": {"type": "integer"},
    },
}

RUN_EXAMPLE = {"id": "run_456", "status": "success", "duration_seconds": 120,
               "steps": [{"name": "build", "status": "success", "duration_seconds": 95.2}],
               "deployment_url": "https://demo.example.com"}

USER = obj(["id", "username", "is_admin", "created_at", "disabled"],
            id=STRING, username=STRING, is_admin=BOOLEAN, created_at=NULLABLE_TIME, disabled=BOOLEAN)

API_KEY_INFO = obj(
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

AUDIT_EVENT = obj(["id", "at", "actor", "action", "target", "client_addr", "key_preview", "detail"],
                   id=STRING, at=NULLABLE_TIME, actor=STRING, action=STRING, target=NULLABLE_STRING,
                   client_addr=NULLABLE_STRING, key_preview=NULLABLE_STRING, detail={"type": ["object", "null"]})

EVENT_NAMES = {"type": "string", "enum": list(EVENT_TYPES)}

WEBHOOK = obj(
    ["id", "url", "description", "events", "pipeline_ids", "enabled", "disabled_at", "disabled_reason",
     "failing_since", "last_success_at", "previous_secret_expires_at", "created_by", "created_at", "updated_at"],
    id=STRING, url=STRING, description=STRING,
    events={"type": "array", "items": EVENT_NAMES},
    pipeline_ids={"type": "array", "items": STRING, "description": "Empty: every pipeline"},
    enabled=BOOLEAN, disabled_at=NULLABLE_TIME, disabled_reason=NULLABLE_STRING, failing_since=NULLABLE_TIME,
    last_success_at=NULLABLE_TIME, previous_secret_expires_at=NULLABLE_TIME, created_by=NULLABLE_STRING,
    created_at=NULLABLE_TIME, updated_at=NULLABLE_TIME,
)

ATTEMPT = obj(["attempt", "at", "status_code", "latency_ms", "error", "response_excerpt"],
               attempt={"type": "integer"}, at=NULLABLE_TIME, status_code={"type": ["integer", "null"]},
               latency_ms={"type": ["integer", "null"]}, error=NULLABLE_STRING, response_excerpt=NULLABLE_STRING)

DELIVERY = obj(
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
WEBHOOK_PAYLOAD = {**obj(["event", "timestamp", "pipeline_id", "data"],
                          event=STRING, timestamp=TIME, pipeline_id=NULLABLE_STRING, data={"type": "object"}),
                   "example": WEBHOOK_PAYLOAD_EXAMPLE}

PIPELINE_CHECK = obj(
    ["provider", "status"],
    provider=STRING,
    status={"type": "string", "enum": ["ok", "degraded", "checking"],
            "description": "checking: not checked yet since this process started"},
    problems={"type": "array", "items": STRING, "description": "Only when degraded"},
)
READINESS = {
    **obj(["success", "status"],
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
