"""GitHub hooks applied through the provider. A ``workflow_job`` hook updates that job's steps
from the hook's own body (no request to GitHub), keeps the other jobs' steps, and a late event
never moves a finished job back. The shortcuts that save requests keep a run's end exactly as
polling shows it: a ``deployment_status`` hook brings the deployment URL, and when it is dropped
or late the lookup at completion still finds it; a completion reads the jobs even when every
job hook was dropped; while hooks arrive a poll reads jobs only for a status no hook reported."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from testkit.fake_github import DEFAULT_TOKEN
from testkit.hooks_in import AppliedHooks
from testkit.receiver import Receiver

from flashfusion.plugins import RunRef, RunSnapshot, StepResult
from flashfusion.providers.github.events import job_snapshot, parse

REPO = "acme/web"
SECRET = "hook-secret-0123456789"
URL = "https://web.acme.example"
JOBS = "GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs"
DEPLOYMENTS = "GET /repos/{owner}/{repo}/deployments"
STATUSES = "GET /repos/{owner}/{repo}/deployments/{deployment_id}/statuses"


def job_body(status: str, conclusion: str | None, steps: list[tuple[str, str, str | None]]) -> bytes:
    return json.dumps(
        {
            "repository": {"full_name": "acme/app"},
            "workflow_job": {
                "id": 7,
                "run_id": 42,
                "name": "build",
                "status": status,
                "conclusion": conclusion,
                "started_at": "2026-12-06T10:00:00Z",
                "completed_at": "2026-12-06T10:01:00Z" if conclusion else None,
                "html_url": "https://github.com/acme/app/actions/runs/42/job/7",
                "steps": [
                    {
                        "number": n,
                        "name": name,
                        "status": st,
                        "conclusion": c,
                        "started_at": "2026-12-06T10:00:00Z",
                        "completed_at": None if st != "completed" else "2026-12-06T10:00:30Z",
                    }
                    for n, (name, st, c) in enumerate(steps, start=1)
                ],
            },
        }
    ).encode()


def run_with(steps: tuple[StepResult, ...]) -> RunRef:
    return RunRef(
        id="run_1",
        pipeline_id="gh",
        ref="main",
        inputs={},
        upstream_id="42",
        created_at=datetime(2026, 12, 6, tzinfo=UTC),
        steps=steps,
    )


def test_a_job_hook_replaces_that_jobs_steps_and_keeps_the_others():
    other = StepResult(name="test / unit", status="pending", stage="test")
    earlier = StepResult(name="build", status="pending", stage="build")
    event = parse(
        "workflow_job",
        job_body("completed", "success", [("compile", "completed", "success"), ("package", "completed", "success")]),
    )
    assert event is not None and event.upstream_id == "42"
    snap = job_snapshot(run_with((earlier, other)), event.data["job"])
    assert snap is not None and (snap.status, snap.phase) == ("running", "in_progress")
    assert [(s.name, s.status) for s in snap.steps] == [
        ("build / compile", "success"),
        ("build / package", "success"),
        ("test / unit", "pending"),
    ]


def test_a_late_in_progress_hook_leaves_a_finished_job_alone():
    done = (StepResult(name="build / compile", status="success", stage="build"),)
    event = parse("workflow_job", job_body("in_progress", None, [("compile", "in_progress", None)]))
    assert job_snapshot(run_with(done), event.data["job"]) is None


@pytest.fixture(scope="module")
def rx() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


@pytest.fixture
def hooked(fake, tracker, rx):
    """``hooked(pipeline=None)``: the fake's hooks applied to a tracker whose provider takes
    them (the tracker is ``.t``)."""

    def build(pipeline=None) -> AppliedHooks:
        t = tracker(pipeline, webhook_secret_env="FF_HOOK", env={"GITHUB_TOKEN": DEFAULT_TOKEN, "FF_HOOK": SECRET})
        hooks = AppliedHooks(fake.hooks, rx, SECRET, t.provider, t.pipeline, t.active, t.apply)
        hooks.t = t
        return hooks

    return build


def polled(tracker, upstream: int) -> RunSnapshot:
    """What polling alone (a provider without hooks) reports for the upstream run now."""
    t = tracker()
    t.track(dataclasses.replace(t.new_ref("polled"), upstream_id=str(upstream)))
    [snap] = t.poll()
    return snap


def same_end(a: RunSnapshot, b: RunSnapshot) -> None:
    assert a.terminal and b.terminal
    assert (a.status, a.conclusion, a.deployment_url, a.steps) == (b.status, b.conclusion, b.deployment_url, b.steps)


def test_a_deployment_status_hook_brings_the_url_and_the_completion_looks_nothing_up(fake, hooked, tracker):
    fake.add_workflow(REPO, "deploy.yml", deploy=("production", URL), jobs=[("build", ["compile", "test"])])
    h = hooked()
    upstream = int(h.t.dispatch("run_1").upstream_id)
    fake.advance(upstream, 2)
    h.apply()
    fake.reset_counters()
    fake.finish(upstream)
    h.apply()
    done = h.t.latest["run_1"]
    assert done.deployment_url == URL and done.state["deployment_url"] == URL
    routes = fake.stats()["counted_by_route"]
    assert routes == {JOBS: 1}  # the final steps; no deployment lookup
    same_end(done, polled(tracker, upstream))


@pytest.mark.parametrize("order", ["dropped", "after the completion"])
def test_without_its_deployment_hook_in_time_a_completion_still_gets_the_url(fake, hooked, tracker, order):
    fake.add_workflow(REPO, "deploy.yml", deploy=("production", URL))
    h = hooked()
    upstream = int(h.t.dispatch("run_1").upstream_id)
    fake.finish(upstream)
    if order == "dropped":
        h.apply(skip=frozenset({"deployment_status"}))
    else:
        h.apply(reverse=True)  # the completion first: the deployment hook finds the run finished
    done = h.t.latest["run_1"]
    assert done.deployment_url == URL
    assert fake.stats()["counted_by_route"].get(STATUSES) == 1
    same_end(done, polled(tracker, upstream))


def test_a_deployment_hook_for_another_environment_gives_no_url(fake, hooked, make_pipeline):
    fake.add_workflow(REPO, "deploy.yml")
    h = hooked(make_pipeline(environment="production"))
    upstream = int(h.t.dispatch("run_1").upstream_id)
    fake.advance(upstream, 2)
    h.apply()
    run = fake.runs[upstream]
    fake.add_deployment(REPO, run.head_sha, "staging", "https://staging.acme.example", run_id=run.id)
    h.apply()
    assert h.t.latest["run_1"].deployment_url is None
    assert "deployment_url" not in h.t.refs["run_1"].state


def test_a_completion_whose_job_hooks_were_all_dropped_has_every_jobs_steps(fake, hooked, tracker):
    fake.add_workflow(REPO, "deploy.yml", jobs=[("build", ["compile", "test"]), ("ship", ["upload"])])
    h = hooked()
    upstream = int(h.t.dispatch("run_1").upstream_id)
    fake.finish(upstream)
    h.apply(skip=frozenset({"workflow_job"}))
    done = h.t.latest["run_1"]
    assert [(s.name, s.status) for s in done.steps] == [
        ("build / compile", "success"),
        ("build / test", "success"),
        ("ship / upload", "success"),
    ]
    same_end(done, polled(tracker, upstream))


def test_while_hooks_arrive_a_poll_reads_jobs_only_for_a_status_no_hook_reported(fake, hooked, tracker, clock):
    fake.add_workflow(REPO, "deploy.yml", jobs=[("build", ["compile", "test", "package"])])
    h = hooked()
    upstream = int(h.t.dispatch("run_1").upstream_id)
    fake.advance(upstream, 2)  # in progress, its job started: hooks say so
    h.apply()
    assert [s.status for s in h.t.latest["run_1"].steps] == ["running", "pending", "pending"]

    fake.advance(upstream)  # a step finished: GitHub sends no hook for that
    fake.reset_counters()
    assert h.t.cycle() == []
    assert JOBS not in fake.stats()["by_route"]  # the job's hooks bring its steps

    clock.advance(h.t.provider.settings.reconcile_interval_seconds)  # no hook since: polled as without hooks
    [snap] = h.t.cycle()
    assert [s.status for s in snap.steps] == ["success", "running", "pending"]

    fake.finish(upstream)
    h.apply(skip=frozenset({"workflow_run", "workflow_job"}))  # the completion's hooks are lost
    fake.reset_counters()
    [done] = h.t.cycle()
    assert fake.stats()["counted_by_route"].get(JOBS) == 1
    same_end(done, polled(tracker, upstream))
