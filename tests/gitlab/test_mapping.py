"""Every GitLab pipeline and job status maps to the run model."""

from __future__ import annotations

from typing import Any

import pytest
from testkit.fake_gitlab import FakeGitLab, JobSpec

from flashfusion.plugins import PHASES, RUN_STATUSES
from flashfusion.plugins.types import STEP_STATUSES
from flashfusion.providers.gitlab import mapping

PIPELINE_CASES = [
    ("created", "running", "queued", None),
    ("waiting_for_resource", "running", "queued", None),
    ("preparing", "running", "queued", None),
    ("pending", "running", "queued", None),
    ("scheduled", "running", "queued", None),
    ("running", "running", "in_progress", None),
    ("manual", "running", "in_progress", None),
    ("canceling", "running", "in_progress", None),
    ("success", "success", "completed", "success"),
    ("failed", "failed", "completed", "failure"),
    ("canceled", "failed", "completed", "cancelled"),
    ("skipped", "success", "completed", "skipped"),
]


def test_the_table_covers_every_documented_status() -> None:
    assert {c[0] for c in PIPELINE_CASES} == set(mapping.PIPELINE_STATUSES)
    for status, phase, _ in mapping.PIPELINE_STATUSES.values():
        assert status in RUN_STATUSES and phase in PHASES
    assert {s for s, _ in mapping.JOB_STATUSES.values()} <= set(STEP_STATUSES)


@pytest.mark.parametrize("raw, status, phase, conclusion", PIPELINE_CASES)
def test_pipeline_status_through_the_fake(
    kit: Any, fake: FakeGitLab, raw: str, status: str, phase: str, conclusion: str | None
) -> None:
    fake.add_project("acme/web", jobs=(JobSpec("build", "build"),))
    core = kit.core("acme/web")
    run = core.dispatch()
    fake.set_status(int(run.upstream_id), raw)
    [snap] = core.poll()
    assert (snap.status, snap.phase, snap.conclusion, snap.provider_status) == (status, phase, conclusion, raw)
    assert snap.terminal == (phase == "completed")
    assert (snap.finished_at is not None) == snap.terminal


def test_unknown_status_is_running_not_failed() -> None:
    snap = mapping.snapshot("run_1", {"id": 1, "status": "brand_new_state"}, None, None, {})
    assert (snap.status, snap.phase, snap.provider_status) == ("running", "in_progress", "brand_new_state")


def job(id: int, name: str, stage: str, status: str, **extra: Any) -> dict[str, Any]:
    return {"id": id, "name": name, "stage": stage, "status": status, "web_url": f"http://gl/jobs/{id}", **extra}


def test_job_fields_map_to_steps() -> None:
    [step] = mapping.job_steps(
        [
            job(
                8,
                "rubocop",
                "test",
                "failed",
                allow_failure=False,
                started_at="2015-12-24T17:54:30.733Z",
                finished_at="2015-12-24T17:54:31.198Z",
                duration=0.465,
            )
        ]
    )
    assert (step.name, step.stage, step.status, step.conclusion) == ("rubocop", "test", "failed", "failure")
    assert step.duration_seconds == 0.465 and step.url == "http://gl/jobs/8"
    assert step.started_at.isoformat() == "2015-12-24T17:54:30.733000+00:00"


def test_running_job_has_no_duration_and_manual_job_needs_action() -> None:
    running, manual = mapping.job_steps(
        [
            job(1, "a", "build", "running", started_at="2026-01-01T00:00:00Z", duration=None),
            job(2, "b", "deploy", "manual"),
        ]
    )
    assert (running.status, running.duration_seconds, running.completed_at) == ("running", None, None)
    assert (manual.status, manual.conclusion) == ("pending", "action_required")


def test_retries_keep_the_latest_attempt_in_the_first_attempts_place() -> None:
    steps = mapping.job_steps(
        [  # GitLab lists newest first
            job(9, "build", "build", "success"),
            job(5, "deploy", "deploy", "created"),
            job(4, "test", "test", "success"),
            job(3, "build", "build", "failed"),
        ]
    )
    assert [(s.name, s.status) for s in steps] == [("build", "success"), ("test", "success"), ("deploy", "pending")]
    assert steps[0].url.endswith("/9")
