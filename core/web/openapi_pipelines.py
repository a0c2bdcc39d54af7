"""The OpenAPI paths of the pipeline API: trigger, status, config, runs, artifacts, groups,
cancel. Request bodies are the schemas of core/web/schemas, by reference."""

from __future__ import annotations

from typing import Any

from flashfusion.core.web import openapi_parts as parts
from flashfusion.core.web.schemas import requests as bodies
from flashfusion.core.web.schemas.jsonschema import ref
from flashfusion.core.web.schemas.responses import ConfigAnswer, Run, RunAnswer, RunsPage, TriggerPipelineAnswer

RUN_STATUS = {"type": "string", "enum": ["running", "success", "failed"]}
RUN_ID = parts.query_param("run_id", "Pipeline run identifier", required=True)
PIPELINE_ID = parts.query_param("pipeline_id", "Pipeline identifier", required=True)
GROUP_MEMBER = parts.obj(
    ["run_id", "pipeline_id", "status"],
    run_id=parts.STRING,
    pipeline_id=parts.STRING,
    status=RUN_STATUS,
    phase=parts.STRING,
    conclusion=parts.NULLABLE_STRING,
    upstream_run_id=parts.NULLABLE_STRING,
    html_url=parts.NULLABLE_STRING,
    error={**parts.STRING, "description": "Why upstream refused this member"},
)


def idempotency_key(what: str) -> dict[str, Any]:
    """The optional Idempotency-Key header of a trigger: ``what`` the repeated request returns."""
    return {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "schema": {"type": "string", "minLength": 1, "maxLength": 255},
        "description": f"Returns the same {what} for 24 h when repeated",
    }


