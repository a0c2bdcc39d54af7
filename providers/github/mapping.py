"""GitHub run, job and step states -> FlashFusion's ``status``/``phase``/``conclusion`` and steps.

Runs (PROVIDER-APIS.md A.3, A.7):

    status requested|queued|pending|waiting   -> running, phase queued
    status in_progress                        -> running, phase in_progress
    status completed + success|neutral|skipped -> success, phase completed
    status completed + anything else          -> failed,  phase completed
      (failure, cancelled, timed_out, action_required, startup_failure, stale, unknown, null)
    any other status                          -> running, phase in_progress (logged)

``conclusion`` is GitHub's own value (``unknown`` when a completed run has none);
``provider_status`` is GitHub's raw ``status``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from flashfusion.plugins import StepResult

log = logging.getLogger("flashfusion.providers.github")

QUEUED_STATUSES = frozenset({"requested", "queued", "pending", "waiting"})
SUCCESS_CONCLUSIONS = frozenset({"success", "neutral", "skipped"})
FAILED_CONCLUSIONS = frozenset({"failure", "cancelled", "timed_out", "action_required", "startup_failure", "stale"})


def run_state(status: str | None, conclusion: str | None) -> tuple[str, str, str | None]:
    """``(status, phase, conclusion)`` for a workflow run."""
    if status == "completed":
        if conclusion in SUCCESS_CONCLUSIONS:
            return "success", "completed", conclusion
        if conclusion not in FAILED_CONCLUSIONS:
            log.warning("github: unknown run conclusion %r, treated as failed", conclusion)
        return "failed", "completed", conclusion or "unknown"
    if status in QUEUED_STATUSES:
        return "running", "queued", None
    if status != "in_progress":
        log.warning("github: unknown run status %r, treated as in progress", status)
    return "running", "in_progress", None


def step_status(status: str | None, conclusion: str | None) -> str:
    """A job's or step's state as one of the plugin interface's ``STEP_STATUSES``."""
    if status == "in_progress":
        return "running"
    if status != "completed":
        return "pending"
    if conclusion in ("success", "neutral"):
        return "success"
    if conclusion in ("skipped", "cancelled"):
        return conclusion
    return "failed"


def utc(value: Any) -> datetime | None:
    """A timezone-aware UTC datetime from PyGithub's datetimes or GitHub's ISO strings."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


def steps_from_jobs(jobs: Iterable[Any]) -> tuple[StepResult, ...]:
    """One ``StepResult`` per job step, named ``"<job> / <step>"`` with the job as ``stage``
    and the job's page as ``url``; a job that has not started (no steps yet) is one entry."""
    out: list[StepResult] = []
    for job in jobs:
        steps = sorted(job.steps or [], key=lambda s: s.number)
        if not steps:
            started = utc(job.started_at) if job.status in ("completed", "in_progress") else None
            out.append(_step(job, job.name, job, started))
        out.extend(_step(job, f"{job.name} / {step.name}", step, utc(step.started_at)) for step in steps)
    return tuple(out)


def _step(job: Any, name: str, source: Any, started: datetime | None) -> StepResult:
    """``source`` (one of ``job``'s steps, or the job itself) as a step of ``job``."""
    completed = utc(source.completed_at)
    return StepResult(
        name=name,
        status=step_status(source.status, source.conclusion),
        conclusion=source.conclusion,
        started_at=started,
        completed_at=completed,
        duration_seconds=seconds_between(started, completed),
        url=job.html_url,
        stage=job.name,
    )
