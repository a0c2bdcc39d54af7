"""The building blocks of the OpenAPI document: security requirements, error answers,
headers, the helpers that write one operation, and the schemas not declared as Structs
(the webhook payload, readiness). The answers' schemas come from ``schemas/responses``."""

from __future__ import annotations

from typing import Any

ERROR = {"$ref": "#/components/schemas/Error"}
STRING = {"type": "string"}
NULLABLE_STRING = {"type": ["string", "null"]}
TIME = {"type": "string", "description": "ISO 8601, UTC (ends with Z)"}
NULLABLE_TIME = {"type": ["string", "null"], "description": "ISO 8601, UTC (ends with Z)"}
BOOLEAN = {"type": "boolean"}
ID = {"type": "string", "minLength": 1}

# Security requirements (alternatives are OR-ed). A session's state-changing call must also
# carry the CSRF token that login returned.
API_KEY: list[dict[str, list[str]]] = [{"ApiKey": []}]
SESSION_READ: list[dict[str, list[str]]] = [{"SessionCookie": []}]
SESSION_WRITE: list[dict[str, list[str]]] = [{"SessionCookie": [], "CsrfToken": []}]
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

REQUEST_ID = {
    "X-Request-ID": {
        "description": "The request's id (the caller's own X-Request-ID when sent, else a new one); quote it in reports",
        "required": True,
        "schema": {"type": "string", "minLength": 1, "maxLength": 128},
    }
}
RATE_LIMIT = {
    "X-RateLimit-Limit": {
        "description": "Requests allowed per window (API key calls)",
        "schema": {"type": "integer", "minimum": 0},
    },
    "X-RateLimit-Remaining": {
        "description": "Requests left in the window",
        "schema": {"type": "integer", "minimum": 0},
    },
    "X-RateLimit-Reset": {
        "description": "Unix time when the window is full again",
        "schema": {"type": "integer", "minimum": 0},
    },
    "RateLimit-Policy": {"description": "IETF draft RateLimit-Policy", "schema": STRING},
    "RateLimit": {"description": "IETF draft RateLimit", "schema": STRING},
}
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    }
}
OPTIONAL_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying, when known",
        "schema": {"type": "integer", "minimum": 1},
    }
}


def json_content(schema: dict, example: Any = None) -> dict:
    body: dict[str, Any] = {"schema": schema}
    if example is not None:
        body["example"] = example
    return {"application/json": body}


def obj(required: list[str], **properties: Any) -> dict:
    return {"type": "object", "required": required, "properties": properties}


def array(items: dict) -> dict:
    return {"type": "array", "items": items}


def success(required: list[str], **properties: Any) -> dict:
    """The schema of an answer ``{"success": true, ...}``: ``required`` names the other keys
    it always has."""
    return obj(["success", *required], success=BOOLEAN, **properties)


def answer(description: str, schema: dict, example: Any = None) -> dict:
    """An operation's success answer: what it is, and its JSON body."""
    return {"description": description, "content": json_content(schema, example)}


def query_param(name: str, description: str, required: bool = False, schema: dict | None = None) -> dict:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema or {"type": "string", "minLength": 1, "maxLength": 64},
    }


HEADERS = {**REQUEST_ID, **RATE_LIMIT, **RETRY_AFTER, "Retry-After-Optional": OPTIONAL_RETRY_AFTER["Retry-After"]}


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


def responses(
    ok: dict,
    codes: tuple[int, ...],
    *,
    rate_limited: bool,
    text: dict[int, str] | None = None,
    ok_headers: dict | None = None,
) -> dict:
    """A 200 answer plus the Error answers ``codes``; every answer names its headers."""
    text = {**ERROR_TEXT, **(text or {})}
    out = {"200": {**ok, "headers": {**headers_for(rate_limited, 200), **(ok_headers or {})}}}
    for code in codes:
        out[str(code)] = {
            "description": text[code],
            "headers": headers_for(rate_limited, code),
            "content": json_content(ERROR),
        }
    return out


