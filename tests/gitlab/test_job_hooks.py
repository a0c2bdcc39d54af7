"""GitLab hooks applied through the provider: a ``Job Hook`` replaces that job's step from the
hook's own body (no request to GitLab), a late or older-attempt job hook changes nothing, a
``Pipeline Hook`` re-reads the pipeline (its final steps are those polling gives), and while
hooks arrive a poll re-reads a pipeline only for a status no hook reported."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from testkit.fake_gitlab import JobSpec
from testkit.hooks_in import AppliedHooks
from testkit.receiver import Receiver

from flashfusion.plugins import RunRef

SECRET = "hook-secret-0123456789"
REPO = "acme/web"
JOBS = (JobSpec("build", "build"), JobSpec("unit", "test"), JobSpec("ship", "deploy", environment="production"))
DEPLOYED = "https://web.acme.example"


@pytest.fixture(scope="module")
def rx() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


@pytest.fixture
def hooked(fake, kit, rx) -> Iterator[AppliedHooks]:
    """The fake's hooks applied to a core whose provider takes them (the core is ``.core``)."""
    fake.add_environment(fake.add_project(REPO, jobs=JOBS), "production", DEPLOYED)
    provider = kit.provider(
        poll_interval_seconds=0, webhook_secret_env="FF_HOOK", env={"GITLAB_TOKEN": fake.token, "FF_HOOK": SECRET}
    )
    core = kit.core(REPO, provider)
    hooks = AppliedHooks(fake.hooks, rx, SECRET, provider, core.pipeline, core.active, core.store)
    hooks.core = core
    yield hooks
    provider.close()


def steps(snap) -> list[tuple[str, str]]:
    return [(s.name, s.status) for s in snap.steps]


def polled(kit, upstream: str):
    """What polling alone (a provider without hooks) reports for the pipeline now."""
    core = kit.core(REPO)
    core.runs["polled"] = RunRef(
        id="polled", pipeline_id="web", ref="main", inputs={}, created_at=datetime.now(UTC), upstream_id=upstream
    )
    core.history["polled"] = []
    [snap] = core.poll()
    core.provider.close()
    return snap


@pytest.mark.parametrize("event", ["Job Hook", "Pipeline Hook"])
def test_an_unfinished_pipelines_hooks_move_it_on_without_a_request(hooked, fake, event):
    run = hooked.core.dispatch()
    fake.advance(int(run.upstream_id))  # the pipeline runs, its first job starts
    before = fake.total
    hooked.apply(only=frozenset({event}))
    assert fake.total == before
    latest = hooked.core.history[run.id][-1]
    assert steps(latest) == [("build", "running"), ("unit", "pending"), ("ship", "pending")]
    assert latest.phase == "in_progress"
    if event == "Pipeline Hook":
        assert latest.provider_status == "running" and latest.state["status"] == "running"


def test_a_late_pipeline_hook_does_not_move_the_run_back(hooked, fake):
    run = hooked.core.dispatch()
    upstream = int(run.upstream_id)
    fake.advance(upstream)
    fake.advance(upstream)  # build done, unit running
    hooked.apply()
    earlier = {
        "running": {"build": "running", "unit": "created", "ship": "created"},  # delivered late
        "pending": {"build": "pending", "unit": "created", "ship": "created"},
    }
    for status, jobs in earlier.items():
        stale = fake.hooks.pipeline_body(fake.pipeline(upstream))
        stale["object_attributes"]["status"] = status
        stale["builds"] = [dict(b, status=jobs[b["name"]], finished_at=None) for b in stale["builds"]]
        fake.hooks.send("Pipeline Hook", stale)
    hooked.apply()
    latest = hooked.core.history[run.id][-1]
    assert latest.provider_status == "running"
    assert steps(latest) == [("build", "success"), ("unit", "running"), ("ship", "pending")]


