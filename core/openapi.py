"""The OpenAPI 3.1 description of the API, served at ``/openapi.json``.

Kept beside the resources it describes; a schemathesis run in the test suite holds the
live app to it.
"""

from __future__ import annotations

from typing import Any

from flashfusion.core.resources.pipelines import (
    INPUT_NAME_PATTERN, MAX_INPUT_VALUE, MAX_INPUTS, REF_PATTERN,
)

ERROR = {"$ref": "#/components/schemas/Error"}
STRING = {"type": "string"}
NULLABLE_STRING = {"type": ["string", "null"]}


def _errors(*codes: int) -> dict[str, Any]:
    text = {400: "Bad request: invalid JSON, a missing or invalid field (named in the message)",
            401: "Missing, malformed, unknown, revoked or expired API key",
            403: "The API key lacks the permission this endpoint needs",
            404: "Unknown run, pipeline or route, or one outside the key's pipeline scope",
            405: "Method not allowed", 409: "An earlier request with this Idempotency-Key is still in progress",
            413: "Body larger than 64 KiB", 415: "Body is not JSON",
            422: "Upstream refused the dispatch, or an Idempotency-Key was reused with another body",
            429: "Rate limit exceeded (see Retry-After)", 500: "Internal error (no details; quote X-Request-ID)",
            502: "The provider failed or refused our credentials", 504: "The provider did not answer in time"}
    return {str(c): {"description": text[c], "content": {"application/json": {"schema": ERROR}}} for c in codes}


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


def _json(schema: dict, example: Any = None) -> dict:
    body: dict[str, Any] = {"schema": schema}
    if example is not None:
        body["example"] = example
    return {"application/json": body}


def _query(name: str, description: str, required: bool = False, schema: dict | None = None) -> dict:
    return {"name": name, "in": "query", "required": required, "description": description,
            "schema": schema or {"type": "string", "minLength": 1, "maxLength": 64}}


def document() -> dict[str, Any]:
    secured = [{"ApiKey": []}]
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
            "success": {"type": "boolean"}, "run_id": STRING, "status": {"type": "string", "enum": ["running", "success", "failed"]},
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
    return {
        "openapi": "3.1.0",
        "info": {"title": "FlashFusion CI/CD API", "version": "0.1.0",
                 "description": "Trigger pipelines and read their status over GitHub Actions, GitLab CI and local runs."},
        "components": {
            "securitySchemes": {"ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error", "message"],
                          "properties": {"error": STRING, "message": STRING},
                          "example": {"error": "Invalid API key format", "message": "API keys must start with ffai_"}},
                "Run": RUN,
                "Step": STEP,
            },
        },
        "paths": {
            "/api/trigger-pipeline": {"post": {
                "summary": "Trigger Pipeline Run", "operationId": "triggerPipeline", "security": secured,
                "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                                "description": "Returns the same run for 24 h when repeated"}],
                "requestBody": {"required": True, "content": _json(trigger_body, {"pipeline_id": "abc123"})},
                "responses": {"200": {"description": "Run created", "content": _json(trigger_answer, {
                    "success": True, "run_id": "run_456", "status": "running", "workflow_id": "deploy.yml"})},
                    **_errors(400, 401, 403, 404, 409, 413, 415, 422, 429, 500, 502, 504)},
            }},
            "/api/get-status": {"get": {
                "summary": "Get Pipeline Status", "operationId": "getStatus", "security": secured,
                "parameters": [
                    _query("run_id", "Pipeline run identifier", required=True),
                    _query("wait", "Long-poll: answer when the run changes, at most this many seconds",
                           schema={"type": "integer", "minimum": 0, "maximum": 60}),
                    _query("version", "The run version last seen (for wait)",
                           schema={"type": "integer", "minimum": 0, "maximum": 2147483647}),
                ],
                "responses": {"200": {"description": "The run", "content": _json({
                    "type": "object", "required": ["success", "run"],
                    "properties": {"success": {"type": "boolean"}, "run": {"$ref": "#/components/schemas/Run"}}},
                    {"success": True, "run": RUN_EXAMPLE})},
                    **_errors(400, 401, 403, 404, 429, 500)},
            }},
            "/api/get-config": {"get": {
                "summary": "Get Pipeline Configuration", "operationId": "getConfig", "security": secured,
                "parameters": [_query("pipeline_id", "Pipeline identifier", required=True)],
                "responses": {"200": {"description": "The pipeline", "content": _json(config_answer, {
                    "success": True, "config": {"id": "abc123", "name": "Web", "provider": "github",
                                                "project_type": "nextjs", "repository_name": "owner/repo",
                                                "branch": "main", "triggers": {"push": ["main"]},
                                                "build_command": "npm run build",
                                                "quality_gates": {"max_duration_seconds": 600}}})},
                    **_errors(400, 401, 403, 404, 429, 500)},
            }},
            "/api/runs": {"get": {
                "summary": "List runs, newest first", "operationId": "listRuns", "security": secured,
                "parameters": [
                    _query("pipeline_id", "Only this pipeline"),
                    _query("status", "Only runs with this status",
                           schema={"type": "string", "enum": ["running", "success", "failed"]}),
                    _query("limit", "Page size", schema={"type": "integer", "minimum": 1, "maximum": 100}),
                    _query("cursor", "next_cursor of the previous page",
                           schema={"type": "string", "minLength": 1, "maxLength": 200}),
                ],
                "responses": {"200": {"description": "A page of runs", "content": _json({
                    "type": "object", "required": ["success", "runs", "next_cursor"],
                    "properties": {"success": {"type": "boolean"},
                                   "runs": {"type": "array", "items": {"$ref": "#/components/schemas/Run"}},
                                   "next_cursor": NULLABLE_STRING}})},
                    **_errors(400, 401, 403, 404, 429, 500)},
            }},
            "/api/cancel-run": {"post": {
                "summary": "Cancel a run", "operationId": "cancelRun", "security": secured,
                "requestBody": {"required": True, "content": _json({
                    "type": "object", "required": ["run_id"],
                    "properties": {"run_id": {"type": "string", "minLength": 1, "maxLength": 64}}},
                    {"run_id": "run_456"})},
                "responses": {"200": {"description": "Cancellation requested", "content": _json({
                    "type": "object", "required": ["success", "run"],
                    "properties": {"success": {"type": "boolean"}, "run": {"$ref": "#/components/schemas/Run"}}})},
                    **_errors(400, 401, 403, 404, 413, 415, 429, 500)},
            }},
            "/healthz": {"get": {"summary": "Liveness", "operationId": "healthz", "security": [],
                                 "responses": {"200": {"description": "Alive", "content": _json({"type": "object"})}}}},
            "/readyz": {"get": {"summary": "Readiness", "operationId": "readyz", "security": [],
                                "responses": {"200": {"description": "Ready", "content": _json({"type": "object"})},
                                              "503": {"description": "Not ready", "content": _json({"type": "object"})}}}},
        },
    }
