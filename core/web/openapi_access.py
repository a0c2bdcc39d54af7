"""The OpenAPI paths of access control: login, logout, the current user, API keys and the
audit log (session or API key, as each operation says)."""

from __future__ import annotations

from typing import Any

from flashfusion.core.access.sessions import COOKIE
from flashfusion.core.web import openapi_parts as parts
from flashfusion.core.web.authentication import CSRF_HEADER
from flashfusion.core.web.schemas import requests as bodies
from flashfusion.core.web.schemas.jsonschema import ref
from flashfusion.core.web.schemas.responses import ApiKeyInfo, AuditEvent, User


def access_paths() -> dict[str, Any]:
    tag = "Access"
    key_id_body = parts.request_body(ref(bodies.KeyIdRequest), {"id": "key_id"})
    session_write = (400, 401, 403, 413, 415, 500)
    return {
        "/functions/login": {
            "post": parts.operation(
                "login",
                "Log in (people)",
                parts.PUBLIC,
                parts.answer(
                    f"Logged in: the {COOKIE} cookie is set (HttpOnly, SameSite=Lax)",
                    parts.success(
                        ["user", "csrf_token", "expires_at"],
                        user=ref(User),
                        csrf_token={**parts.STRING, "description": f"Send as {CSRF_HEADER}"},
                        expires_at=parts.TIME,
                    ),
                ),
                (400, 401, 413, 415, 429, 500),
                tag=tag,
                description="Throttled per account and per client address; unknown users and wrong passwords get "
                "the same 401.",
                body=parts.request_body(
                    ref(bodies.LoginRequest), {"username": "alice", "password": "correct horse battery staple"}
                ),
                text={401: "Wrong username or password, or a cross-site login", 429: "Too many failed logins"},
                ok_headers={
                    "Set-Cookie": {
                        "description": f"The {COOKIE} session cookie",
                        "required": True,
                        "schema": parts.STRING,
                    }
                },
            )
        },
        "/functions/logout": {
            "post": parts.operation(
                "logout",
                "Log out (ends the session)",
                parts.SESSION_WRITE,
                parts.answer("Logged out", parts.success([]), {"success": True}),
                (401, 403, 500),
                tag=tag,
            )
        },
        "/functions/createAPIKey": {
            "post": parts.operation(
                "createAPIKey",
                "Create API Key",
                parts.SESSION_WRITE,
                parts.answer(
                    "The key; plaintext_key is shown only once",
                    parts.success(
                        ["id", "name", "plaintext_key", "key_preview"],
                        id=parts.STRING,
                        name=parts.STRING,
                        plaintext_key={"type": "string", "pattern": "^ffai_"},
                        key_preview=parts.STRING,
                    ),
                    parts.CREATE_KEY_ANSWER_EXAMPLE,
                ),
                session_write,
                tag=tag,
                description="Authentication: user session (not API key). Save the plaintext_key immediately: it is "
                "only shown once.",
                body=parts.request_body(ref(bodies.CreateAPIKeyRequest), parts.CREATE_KEY_EXAMPLE),
                text={400: "Invalid name, permissions, pipeline_ids (unknown pipeline) or expires_in_days"},
            )
        },
        "/functions/listAPIKeys": {
            "get": parts.operation(
                "listAPIKeys",
                "List API keys (never the keys themselves)",
                parts.SESSION_READ,
                parts.answer(
                    "The caller's keys; an administrator's listing has every key and its owner",
                    parts.success(["keys"], keys=parts.array(ref(ApiKeyInfo))),
                ),
                (401, 500),
                tag=tag,
            )
        },
        "/functions/revokeAPIKey": {
            "post": parts.operation(
                "revokeAPIKey",
                "Revoke an API key at once",
                parts.SESSION_WRITE,
                parts.answer("Revoked", parts.success(["key"], key=ref(ApiKeyInfo))),
                session_write[:3] + (404,) + session_write[3:],
                tag=tag,
                body=key_id_body,
                text={404: "No such key among the caller's keys"},
            )
        },
        "/functions/rotateAPIKey": {
            "post": parts.operation(
                "rotateAPIKey",
                "Rotate an API key's secret",
                parts.SESSION_WRITE,
                parts.answer(
                    "The new secret (shown once); the old one works until previous_key_expires_at",
                    parts.success(
                        ["id", "name", "plaintext_key", "key_preview", "previous_key_expires_at"],
                        id=parts.STRING,
                        name=parts.STRING,
                        plaintext_key={"type": "string", "pattern": "^ffai_"},
                        key_preview=parts.STRING,
                        previous_key_expires_at=parts.TIME,
                    ),
                ),
                session_write[:3] + (404,) + session_write[3:],
                tag=tag,
                body=key_id_body,
                text={400: "Invalid id, or the key is revoked", 404: "No such key among the caller's keys"},
            )
        },
        "/functions/listAuditEvents": {
            "get": parts.operation(
                "listAuditEvents",
                "The audit log, newest first (administrators)",
                parts.SESSION_READ,
                parts.answer(
                    "Audit events",
                    parts.success(["events"], events=parts.array(ref(AuditEvent))),
                ),
                (400, 401, 403, 500),
                tag=tag,
                parameters=[
                    parts.query_param(
                        "limit",
                        "At most this many events (default 100)",
                        schema={"type": "integer", "minimum": 1, "maximum": 500},
                    ),
                    parts.query_param("action", "Only this action, e.g. key.created"),
                ],
                text={403: "Only administrators may read the audit log"},
            )
        },
    }