def test_a_late_job_hook_leaves_a_finished_job_alone_and_the_end_is_what_polling_gives(hooked, fake, kit):
    run = hooked.core.dispatch()
    hooked.core.poll()
    upstream = int(run.upstream_id)
    fake.advance(upstream)
    fake.advance(upstream)  # build finished, unit running
    hooked.apply(only=frozenset({"Job Hook"}), reverse=True)  # newest first: build's "running" comes last
    assert steps(hooked.core.history[run.id][-1])[:2] == [("build", "success"), ("unit", "running")]
    while fake.pipeline(upstream).status not in ("success", "failed"):
        fake.advance(upstream)
    hooked.apply()
    done = hooked.core.history[run.id][-1]
    assert done.terminal and done.deployment_url == DEPLOYED
    expected = polled(kit, run.upstream_id)
    assert (done.status, done.conclusion, done.steps, done.deployment_url, done.finished_at) == (
        expected.status,
        expected.conclusion,
        expected.steps,
        expected.deployment_url,
        expected.finished_at,
    )


def test_a_job_hook_about_an_older_attempt_changes_nothing(hooked, fake):
    run = hooked.core.dispatch()
    upstream = int(run.upstream_id)
    fake.advance(upstream)
    fake.advance(upstream)  # build finished
    hooked.apply()
    build = next(j for j in fake.pipeline(upstream).jobs if j.spec.name == "build")
    fake.retry_job(build.id)
    hooked.apply()
    assert ("build", "pending") in steps(hooked.core.history[run.id][-1])
    # the first attempt's "success" again, after the retry
    fake.hooks.send("Job Hook", fake.hooks.job_body(fake.pipeline(upstream), build))
    hooked.apply()
    assert ("build", "pending") in steps(hooked.core.history[run.id][-1])


def test_while_hooks_arrive_a_poll_rereads_a_pipeline_only_for_a_status_no_hook_reported(hooked, fake, kit):
    core = hooked.core
    run = core.dispatch()
    upstream = int(run.upstream_id)
    fake.advance(upstream)
    hooked.apply()  # running, build running
    fake.advance(upstream)  # build done, unit running: jobs only, the pipeline stays running
    hooked.apply(only=frozenset())  # those job hooks are lost
    kit.clock.advance(1)
    total = fake.total
    assert core.poll() == []
    assert fake.total - total == 1  # the pipelines list only

    kit.clock.advance(core.provider.settings.reconcile_interval_seconds)  # hooks silent: polled as without
    [snap] = core.poll()
    assert steps(snap)[:2] == [("build", "success"), ("unit", "running")]

    while fake.pipeline(upstream).status not in ("success", "failed"):
        fake.advance(upstream)
    hooked.apply(only=frozenset())  # the completion's hooks are lost too
    [done] = core.poll()
    assert done.terminal and all(status == "success" for _, status in steps(done))


def test_a_deploying_job_that_succeeds_mid_pipeline_gives_the_url_at_once(fake, kit, rx):
    project = fake.add_project(
        "acme/api", jobs=(JobSpec("ship", "deploy", environment="production"), JobSpec("smoke", "verify"))
    )
    fake.add_environment(project, "production", DEPLOYED)
    provider = kit.provider(
        poll_interval_seconds=0, webhook_secret_env="FF_HOOK", env={"GITLAB_TOKEN": fake.token, "FF_HOOK": SECRET}
    )
    core = kit.core("acme/api", provider)
    hooks = AppliedHooks(fake.hooks, rx, SECRET, provider, core.pipeline, core.active, core.store)
    run = core.dispatch()
    fake.advance(int(run.upstream_id))
    fake.advance(int(run.upstream_id))  # ship done, smoke running
    hooks.apply()
    assert core.history[run.id][-1].phase == "in_progress"
    assert DEPLOYED in [s.deployment_url for s in core.history[run.id]]
    assert core.runs[run.id].state["deployment_url"] == DEPLOYED
    provider.close()
