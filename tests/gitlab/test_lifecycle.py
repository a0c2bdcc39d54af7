"""Dispatch -> poll -> terminal state against the fake GitLab, through the provider only."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from testkit.fake_gitlab import FakeGitLab, JobSpec

REPO = "acme/platform/web"


def outcome(snap: Any) -> tuple[str, str, str | None, str]:
    """A run's status, phase and conclusion with GitLab's own status beside them."""
    return (snap.status, snap.phase, snap.conclusion, snap.provider_status)


@pytest.fixture
def core(kit: Any, fake: FakeGitLab) -> Any:
    project = fake.add_project(REPO, refs=("main", "release"))
    fake.add_environment(project, "production", "https://web.acme.example")
    return kit.core(REPO)


def test_dispatch_returns_the_pipeline_at_once_with_inputs_as_variables(core: Any, fake: FakeGitLab) -> None:
    fake.reset_counters()
    run = core.dispatch({"VERSION": "1.2.3", "DRY_RUN": "false"})

    upstream = fake.pipeline(int(run.upstream_id))
    assert fake.counts == {"pipeline.create": 1}
    assert upstream.variables == {"VERSION": "1.2.3", "DRY_RUN": "false"} and upstream.inputs == {}
    assert upstream.source == "api" and upstream.ref == "main"
    assert run.workflow_id == str(upstream.project.id)
    assert run.state["status"] == "pending"
    d = core.provider.dispatch(core.pipeline, run, "release", {})
    assert d.html_url == f"{fake.url}/{REPO}/-/pipelines/{d.upstream_id}"
    assert d.api_url == f"{fake.url}/api/v4/projects/{upstream.project.id}/pipelines/{d.upstream_id}"
    assert fake.pipeline(int(d.upstream_id)).ref == "release"


def test_pipeline_runs_through_every_phase_with_steps_durations_and_deployment(core: Any, fake: FakeGitLab) -> None:
    run = core.dispatch()
    pid = int(run.upstream_id)

    assert core.poll() == []  # pending since dispatch: nothing new to report

    fake.set_status(pid, "pending")  # touched (e.g. runner picked up) but still queued
    [snap] = core.poll()
    assert (snap.status, snap.phase, snap.provider_status) == ("running", "queued", "pending")
    assert [(s.stage, s.name, s.status) for s in snap.steps] == [
        ("build", "build", "pending"),
        ("test", "unit", "pending"),
        ("test", "lint", "pending"),
        ("deploy", "deploy", "pending"),
    ]

    fake.advance(pid)
    [snap] = core.poll()
    assert (snap.status, snap.phase, snap.provider_status) == ("running", "in_progress", "running")
    assert snap.started_at is not None and snap.finished_at is None
    assert (
        snap.steps[0].status == "running"
        and snap.steps[0].url == f"{fake.url}/{REPO}/-/jobs/{fake.job_id(pid, 'build')}"
    )

    fake.tick(41)
    fake.advance(pid)  # build done, tests running
    [snap] = core.poll()
    build = snap.steps[0]
    assert build.status == "success" and build.duration_seconds == pytest.approx(42.0)
    assert build.completed_at - build.started_at == timedelta(seconds=42)
    assert [s.status for s in snap.steps[1:3]] == ["running", "running"]
    assert snap.deployment_url is None

    fake.advance(pid)  # deploy running
    fake.advance(pid)  # deploy done -> success
    [snap] = core.poll()
    assert outcome(snap) == ("success", "completed", "success", "success")
    assert snap.finished_at is not None and snap.finished_at > snap.started_at
    assert all(s.status == "success" and s.duration_seconds is not None for s in snap.steps)
    assert snap.deployment_url == "https://web.acme.example"
    assert snap.html_url == f"{fake.url}/{REPO}/-/pipelines/{pid}"
    assert core.poll() == []  # terminal runs are no longer polled by the core


def test_failed_job_fails_the_run_and_skips_later_stages(kit: Any, fake: FakeGitLab) -> None:
    fake.add_project(
        REPO,
        jobs=(
            JobSpec("build", "build"),
            JobSpec("unit", "test", outcome="failed"),
            JobSpec("flaky", "test", outcome="failed", allow_failure=True),
            JobSpec("deploy", "deploy", environment="production"),
        ),
    )
    core = kit.core(REPO)
    run = core.dispatch()
    pid = int(run.upstream_id)
    for _ in range(3):
        fake.advance(pid)
    [snap] = core.poll()
    assert outcome(snap) == ("failed", "completed", "failure", "failed")
    by_name = {s.name: s for s in snap.steps}
    assert (by_name["unit"].status, by_name["unit"].conclusion) == ("failed", "failure")
    assert (by_name["flaky"].status, by_name["flaky"].conclusion) == ("failed", "allowed_failure")
    assert by_name["deploy"].status == "skipped"
    assert snap.deployment_url is None


def test_manual_pipeline_is_waiting_not_failed_until_played(kit: Any, fake: FakeGitLab) -> None:
    fake.add_project(
        REPO, jobs=(JobSpec("build", "build"), JobSpec("release", "deploy", when="manual", environment="production"))
    )
    core = kit.core(REPO)
    run = core.dispatch()
    pid = int(run.upstream_id)
    fake.advance(pid)
    fake.advance(pid)
    [snap] = core.poll()
    assert (snap.status, snap.provider_status, snap.conclusion) == ("running", "manual", None)
    assert (snap.steps[-1].status, snap.steps[-1].conclusion) == ("pending", "action_required")

    fake.tick(3600)
    assert core.poll() == []  # still manual, no change: nothing reported, nothing fails
    fake.play(fake.job_id(pid, "release"))
    fake.advance(pid)
    fake.advance(pid)
    [snap] = core.poll()
    assert snap.status == "success"


def test_cancel_uses_the_cancel_endpoint_and_next_poll_reports_cancelled(core: Any, fake: FakeGitLab) -> None:
    run = core.dispatch()
    pid = int(run.upstream_id)
    fake.advance(pid)
    core.poll()
    fake.reset_counters()

    core.provider.cancel(core.pipeline, core.runs[run.id])

    assert fake.counts == {"pipeline.cancel": 1}
    assert fake.requests[-1].path.endswith(f"/pipelines/{pid}/cancel")
    [snap] = core.poll()
    assert outcome(snap) == ("failed", "completed", "cancelled", "canceled")
    assert {s.status for s in snap.steps} == {"cancelled"}


def test_retried_job_is_reported_once_with_its_latest_attempt(kit: Any, core: Any, fake: FakeGitLab) -> None:
    fake.add_project("acme/flaky", jobs=(JobSpec("build", "build"), JobSpec("e2e", "test")))
    core = kit.core("acme/flaky", core.provider)
    run = core.dispatch()
    pid = int(run.upstream_id)
    fake.advance(pid)
    first = fake.job_id(pid, "build")
    fake.set_job(first, "failed")
    fake.set_status(pid, "failed")
    [snap] = core.poll()
    assert snap.status == "failed" and snap.steps[0].status == "failed"

    retry = fake.retry_job(first)
    fake.advance(pid)  # retry runs
    fake.advance(pid)  # retry succeeded, e2e runs
    fake.advance(pid)
    [snap] = core.provider.poll(core.pipeline, [core.runs[run.id]])
    assert [(s.name, s.status) for s in snap.steps] == [("build", "success"), ("e2e", "success")]
    assert snap.steps[0].url.endswith(f"/jobs/{retry}")
    assert snap.status == "success"


def test_trigger_token_dispatch_uses_the_trigger_api(kit: Any, fake: FakeGitLab) -> None:
    project = fake.add_project(REPO)
    fake.add_trigger_token(project, "glptt-trigger-secret")
    env = {"GITLAB_TOKEN": fake.token, "WEB_TRIGGER": "glptt-trigger-secret"}
    core = kit.core(REPO, kit.provider(env=env, trigger_token_env="WEB_TRIGGER"))

    run = core.dispatch({"TARGET": "prod"})

    upstream = fake.pipeline(int(run.upstream_id))
    assert upstream.source == "trigger" and upstream.variables == {"TARGET": "prod"}
    assert fake.requests[-1].route == "pipeline.trigger"
    assert fake.requests[-1].body["token"] == "glptt-trigger-secret"


@pytest.mark.parametrize("trigger", [False, True])
def test_inputs_as_typed_pipeline_inputs(kit: Any, fake: FakeGitLab, trigger: bool) -> None:
    project = fake.add_project(REPO)
    project.declared_inputs = {"environment", "replicas"}
    env = {"GITLAB_TOKEN": fake.token}
    table = {}
    if trigger:
        fake.add_trigger_token(project, "glptt-x")
        env["TRIGGER"] = "glptt-x"
        table["trigger_token_env"] = "TRIGGER"
    core = kit.core(REPO, kit.provider(env=env, **table), inputs_as="inputs")

    run = core.dispatch({"environment": "staging", "replicas": "3"})

    upstream = fake.pipeline(int(run.upstream_id))
    assert upstream.inputs == {"environment": "staging", "replicas": "3"}
    assert upstream.variables == {}


def test_a_pipeline_hook_gives_the_snapshot_polling_gives(core: Any, fake: FakeGitLab) -> None:
    """A Pipeline Hook is applied by reading the pipeline again with the polling code: the
    event's snapshot equals the poll's (and applying it never raises)."""
    import json

    run = core.dispatch()
    pid = int(run.upstream_id)
    fake.advance(pid)
    fake.advance(pid)
    body = json.dumps(fake.hooks.pipeline_body(fake.pipeline(pid))).encode()
    provider = core.provider
    event = provider.parse_event(_delivery("Pipeline Hook"), {"X-Gitlab-Event": "Pipeline Hook"}, body)
    assert event is not None and provider.event_matches(core.pipeline, event)
    [from_event] = provider.event_snapshots(core.pipeline, event, [core.runs[run.id]])
    [from_poll] = core.provider.poll(core.pipeline, [core.runs[run.id]]) or [from_event]
    assert (from_event.status, from_event.phase, [s.status for s in from_event.steps]) == (
        from_poll.status,
        from_poll.phase,
        [s.status for s in from_poll.steps],
    )
    assert from_event.steps[0].status == "success"


def _delivery(event: str) -> Any:
    from flashfusion.plugins.events import InboundDelivery

    return InboundDelivery(delivery_id="d-1", event=event)
