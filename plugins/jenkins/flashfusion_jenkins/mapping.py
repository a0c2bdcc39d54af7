"""Jenkins builds and Pipeline stages -> FlashFusion's common run model.

Build ``result`` once ``building`` is false:

    SUCCESS    -> success, conclusion success
    UNSTABLE   -> failed,  conclusion unstable   (tests failed: a quality gate)
    FAILURE    -> failed,  conclusion failure
    ABORTED    -> failed,  conclusion cancelled
    NOT_BUILT  -> success, conclusion skipped    (nothing ran; like GitLab's "skipped")
    other      -> failed,  conclusion unknown    (logged; the raw value stays in provider_status)

``provider_status`` is ``queued`` in the queue, ``building`` while it builds, then the raw result.
Stages (``wfapi/describe``) become steps; a job without stages (freestyle) is one step.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from flashfusion.plugins import RunSnapshot, StepResult

log = logging.getLogger("flashfusion_jenkins")

RESULTS: dict[str, tuple[str, str]] = {
    "SUCCESS": ("success", "success"),
    "UNSTABLE": ("failed", "unstable"),
    "FAILURE": ("failed", "failure"),
    "ABORTED": ("failed", "cancelled"),
    "NOT_BUILT": ("success", "skipped"),
}
# wfapi stage status -> (step status, conclusion)
STAGES: dict[str, tuple[str, str | None]] = {
    "QUEUED": ("pending", None),
    "NOT_EXECUTED": ("skipped", "skipped"),
    "IN_PROGRESS": ("running", None),
    "PAUSED_PENDING_INPUT": ("running", "action_required"),
    "SUCCESS": ("success", "success"),
    "UNSTABLE": ("failed", "unstable"),
    "FAILED": ("failed", "failure"),
    "ABORTED": ("cancelled", "cancelled"),
}


def millis(value: Any) -> datetime | None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        return None
    return datetime.fromtimestamp(value / 1000, UTC)


def run_state(build: Mapping[str, Any]) -> tuple[str, str, str | None, str]:
    """``(status, phase, conclusion, provider_status)`` of a build."""
    if build.get("building") or build.get("result") is None:
        return "running", "in_progress", None, "building"
    raw = str(build["result"])
    known = RESULTS.get(raw)
    if known is None:
        log.warning("jenkins: unknown build result %r, treated as failed", raw)
        return "failed", "completed", "unknown", raw
    return known[0], "completed", known[1], raw


def stage_step(stage: Mapping[str, Any], url: str | None) -> StepResult:
    status, conclusion = STAGES.get(str(stage.get("status")), ("running", None))
    step = StepResult(name=str(stage.get("name", "")), status=status, conclusion=conclusion, url=url)
    done = status not in ("pending", "running")
    return _timed(step, stage.get("startTimeMillis"), stage.get("durationMillis"), done=done)


def build_step(name: str, build: Mapping[str, Any]) -> StepResult:
    """The one step of a build without stages."""
    status, _, conclusion, _ = run_state(build)
    step_status = {"running": "running", "success": "success"}.get(status, "failed")
    if conclusion == "cancelled":
        step_status = "cancelled"
    step = StepResult(name=name, status=step_status, conclusion=conclusion, url=build.get("url"))
    return _timed(step, build.get("timestamp"), build.get("duration"), done=status != "running")


def _timed(step: StepResult, start: Any, duration: Any, *, done: bool) -> StepResult:
    """``step`` with its times from Jenkins' start and duration in epoch milliseconds; the
    duration counts only once the step is ``done`` (until then it is the time so far)."""
    started = millis(start)
    seconds = duration / 1000 if done and isinstance(duration, (int, float)) else None
    completed = millis(start + duration) if started and seconds is not None else None
    return replace(step, started_at=started, completed_at=completed, duration_seconds=seconds)


def snapshot(
    run_id: str, build: Mapping[str, Any], steps: tuple[StepResult, ...], state: Mapping[str, Any]
) -> RunSnapshot:
    status, phase, conclusion, provider_status = run_state(build)
    started = millis(build.get("timestamp"))
    duration = build.get("duration")
    finished = None
    if phase == "completed" and started is not None:
        finished = millis(build["timestamp"] + (duration if isinstance(duration, (int, float)) else 0))
    return RunSnapshot(
        run_id=run_id,
        status=status,
        phase=phase,
        conclusion=conclusion,
        provider_status=provider_status,
        started_at=started,
        finished_at=finished,
        steps=steps,
        html_url=build.get("url"),
        upstream_id=str(build["number"]),
        state=dict(state),
    )
