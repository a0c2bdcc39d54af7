"""Dispatch -> poll -> completion against the fake GitHub, through ``GitHubProvider`` directly."""

from __future__ import annotations

import dataclasses

import pytest
from testkit.fake_github import DEFAULT_TOKEN, FakeGitHub

from flashfusion.plugins import UpstreamRejected
from flashfusion.providers.github.plugin import GitHubProvider
from flashfusion.providers.github.settings import Settings

REPO = "acme/web"


def _phases(tracker, run_id: str) -> list[tuple[str, str]]:
    return [(s.status, s.phase) for s in tracker.history[run_id]]


def test_run_goes_queued_in_progress_success_with_steps_and_durations(fake, tracker):
    fake.add_workflow(REPO, "deploy.yml", jobs=[("build", ["Set up job", "Run tests"]), ("ship", ["Upload"])])
    t = tracker()
    dispatch = t.dispatch("run_1")
    assert dispatch.upstream_id is not None
    assert dispatch.api_url == f"{fake.url}/repos/{REPO}/actions/runs/{dispatch.upstream_id}"
    assert dispatch.html_url.endswith(f"/{REPO}/actions/runs/{dispatch.upstream_id}")
    upstream = int(dispatch.upstream_id)

    [snap] = t.cycle()
    assert (snap.status, snap.phase, snap.provider_status) == ("running", "queued", "queued")

    while fake.runs[upstream].status != "completed":
        fake.advance(upstream)
        t.cycle(7)

    final = t.latest["run_1"]
    assert (final.status, final.phase, final.conclusion) == ("success", "completed", "success")
    assert ("running", "in_progress") in _phases(t, "run_1")
    assert _phases(t, "run_1")[-1] == ("success", "completed")
    names = [s.name for s in final.steps]
    assert names == ["build / Set up job", "build / Run tests", "ship / Upload"]
    assert all(s.status == "success" and s.duration_seconds == 7.0 for s in final.steps)
    assert {s.stage for s in final.steps} == {"build", "ship"}
    assert final.steps[0].url.endswith(f"/actions/runs/{upstream}/job/{fake.runs[upstream].jobs[0]['id']}")
    assert final.started_at is not None and final.finished_at is not None
    assert (final.finished_at - final.started_at).total_seconds() == pytest.approx(7 * 5, abs=1)
    assert final.html_url.endswith(f"/actions/runs/{upstream}")

    # A mid-run snapshot showed a step running and later ones pending.
    mid = [s for s in t.history["run_1"] if s.steps and any(st.status == "running" for st in s.steps)]
    assert mid and any(st.status == "pending" for st in mid[0].steps)


def test_failed_run_reports_failure_and_the_failing_step(fake, tracker):
    wf = fake.add_workflow(REPO, "deploy.yml", jobs=[("build", ["Compile", "Run tests", "Package"])])
    t = tracker()
    run = fake.create_run(wf, fail_step="Run tests")
    t.track(dataclasses.replace(t.new_ref("run_f"), upstream_id=str(run.id)))
    fake.finish(run.id)
    [snap] = t.cycle()
    assert (snap.status, snap.phase, snap.conclusion) == ("failed", "completed", "failure")
    assert [(s.name, s.status) for s in snap.steps] == [
        ("build / Compile", "success"),
        ("build / Run tests", "failed"),
        ("build / Package", "skipped"),
    ]


def test_deployment_url_comes_from_the_successful_deployment_status(fake, tracker):
    wf = fake.add_workflow(REPO, "deploy.yml", deploy=("production", "https://web.acme.example"))
    t = tracker()
    upstream = int(t.dispatch("run_d").upstream_id)
    # Another run on the same commit deployed elsewhere; it must not be taken for ours.
    other = fake.create_run(wf, "main")
    fake.add_deployment(REPO, other.head_sha, "staging", "https://other.example", run_id=other.id)
    fake.finish(upstream)
    [snap] = t.cycle()
    assert snap.deployment_url == "https://web.acme.example"
    assert snap.state["deployment_url"] == "https://web.acme.example"