def pipeline_paths() -> dict[str, Any]:
    read = (400, 401, 403, 404, 429, 500)

    def op(op_id: str, summary: str, ok: dict, codes: tuple[int, ...] = read, **kw: Any) -> dict:
        return parts.operation(op_id, summary, parts.API_KEY, ok, codes, tag="Pipelines", **kw)

    return {
        "/api/trigger-pipeline": {
            "post": op(
                "triggerPipeline",
                "Trigger Pipeline Run",
                parts.answer(
                    "Run created",
                    ref(TriggerPipelineAnswer),
                    {"success": True, "run_id": "run_456", "status": "running", "workflow_id": "deploy.yml"},
                ),
                (400, 401, 403, 404, 409, 413, 415, 422, 429, 500, 502, 504),
                description="Required permission: trigger_pipeline.",
                parameters=[idempotency_key("run")],
                body=parts.request_body(ref(bodies.TriggerPipelineRequest), {"pipeline_id": "abc123"}),
                text={
                    409: "An earlier request with this Idempotency-Key is still in progress",
                    422: "Upstream refused the dispatch, or an Idempotency-Key was reused with another body",
                },
            )
        },
        "/api/get-status": {
            "get": op(
                "getStatus",
                "Get Pipeline Status",
                parts.answer("The run", ref(RunAnswer), {"success": True, "run": parts.RUN_EXAMPLE}),
                description="Required permission: read_runs.",
                parameters=[
                    RUN_ID,
                    parts.query_param(
                        "wait",
                        "Long-poll: answer when the run changes, at most this many seconds",
                        schema={"type": "integer", "minimum": 0, "maximum": 60},
                    ),
                    parts.query_param(
                        "version",
                        "The run version last seen (for wait)",
                        schema={"type": "integer", "minimum": 0, "maximum": 2147483647},
                    ),
                ],
            )
        },
        "/api/get-config": {
            "get": op(
                "getConfig",
                "Get Pipeline Configuration",
                parts.answer(
                    "The pipeline",
                    ref(ConfigAnswer),
                    {
                        "success": True,
                        "config": {
                            "id": "abc123",
                            "name": "Web",
                            "provider": "github",
                            "project_type": "nextjs",
                            "repository_name": "owner/repo",
                            "branch": "main",
                            "triggers": {"push": ["main"]},
                            "build_command": "npm run build",
                            "quality_gates": {"max_duration_seconds": 600},
                        },
                    },
                ),
                description="Required permission: read_config.",
                parameters=[PIPELINE_ID],
            )
        },
        "/api/runs": {
            "get": op(
                "listRuns",
                "List runs, newest first",
                parts.answer("A page of runs", ref(RunsPage)),
                description="Required permission: read_runs.",
                parameters=[
                    parts.query_param("pipeline_id", "Only this pipeline"),
                    parts.query_param(
                        "status",
                        "Only runs with this status",
                        schema=RUN_STATUS,
                    ),
                    parts.query_param("limit", "Page size", schema={"type": "integer", "minimum": 1, "maximum": 100}),
                    parts.query_param(
                        "cursor",
                        "next_cursor of the previous page",
                        schema={"type": "string", "minLength": 1, "maxLength": 200},
                    ),
                ],
            )
        },
        "/api/get-artifact": {
            "get": op(
                "getArtifact",
                "Download a run's artifact",
                {
                    "description": "The artifact's bytes, streamed from upstream (GitHub and GitLab send a zip archive)",
                    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
                },
                (400, 401, 403, 404, 429, 500, 502, 504),
                description="Required permission: read_runs. The download_url of an artifact in get-status.",
                parameters=[
                    RUN_ID,
                    parts.query_param("name", "The artifact's name", required=True),
                ],
                text={404: "Unknown run or artifact, outside the caller's pipeline scope, or expired upstream"},
            )
        },
        "/api/trigger-pipelines": {
            "post": op(
                "triggerPipelines",
                "Trigger several pipeline runs as a group",
                parts.answer(
                    "The group and its runs (a member upstream refused is failed, with error)",
                    parts.success(
                        ["group_id", "runs"],
                        group_id=parts.STRING,
                        runs=parts.array(GROUP_MEMBER),
                    ),
                    {
                        "success": True,
                        "group_id": "grp_1",
                        "runs": [
                            {"run_id": "run_1", "pipeline_id": "web", "status": "running"},
                            {"run_id": "run_2", "pipeline_id": "api", "status": "running"},
                        ],
                    },
                ),
                (400, 401, 403, 404, 409, 413, 415, 422, 429, 500),
                description="Required permission: trigger_pipeline, and every pipeline in the key's scope; every "
                "member is checked before any run starts.",
                parameters=[idempotency_key("group")],
                body=parts.request_body(
                    ref(bodies.TriggerPipelinesRequest),
                    {"runs": [{"pipeline_id": "web"}, {"pipeline_id": "api", "branch": "main"}]},
                ),
            )
        },
        "/api/get-group": {
            "get": op(
                "getGroup",
                "Get a group of runs",
                parts.answer(
                    "The group: running until all its runs end, then failed if any failed, else success",
                    parts.success(
                        ["group"],
                        group=parts.obj(
                            ["id", "status", "failed_runs", "runs", "created_at", "completed_at"],
                            id=parts.STRING,
                            status=RUN_STATUS,
                            failed_runs=parts.array(parts.STRING),
                            runs={
                                "type": "array",
                                "items": ref(Run),
                                "description": "The runs the caller's key may see",
                            },
                            created_at=parts.NULLABLE_STRING,
                            completed_at=parts.NULLABLE_STRING,
                        ),
                    ),
                ),
                description="Required permission: read_runs.",
                parameters=[parts.query_param("group_id", "The group_id trigger-pipelines returned", required=True)],
            )
        },
        "/api/cancel-run": {
            "post": op(
                "cancelRun",
                "Cancel a run",
                parts.answer("Cancellation requested", ref(RunAnswer)),
                (400, 401, 403, 404, 413, 415, 429, 500),
                description="Required permission: trigger_pipeline.",
                body=parts.request_body(ref(bodies.CancelRunRequest), {"run_id": "run_456"}),
            )
        },
    }
