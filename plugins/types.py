"""The dataclasses that cross the boundary between the core and a provider.

All datetimes are timezone-aware UTC. Providers never see database models: the core hands
them a ``Pipeline`` and ``RunRef``s and stores what comes back in ``Dispatch`` and
``RunSnapshot``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# The spec's three statuses; detail lives in ``conclusion``, ``phase`` and ``provider_status``.
RUN_STATUSES = ("running", "success", "failed")
PHASES = ("queued", "dispatching", "in_progress", "completed")
STEP_STATUSES = ("pending", "running", "success", "failed", "skipped", "cancelled")


@dataclass(frozen=True)
class PipelineStep:
    name: str
    run: str


@dataclass(frozen=True)
class Pipeline:
    """One ``[pipelines.ID]`` block of the configuration.

    ``options`` holds every key the core does not know (e.g. ``workflow`` for GitHub);
    ``provider_settings`` is the provider's ``[providers.NAME]`` table as parsed.
    """

    id: str
    name: str
    provider: str
    repository_name: str
    branch: str = "main"
    project_type: str = ""
    build_command: str = ""
    steps: tuple[PipelineStep, ...] = ()
    triggers: Mapping[str, Any] = field(default_factory=dict)
    quality_gates: Mapping[str, Any] = field(default_factory=dict)
    timeout_seconds: int = 3600
    options: Mapping[str, Any] = field(default_factory=dict)

    def option(self, key: str, default: Any = None) -> Any:
        return self.options.get(key, default)


@dataclass(frozen=True)
class StepResult:
    """One step (a job, or a shell step) of a run."""

    name: str
    status: str = "pending"  # one of STEP_STATUSES
    conclusion: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    duration_seconds: float | None = None
    exit_code: int | None = None
    url: str | None = None
    stage: str | None = None
    log_tail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "status": self.status}
        for key in ("conclusion", "stage", "exit_code", "duration_seconds", "url", "log_tail"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        out["started_at"] = _iso(self.started_at)
        out["completed_at"] = _iso(self.completed_at)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StepResult:
        return cls(
            name=str(data["name"]),
            status=str(data.get("status", "pending")),
            conclusion=data.get("conclusion"),
            started_at=_parse(data.get("started_at")),
            completed_at=_parse(data.get("completed_at")),
            duration_seconds=data.get("duration_seconds"),
            exit_code=data.get("exit_code"),
            url=data.get("url"),
            stage=data.get("stage"),
            log_tail=data.get("log_tail"),
        )


@dataclass(frozen=True)
class RunRef:
    """What a provider is told about a run it dispatched earlier.

    ``state`` is the provider's own JSON-serializable memo (returned in ``Dispatch.state``
    or ``RunSnapshot.state``), kept by the core across worker restarts.
    """

    id: str
    pipeline_id: str
    ref: str
    inputs: Mapping[str, str]
    created_at: datetime
    upstream_id: str | None = None
    workflow_id: str | None = None
    provider_status: str | None = None
    steps: tuple[StepResult, ...] = ()
    state: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Dispatch:
    """What ``Provider.dispatch`` returns. ``upstream_id`` may be ``None`` when the
    provider learns it only later (the run then stays in phase ``dispatching``);
    ``provider_status`` is upstream's own word for the new run, when the answer carries one."""

    workflow_id: str
    upstream_id: str | None = None
    api_url: str | None = None
    html_url: str | None = None
    provider_status: str | None = None
    state: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunSnapshot:
    """The provider's view of one run, as ``Provider.poll`` returns it.

    ``status`` is one of ``running|success|failed``; ``phase`` one of ``PHASES``;
    ``conclusion`` e.g. success, failure, cancelled, timed_out, skipped, dispatch_lost.
    Fields left ``None`` keep the value the core already has.
    """

    run_id: str
    status: str
    phase: str
    conclusion: str | None = None
    provider_status: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    steps: tuple[StepResult, ...] | None = None
    deployment_url: str | None = None
    html_url: str | None = None
    upstream_id: str | None = None
    state: Mapping[str, Any] | None = None

    @property
    def terminal(self) -> bool:
        return self.status in ("success", "failed")

    @classmethod
    def failed(cls, run_id: str, conclusion: str, provider_status: str | None = None, **fields: Any) -> RunSnapshot:
        """A run that ended without success, and why (``conclusion``: ``cancelled``,
        ``dispatch_lost`` for a run upstream never started, ``not_found`` ...): status ``failed``
        with phase ``completed``, as they must go together. ``fields`` sets any other field
        (``finished_at``, ``state`` ...)."""
        return cls(run_id, "failed", "completed", conclusion=conclusion, provider_status=provider_status, **fields)


@dataclass(frozen=True)
class Artifact:
    """A file a run produced. ``locator`` is the provider's own handle for fetching it again
    (an archive URL, a job id, a path); the core stores it and never shows it to clients."""

    name: str
    size: int | None = None
    expires_at: datetime | None = None
    locator: str = ""


@dataclass(frozen=True)
class RepositoryLinks:
    """Where a pipeline's repository lives on the provider's web host, for people's links
    (the dashboard's commit and branch). The core appends ``commit_path/SHA`` and
    ``tree_path/REF`` to ``web_url``, quoting both."""

    web_url: str  # e.g. https://github.com/owner/repo
    commit_path: str = "commit"
    tree_path: str = "tree"


@dataclass(frozen=True)
class RunResults:
    """What a finished run gave back: named string ``outputs`` and ``artifacts``. The core
    keeps at most 64 outputs and 64 KiB of them in all; the rest are dropped, and a gate
    on a dropped output fails as missing."""

    outputs: Mapping[str, str] = field(default_factory=dict)
    artifacts: tuple[Artifact, ...] = ()


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.isoformat().replace("+00:00", "Z")


def _parse(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


@dataclass(frozen=True)
class Budget:
    """What upstream said is left of the provider's API allowance, from its last answer:
    ``remaining`` requests of ``limit`` in the current window, which starts afresh at
    ``reset_at``. ``limit`` and ``reset_at`` are ``None`` when upstream does not say."""

    remaining: int
    limit: int | None = None
    reset_at: datetime | None = None