def test_deployment_url_is_none_without_deployment(fake, tracker):
    fake.add_workflow(REPO, "deploy.yml")
    t = tracker()
    upstream = int(t.dispatch("run_n").upstream_id)
    fake.finish(upstream)
    [snap] = t.cycle()
    assert snap.status == "success" and snap.deployment_url is None


def test_deployment_url_while_running_when_the_pipeline_names_its_environment(fake, tracker, make_pipeline):
    wf = fake.add_workflow(REPO, "deploy.yml")
    t = tracker(make_pipeline(environment="production"))
    upstream = int(t.dispatch("run_e").upstream_id)
    fake.advance(upstream, 2)
    run = fake.runs[upstream]
    fake.add_deployment(REPO, run.head_sha, "production", "https://prod.acme.example", run_id=run.id)
    [snap] = t.cycle()
    assert snap.status == "running" and snap.deployment_url == "https://prod.acme.example"
    assert wf.id == int(t.refs["run_e"].workflow_id)


def test_cancel_posts_the_cancel_url_and_the_next_poll_reports_it(fake, tracker):
    fake.add_workflow(REPO, "deploy.yml")
    t = tracker()
    upstream = int(t.dispatch("run_c").upstream_id)
    fake.advance(upstream, 2)
    t.cycle()
    t.provider.cancel(t.pipeline, t.refs["run_c"])
    assert fake.by_route["POST /repos/{owner}/{repo}/actions/runs/{run_id}/cancel"] == 1
    [snap] = t.cycle()
    assert (snap.status, snap.conclusion) == ("failed", "cancelled")
    assert any(s.status == "cancelled" for s in snap.steps)

    with pytest.raises(UpstreamRejected, match="Cannot cancel a workflow run that is completed"):
        t.provider.cancel(t.pipeline, t.refs["run_c"])


def test_cancel_before_the_run_is_known_is_refused(fake, tracker):
    t = tracker()
    with pytest.raises(UpstreamRejected, match="not known yet"):
        t.provider.cancel(t.pipeline, t.new_ref("run_x"))


def test_github_enterprise_server_base_url_with_api_prefix(clock, tracker):
    with FakeGitHub(clock=clock, prefix="/api/v3") as ghes:
        ghes.add_repo(REPO)
        ghes.add_workflow(REPO, "deploy.yml")
        assert ghes.url.endswith("/api/v3")
        provider = GitHubProvider(Settings(base_url=ghes.url + "/"), env={"GITHUB_TOKEN": DEFAULT_TOKEN}, clock=clock)
        t = tracker(provider=provider)
        upstream = int(t.dispatch("run_g").upstream_id)
        ghes.finish(upstream)
        [snap] = t.cycle()
        assert snap.status == "success"
        provider.close()


def test_runs_of_two_pipelines_in_one_repository_share_the_list_request(
    fake, tracker, make_provider, clock, make_pipeline
):
    fake.add_workflow(REPO, "deploy.yml")
    fake.add_workflow(REPO, "lint.yml", name="Lint")
    provider = make_provider()
    deploy = tracker(make_pipeline("deploy.yml"), provider=provider)
    lint = tracker(make_pipeline("lint.yml"), provider=provider)
    deploy.dispatch("run_a")
    lint.dispatch("run_b")
    clock.advance(10)
    fake.reset_counters()
    assert len(deploy.poll()) == 1 and len(lint.poll()) == 1
    assert fake.by_route["GET /repos/{owner}/{repo}/actions/runs"] == 1


def test_a_run_deleted_upstream_ends_failed_instead_of_hanging(fake, tracker):
    fake.add_workflow(REPO, "deploy.yml")
    t = tracker()
    t.track(dataclasses.replace(t.new_ref("run_gone"), upstream_id="999"))
    [snap] = t.cycle()
    assert (snap.status, snap.conclusion) == ("failed", "upstream_missing")
