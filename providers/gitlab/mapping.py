"""GitLab pipeline and job payloads -> FlashFusion snapshots and steps."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from flashfusion.plugins import RunSnapshot, StepResult

log = logging.getLogger(__name__)

# pipeline status -> (status, phase, conclusion)
PIPELINE_STATUSES: dict[str, tuple[str, str, str | None]] = {
    "created": ("running", "queued", None),
    "waiting_for_resource": ("running", "queued", None),
    "preparing": ("running", "queued", None),
    "pending": ("running", "queued", None),
    "scheduled": ("running", "queued", None),
    "running": ("running", "in_progress", None),
    # A pipeline blocked on a manual job waits for a person; it has not failed.
    "manual": ("running", "in_progress", None),
    "canceling": ("running", "in_progress", None),
    "success": ("success", "completed", "success"),
    "failed": ("failed", "completed", "failure"),
    "canceled": ("failed", "completed", "cancelled"),
    # Every job was skipped (e.g. by rules): nothing failed.
    "skipped": ("success", "completed", "skipped"),
}

# job status -> (step status, conclusion)
JOB_STATUSES: dict[str, tuple[str, str | None]] = {
    "created": ("pending", None),
    "waiting_for_resource": ("pending", None),
    "preparing": ("pending", None),
    "pending": ("pending", None),
    "scheduled": ("pending", None),
    "manual": ("pending", "action_required"),
    "running": ("running", None),
    "canceling": ("running", None),
    "success": ("success", "success"),
    "failed": ("failed", "failure"),
    "canceled": ("cancelled", "cancelled"),
    "skipped": ("skipped", "skipped"),
}

TERMINAL = frozenset(k for k, (status, _, _) in PIPELINE_STATUSES.items() if status != "running")


def pipeline_state(status: str) -> tuple[str, str, str | None]:
    """Map a raw pipeline status; an unknown one is treated as still running."""
    known = PIPELINE_STATUSES.get(status)
    if known is None:
        log.warning("gitlab: unknown pipeline status %r, treating it as running", status)
        return ("running", "in_progress", None)
    return known


def parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def job_step(job: Mapping[str, Any]) -> StepResult:
    status, conclusion = JOB_STATUSES.get(job.get("status", ""), ("running", None))
    if status == "failed" and job.get("allow_failure"):
        conclusion = "allowed_failure"
    duration = job.get("duration")
    started, finished = parse_time(job.get("started_at")), parse_time(job.get("finished_at"))
    if duration is None and started and finished:
        duration = (finished - started).total_seconds()
    return StepResult(
        name=str(job.get("name", "")),
        stage=job.get("stage"),
        status=status,
        conclusion=conclusion,
        started_at=started,
        completed_at=finished,
        duration_seconds=None if duration is None else float(duration),
        url=job.get("web_url"),
    )


def job_steps(jobs: Iterable[Mapping[str, Any]]) -> tuple[StepResult, ...]:
    """One step per job name and stage, in pipeline order.

    A retried job appears once: the latest attempt (highest id) supplies the data, the
    first attempt its place in the list, so retries do not reshuffle the steps.
    """
    first: dict[tuple[Any, Any], int] = {}
    latest: dict[tuple[Any, Any], Mapping[str, Any]] = {}
    for job in jobs:
        key = (job.get("stage"), job.get("name"))
        job_id = int(job.get("id", 0))
        first[key] = min(first.get(key, job_id), job_id)
        if key not in latest or job_id > int(latest[key].get("id", 0)):
            latest[key] = job
    return tuple(job_step(latest[key]) for key in sorted(first, key=first.__getitem__))


def snapshot(
    run_id: str,
    pipeline: Mapping[str, Any],
    steps: tuple[StepResult, ...] | None,
    deployment_url: str | None,
    state: Mapping[str, Any],
) -> RunSnapshot:
    raw = str(pipeline.get("status", ""))
    status, phase, conclusion = pipeline_state(raw)
    return RunSnapshot(
        run_id=run_id,
        status=status,
        phase=phase,
        conclusion=conclusion,
        provider_status=raw,
        started_at=parse_time(pipeline.get("started_at")),
        finished_at=parse_time(pipeline.get("finished_at")) if status != "running" else None,
        steps=steps,
        deployment_url=deployment_url,
        html_url=pipeline.get("web_url"),
        upstream_id=str(pipeline["id"]) if pipeline.get("id") is not None else None,
        state=dict(state),
    )
