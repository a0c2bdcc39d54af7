"""What a poll cycle costs upstream, measured with the fake's request counters."""

from __future__ import annotations

import dataclasses
from typing import Any

from testkit.fake_gitlab import FakeGitLab, JobSpec

REPO = "acme/monorepo"
ONE_JOB = (JobSpec("build", "build"),)


def start_runs(kit: Any, fake: FakeGitLab, count: int, **table: Any) -> Any:
    fake.add_project(REPO, jobs=ONE_JOB)
    core = kit.core(REPO, kit.provider(poll_interval_seconds=10, **table))
    runs = [core.dispatch({"N": str(i)}) for i in range(count)]
    for run in runs:
        fake.advance(int(run.upstream_id))  # running
    kit.clock.advance(10)
    assert len(core.poll()) == count
    return core


def test_100_quiet_pipelines_cost_one_request_per_cycle(kit: Any, fake: FakeGitLab) -> None:
    core = start_runs(kit, fake, 100)
    for _ in range(3):
        fake.tick(60)
        kit.clock.advance(10)
        fake.reset_counters()
        assert core.poll() == []
        assert fake.counts == {"pipelines.list": 1}
        [request] = fake.requests
        assert request.query["order_by"] == ["updated_at"] and "updated_after" in request.query
        # the window starts at the newest update seen (minus a 30 s overlap), not at the oldest run
        assert request.items is not None and request.items < 100


def test_changed_pipelines_cost_a_pipeline_and_a_jobs_request_each(kit: Any, fake: FakeGitLab) -> None:
    core = start_runs(kit, fake, 100)
    runs = list(core.runs.values())
    fake.tick(60)
    for run in runs[:3]:
        fake.advance(int(run.upstream_id))  # -> success
    kit.clock.advance(10)
    fake.reset_counters()

    snaps = core.poll()

    assert sorted(s.run_id for s in snaps) == sorted(r.id for r in runs[:3])
    assert {s.status for s in snaps} == {"success"}
    # one deployments lookup for the cycle, whatever the number of finished pipelines
    assert fake.counts == {"pipelines.list": 1, "pipeline": 3, "pipeline.jobs": 3, "deployments": 1}


def test_pagination_follows_link_headers(kit: Any, fake: FakeGitLab) -> None:
    core = start_runs(kit, fake, 150)
    fake.tick(60)
    for run in core.runs.values():
        fake.advance(int(run.upstream_id))
    kit.clock.advance(10)
    fake.reset_counters()

    snaps = core.poll()

    assert len(snaps) == 150 and {s.status for s in snaps} == {"success"}
    lists = [r for r in fake.requests if r.route == "pipelines.list"]
    assert len(lists) == 2 and lists[1].query["page"] == ["2"]
    assert fake.counts == {"pipelines.list": 2, "pipeline": 150, "pipeline.jobs": 150, "deployments": 1}


def test_two_pipeline_blocks_on_one_project_share_the_list_within_a_cycle(kit: Any, fake: FakeGitLab) -> None:
    fake.add_project(REPO, jobs=ONE_JOB)
    provider = kit.provider(poll_interval_seconds=10)
    web, api = kit.core(REPO, provider, id="web"), kit.core(REPO, provider, id="api")
    web_run, api_run = web.dispatch(), api.dispatch()
    fake.advance(int(web_run.upstream_id))
    fake.advance(int(api_run.upstream_id))
    kit.clock.advance(10)
    fake.reset_counters()

    assert [s.run_id for s in web.poll()] == [web_run.id]
    kit.clock.advance(1)
    assert [s.run_id for s in api.poll()] == [api_run.id]

    assert fake.counts["pipelines.list"] == 1


def test_a_restarted_worker_needs_one_request_and_finds_changes_made_while_down(kit: Any, fake: FakeGitLab) -> None:
    core = start_runs(kit, fake, 100)
    runs = list(core.runs.values())
    fake.tick(600)
    fake.advance(int(runs[7].upstream_id))  # finished while the worker was down

    core.provider = kit.provider(poll_interval_seconds=10)  # new process: empty caches
    fake.reset_counters()
    [snap] = core.poll()

    assert snap.run_id == runs[7].id and snap.status == "success"
    assert fake.counts == {"pipelines.list": 1, "pipeline": 1, "pipeline.jobs": 1, "deployments": 1}
    fake.reset_counters()
    kit.clock.advance(10)
    assert core.poll() == []
    assert fake.counts == {"pipelines.list": 1}


def test_a_run_without_state_is_fetched_once_then_watched_through_the_list(kit: Any, fake: FakeGitLab) -> None:
    """A core that keeps no provider state still gets every change, one fetch per run at first."""
    core = start_runs(kit, fake, 5)
    for run_id, run in list(core.runs.items()):
        core.runs[run_id] = dataclasses.replace(run, state={})
    core.provider = kit.provider(poll_interval_seconds=10)
    fake.reset_counters()

    assert len(core.poll()) == 5
    assert fake.counts["pipeline"] == 5
    for run in list(core.runs.values()):
        core.runs[run.id] = dataclasses.replace(run, state={})
    fake.reset_counters()
    kit.clock.advance(10)
    assert core.poll() == []
    assert fake.counts == {"pipelines.list": 1}


def test_steps_refresh_rereads_running_pipelines_whose_status_did_not_change(kit: Any, fake: FakeGitLab) -> None:
    fake.add_project(REPO, jobs=(JobSpec("build", "build"), JobSpec("test", "test")))
    quiet = kit.core(REPO, kit.provider(poll_interval_seconds=10))
    refreshing = kit.core(REPO, kit.provider(poll_interval_seconds=10, steps_refresh_seconds=60), id="api")
    runs = [quiet.dispatch(), refreshing.dispatch()]
    for run in runs:
        fake.advance(int(run.upstream_id))
    kit.clock.advance(10)
    assert len(quiet.poll()) == 1 and len(refreshing.poll()) == 1
    for run in runs:  # build finishes, test starts: the pipeline stays "running", updated_at unchanged
        fake.set_job(fake.job_id(int(run.upstream_id), "build"), "success")
        fake.set_job(fake.job_id(int(run.upstream_id), "test"), "running")

    kit.clock.advance(30)
    assert quiet.poll() == [] and refreshing.poll() == []
    kit.clock.advance(30)
    fake.reset_counters()
    assert quiet.poll() == []
    [snap] = refreshing.poll()
    assert [s.status for s in snap.steps] == ["success", "running"]
    assert fake.counts == {"pipelines.list": 2, "pipeline": 1, "pipeline.jobs": 1, "deployments": 1}


def test_a_whole_pipeline_from_dispatch_to_deployment(kit: Any, fake: FakeGitLab) -> None:
    project = fake.add_project(REPO)  # build -> unit, lint -> deploy (environment production)
    fake.add_environment(project, "production", "https://web.example")
    core = kit.core(REPO, kit.provider(poll_interval_seconds=10))
    fake.reset_counters()
    run = core.dispatch()
    while not (core.history[run.id] and core.history[run.id][-1].terminal):
        fake.advance(int(run.upstream_id))
        kit.clock.advance(10)
        core.poll()
    assert core.history[run.id][-1].deployment_url == "https://web.example"
    assert fake.counts == {
        "pipeline.create": 1,
        "pipelines.list": 4,
        "pipeline": 4,
        "pipeline.jobs": 4,
        "deployments": 3,
    }
