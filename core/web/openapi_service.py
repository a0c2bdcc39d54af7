"""The OpenAPI paths the gateway serves for operators and upstream: health, readiness,
metrics, the document itself, and the provider webhooks coming in."""

from __future__ import annotations

from typing import Any

from flashfusion.core.web import openapi_parts as parts


def service_paths() -> dict[str, Any]:
    tag = "Service"
    return {
        "/healthz": {
            "get": parts.operation(
                "healthz",
                "Liveness",
                parts.PUBLIC,
                parts.answer(
                    "Alive",
                    parts.success(["status"], status={"type": "string", "enum": ["ok"]}),
                    {"success": True, "status": "ok"},
                ),
                (500,),
                tag=tag,
            ),
            "head": parts.operation(
                "healthzHead", "Liveness, as GET without a body", parts.PUBLIC, {"description": "Alive"}, (), tag=tag
            ),
        },
        "/readyz": {
            "get": parts.operation(
                "readyz",
                "Readiness",
                parts.PUBLIC,
                parts.answer(
                    "Ready (status ready), or serving with some pipelines degraded (status degraded)",
                    {"$ref": "#/components/schemas/Readiness"},
                ),
                (500,),
                tag=tag,
                description="503 only when the database is unreachable, behind on migrations or migrated by "
                "a newer release. Each pipeline's provider check is reported under pipelines (to "
                "an administrator's session only) without failing readiness.",
            ),
            "head": parts.operation(
                "readyzHead",
                "Readiness, as GET without a body",
                parts.PUBLIC,
                {"description": "Ready or degraded (503 when not ready)"},
                (),
                tag=tag,
            ),
        },
        "/openapi.json": {
            "get": parts.operation(
                "openapi",
                "This document",
                parts.PUBLIC,
                parts.answer(
                    "The OpenAPI 3.1 document",
                    parts.obj(
                        ["openapi", "info", "paths"],
                        openapi=parts.STRING,
                        info={"type": "object"},
                        paths={"type": "object"},
                    ),
                ),
                (500,),
                tag=tag,
            )
        },
        "/metrics": {
            "get": parts.operation(
                "metrics",
                "Prometheus metrics",
                parts.PUBLIC,
                {
                    "description": "The Prometheus text exposition (format 0.0.4)",
                    "content": {"text/plain; version=0.0.4; charset=utf-8": {"schema": parts.STRING}},
                },
                (401, 403, 500),
                tag=tag,
                description="With [metrics] token_env set, send Authorization: Bearer <token>; without it, only "
                "loopback clients that came directly (no proxy header) are answered.",
            )
        },
    }


def hook_paths() -> dict[str, Any]:
    """``POST /hooks/{provider}``: provider webhooks in (see docs/provider-webhooks.md)."""
    error = parts.json_content(parts.ERROR)
    return {
        "/hooks/{provider}": {
            "post": {
                "operationId": "providerHook",
                "tags": ["Service"],
                "security": [],
                "summary": "Receive a provider's webhook (GitHub, GitLab)",
                "description": "Authenticated by the provider's signature (GitHub X-Hub-Signature-256; GitLab "
                "X-Gitlab-Token and, with a signing token, webhook-signature), not by an API key. "
                "The delivery is stored and applied by the worker; a delivery id seen before is "
                "applied once. Unknown events are acknowledged and ignored.",
                "parameters": [
                    {
                        "name": "provider",
                        "in": "path",
                        "required": True,
                        "schema": parts.STRING,
                        "description": "a [providers.NAME] table with webhook_secret_env",
                    }
                ],
                "requestBody": {"required": True, "content": parts.json_content({"type": "object"})},
                "responses": {
                    "202": {
                        "description": "Accepted (status accepted, duplicate or ignored)",
                        "headers": parts.headers_for(False, 202),
                        "content": parts.json_content(
                            parts.obj(["success", "status"], success={"type": "boolean"}, status=parts.STRING)
                        ),
                    },
                    **{
                        str(code): {"description": text, "headers": parts.headers_for(False, code), "content": error}
                        for code, text in (
                            (401, "Missing or wrong signature; nothing stored"),
                            (404, "No such provider"),
                            (413, "Body larger than 1 MiB"),
                        )
                    },
                },
            }
        }
    }
