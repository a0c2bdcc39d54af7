"""A ``workflow_job`` hook updates that job's steps from the hook's own body (no request to
GitHub), keeps the other jobs' steps, and a late event never moves a finished job back."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from flashfusion.plugins import RunRef, StepResult
from flashfusion.providers.github.events import job_snapshot, parse


def job_body(status: str, conclusion: str | None, steps: list[tuple[str, str, str | None]]) -> bytes:
    return json.dumps({"repository": {"full_name": "acme/app"}, "workflow_job": {
        "id": 7, "run_id": 42, "name": "build", "status": status, "conclusion": conclusion,
        "started_at": "2026-12-06T10:00:00Z", "completed_at": "2026-12-06T10:01:00Z" if conclusion else None,
        "html_url": "https://github.com/acme/app/actions/runs/42/job/7",
        "steps": [{"number": n, "name": name, "status": st, "conclusion": c,
                   "started_at": "2026-12-06T10:00:00Z", "completed_at": None if st != "completed" else
                   "2026-12-06T10:00:30Z"} for n, (name, st, c) in enumerate(steps, start=1)]}}).encode()


def run_with(steps: tuple[StepResult, ...]) -> RunRef:
    return RunRef(id="run_1", pipeline_id="gh", ref="main", inputs={}, upstream_id="42",
                  created_at=datetime(2026, 12, 6, tzinfo=UTC), steps=steps)


def test_a_job_hook_replaces_that_jobs_steps_and_keeps_the_others():
    other = StepResult(name="test / unit", status="pending", stage="test")
    earlier = StepResult(name="build", status="pending", stage="build")
    event = parse("workflow_job", job_body("completed", "success", [("compile", "completed", "success"),
                                                                     ("package", "completed", "success")]))
    assert event is not None and event.upstream_id == "42"
    snap = job_snapshot(run_with((earlier, other)), event.data["job"])
    assert snap is not None and (snap.status, snap.phase) == ("running", "in_progress")
    assert [(s.name, s.status) for s in snap.steps] == [
        ("build / compile", "success"), ("build / package", "success"), ("test / unit", "pending")]


def test_a_late_in_progress_hook_leaves_a_finished_job_alone():
    done = (StepResult(name="build / compile", status="success", stage="build"),)
    event = parse("workflow_job", job_body("in_progress", None, [("compile", "in_progress", None)]))
    assert job_snapshot(run_with(done), event.data["job"]) is None
