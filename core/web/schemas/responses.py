"""The answers of the API, declared once as msgspec Structs: the shapes the services build
(runs, webhooks and access views, re-exported here) and the pipeline API's own answers. The
resources build these Structs and /openapi.json describes them (``jsonschema.components``)."""

from __future__ import annotations

from typing import Any, Literal

from msgspec import Struct

from flashfusion.core.access.views import ApiKeyInfo, AuditEvent, User
from flashfusion.core.runs.views import Run, Step
from flashfusion.core.webhooks.views import Attempt, Delivery, Webhook
from flashfusion.plugins.types import RUN_STATUSES


class Answer(Struct, kw_only=True):
    """What every successful answer says first."""

    success: bool


class TriggerPipelineAnswer(Answer, kw_only=True):
    run_id: str
    status: Literal[RUN_STATUSES]  # type: ignore[valid-type]
    workflow_id: str
    phase: str
    conclusion: str | None
    upstream_run_id: str | None
    html_url: str | None


class RunAnswer(Answer, kw_only=True):
    run: Run


class RunsPage(Answer, kw_only=True):
    runs: list[Run]
    next_cursor: str | None


class PipelineStepConfig(Struct, kw_only=True):
    name: str
    run: str


class PipelineConfig(Struct, kw_only=True):
    id: str
    name: str
    provider: str
    project_type: str
    repository_name: str
    branch: str
    triggers: dict[str, Any]
    build_command: str
    quality_gates: dict[str, Any]
    steps: list[PipelineStepConfig]
    timeout_seconds: int
    workflow: str | None


class ConfigAnswer(Answer, kw_only=True):
    config: PipelineConfig


RESPONSES: tuple[type[Struct], ...] = (
    Run,
    Step,
    User,
    ApiKeyInfo,
    AuditEvent,
    Webhook,
    Delivery,
    Attempt,
    TriggerPipelineAnswer,
    RunAnswer,
    RunsPage,
    ConfigAnswer,
)