def request_body(schema: dict, example: Any) -> dict:
    return {"required": True, "content": json_content(schema, example)}


def operation(
    op_id: str,
    summary: str,
    security: list,
    ok: dict,
    codes: tuple[int, ...],
    *,
    tag: str,
    description: str | None = None,
    body: dict | None = None,
    parameters: list | None = None,
    text: dict[int, str] | None = None,
    ok_headers: dict | None = None,
) -> dict:
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


RUN_EXAMPLE = {
    "id": "run_456",
    "status": "success",
    "duration_seconds": 120,
    "steps": [{"name": "build", "status": "success", "duration_seconds": 95.2}],
    "deployment_url": "https://demo.example.com",
}

# The spec's payload structure, as webhook receivers get it.
WEBHOOK_PAYLOAD_EXAMPLE = {
    "event": "run.completed",
    "timestamp": "2025-11-21T10:30:00Z",
    "pipeline_id": "abc123",
    "data": {"run_id": "run_456", "status": "success", "duration": "2m 30s"},
}
WEBHOOK_PAYLOAD = {
    **obj(
        ["event", "timestamp", "pipeline_id", "data"],
        event=STRING,
        timestamp=TIME,
        pipeline_id=NULLABLE_STRING,
        data={"type": "object"},
    ),
    "example": WEBHOOK_PAYLOAD_EXAMPLE,
}

PIPELINE_CHECK = obj(
    ["provider", "status"],
    provider=STRING,
    status={
        "type": "string",
        "enum": ["ok", "degraded", "checking"],
        "description": "checking: not checked yet since this process started",
    },
    problems={"type": "array", "items": STRING, "description": "Only when degraded"},
)
READINESS = {
    **obj(
        ["success", "status"],
        success=BOOLEAN,
        status={
            "type": "string",
            "enum": ["ready", "degraded", "not_ready"],
            "description": "not_ready (503): database unreachable, migrations pending or the schema newer "
            "than this release; degraded (200): a pipeline's provider check found problems. "
            "checks, pipelines and pipelines_checked_at are sent only to an administrator's "
            "session",
        },
        checks={
            "type": "object",
            "required": ["database"],
            "properties": {"database": {"type": "string", "description": "ok, or what is wrong"}},
            "additionalProperties": STRING,
        },
        pipelines={
            "type": "object",
            "additionalProperties": PIPELINE_CHECK,
            "description": "Each configured pipeline's provider check, by pipeline id",
        },
        pipelines_checked_at=NULLABLE_TIME,
    ),
    "example": {
        "success": True,
        "status": "degraded",
        "checks": {"database": "ok"},
        "pipelines": {
            "demo": {"provider": "local", "status": "ok"},
            "web": {
                "provider": "github",
                "status": "degraded",
                "problems": ["workflow deploy.yml not found in owner/repo"],
            },
        },
        "pipelines_checked_at": "2025-11-21T10:30:00Z",
    },
}

CREATE_KEY_EXAMPLE = {
    "name": "Production Deploy Key",
    "permissions": ["trigger_pipeline", "read_runs"],
    "pipeline_ids": ["id1", "id2"],
    "expires_in_days": 90,
}
CREATE_KEY_ANSWER_EXAMPLE = {
    "success": True,
    "id": "key_id",
    "name": "Production Deploy Key",
    "plaintext_key": "ffai_...",
    "key_preview": "...abc123",
}
SEND_WEBHOOK_EXAMPLE = {
    "event_type": "run.completed",
    "pipeline_id": "abc123",
    "payload": {"run_id": "string", "status": "success", "duration": "2m 30s"},
}
SEND_WEBHOOK_ANSWER_EXAMPLE = {
    "success": True,
    "event_id": "evt_7Hq2",
    "deliveries": [{"id": "dlv_9kL1", "webhook_id": "wh_3xYz"}],
}
