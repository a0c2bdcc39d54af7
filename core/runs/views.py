"""A run as API clients see it (get-status, runs, cancel-run), declared once: the API builds
these Structs (``serialize.run_view``) and /openapi.json describes them (``Run``, ``Step``).
New fields go at the end, with a default when older answers may lack them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from flashfusion.plugins.types import PHASES, RUN_STATUSES, STEP_STATUSES

TRIGGER_KINDS = ("api", "dashboard", "push", "schedule", "upstream", "unknown")


class Step(Struct, kw_only=True):
    """One step of a run. The runs keep their steps as stored (written from the provider's
    ``StepInfo`` by ``transitions``), so a stored step may lack the optional fields."""

    name: str
    status: Literal[STEP_STATUSES]  # type: ignore[valid-type]
    conclusion: str | None = None
    stage: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    duration_seconds: float | None = None
    exit_code: int | None = None
    url: str | None = None
    log_tail: str | None = None


#: The stored step dicts, passed through as they are (their key order is the answer's); the
#: document describes each as a ``Step``. (``list[Any]``: msgspec merges ``extra_json_schema``
#: into the generated items schema, and ``Any``'s is empty.)
Steps = Annotated[list[Any], Meta(extra_json_schema={"items": {"$ref": "#/components/schemas/Step"}})]
Trigger = Annotated[
    dict[str, Any],
    Meta(
        description="What started the run: kind api (key_name, key_preview), dashboard (user), push (commit, pusher, "
        "branch), schedule (cron, due), upstream (upstream_run_id, commit when known), or unknown",
        extra_json_schema={
            "required": ["kind"],
            "properties": {"kind": {"type": "string", "enum": list(TRIGGER_KINDS)}},
        },
    ),
]


class ArtifactLink(Struct, kw_only=True):
    name: str
    size: int | None
    expires_at: str | None
    download_url: Annotated[str, Meta(description="GET it on this gateway with the same API key")]


class QualityGate(Struct, kw_only=True):
    name: str
    expected: Any
    actual: Any
    passed: bool
    reason: Annotated[str, Meta(description="Why it failed")] | UnsetType = UNSET


class Run(Struct, kw_only=True):
    id: str
    pipeline_id: str
    status: Literal[RUN_STATUSES]  # type: ignore[valid-type]
    conclusion: str | None
    phase: Literal[PHASES]  # type: ignore[valid-type]
    provider: str
    provider_status: str | None
    branch: str
    workflow_id: str | None
    upstream_run_id: str | None
    html_url: str | None
    deployment_url: str | None
    duration_seconds: int | None
    failed_step: str | None
    error: str | None
    cancel_requested: bool
    steps: Steps
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    updated_at: str | None
    trigger: Trigger
    outputs: Annotated[
        dict[str, str], Meta(description="What the run's steps wrote as outputs (at most 64, 64 KiB in all)")
    ] = {}
    artifacts: list[ArtifactLink] = []
    quality_gates: Annotated[
        list[QualityGate], Meta(description="The pipeline's gates, judged when the run finished")
    ] = []
    group_id: Annotated[str | None, Meta(description="The group of a run started by trigger-pipelines")] = None
    #: get-status only: the run's change counter, for ``wait`` + ``version``.
    version: int | UnsetType = UNSET


class RunEventData(Struct, kw_only=True):
    """The ``data`` of a run event, as the webhook payload carries it."""

    run_id: str
    status: str
    conclusion: str | None
    branch: str
    duration: str | None
    duration_seconds: int | None
    html_url: str | None
    trigger: dict[str, Any]
    deployment_url: str | UnsetType = UNSET
    failed_step: str | UnsetType = UNSET
    quality_gates: list[QualityGate] | UnsetType = UNSET
