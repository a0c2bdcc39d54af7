"""GitHub Actions pipelines through the gateway's API: the provider built from the configuration
(``[providers.github] base_url`` = the fake, token from the configuration's environment),
triggered with ``trigger-pipeline``, followed by a worker, read with ``get-status``."""

from __future__ import annotations

import provider_checks
import pytest
from testkit import provider_api
from testkit.fake_github import FakeClock, FakeGitHub
from testkit.gateway import ManualClock, build_kit, write_gateway_config

from flashfusion.core.storage.db import database
from flashfusion.core.storage.models import Run

REPO = "acme/web"
TOKEN_ENV = "FF_GATEWAY_TEST_GITHUB_TOKEN"
TOKEN = "ghp_gatewayTestToken0123456789abcdefABCDEF"
LIST = "GET /repos/{owner}/{repo}/actions/runs"
DEPLOY_URL = "https://web.acme.example"
PIPELINES = {
    "web": {"name": "Web", "repository_name": REPO, "workflow": "deploy.yml", "branch": "main"},
    "nodispatch": {"repository_name": REPO, "workflow": "push-only.yml"},
    "missing": {"repository_name": REPO, "workflow": "missing.yml"},
}


def provider_config(url: str, **settings) -> str:
    table = {"base_url": url, "token_env": TOKEN_ENV, "poll_interval_seconds": provider_api.POLL_SECONDS, **settings}
    return provider_api.provider_table("github", table) + provider_checks.pipeline_tables("github", PIPELINES)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()  # starts at the real time; moved on by hand to give steps durations


@pytest.fixture
def fake(clock):
    with FakeGitHub(clock=clock, token=TOKEN) as server:
        server.add_repo(REPO, branches=("main", "release"))
        server.add_workflow(
            REPO,
            "deploy.yml",
            deploy=("production", DEPLOY_URL),
            jobs=[("build", ["Set up job", "Run tests", "Complete job"])],
        )
        server.add_workflow(REPO, "push-only.yml", name="Push only", dispatch=False)
        yield server


make_kit, kit = provider_api.kit_fixtures(provider_config, {TOKEN_ENV: TOKEN})


def test_trigger_follows_the_run_to_success_with_steps_durations_and_deployment(kit, fake, clock):
    answer = kit.trigger("web", inputs={})
    assert answer.status_code == 200, answer.text
    started = answer.json
    upstream = int(started["upstream_run_id"])
    assert started["status"] == "running" and started["phase"] == "dispatching"
    assert started["html_url"] == f"https://github.com/{REPO}/actions/runs/{upstream}"
    assert fake.runs[upstream].ref == "main"
    run_id = started["run_id"]

    run = kit.cycle_until(lambda r: r["provider_status"] == "queued", run_id)
    # known upstream, waiting in GitHub's queue: still "dispatching" (phases never go back to "queued")
    assert (run["status"], run["phase"], run["conclusion"]) == ("running", "dispatching", None)

    seen = provider_checks.cycle_until_upstream_finishes(
        kit, run_id, lambda: fake.runs[upstream].status == "completed", clock.advance, lambda: fake.advance(upstream)
    )
    for run in seen:
        if run["phase"] == "in_progress":
            assert run["status"] == "running" and run["steps"]
    assert ("in_progress", "in_progress") in {(run["phase"], run["provider_status"]) for run in seen}

    run = kit.cycle_until(lambda r: r["phase"] == "completed", run_id)
    assert (run["status"], run["conclusion"], run["provider_status"]) == ("success", "success", "completed")
    assert [s["name"] for s in run["steps"]] == ["build / Set up job", "build / Run tests", "build / Complete job"]
    assert all(s["status"] == "success" and s["duration_seconds"] == 5 for s in run["steps"])
    assert all(
        s["url"] == f"https://github.com/{REPO}/actions/runs/{upstream}/job/{fake.runs[upstream].jobs[0]['id']}"
        for s in run["steps"]
    )
    finished = fake.runs[upstream]
    assert run["duration_seconds"] == int(finished.updated_at) - int(finished.run_started_at) >= 20
    assert run["html_url"] == started["html_url"]
    assert run["deployment_url"] == DEPLOY_URL

    kit.cycle(3)
    assert kit.events(run_id) == ["deployment.success", "run.completed", "run.started"]


def test_a_run_waiting_in_githubs_queue_is_dispatched_once(kit, fake):
    """Core regression: a snapshot with phase "queued" (GitHub's queued) used to put the run
    back in the core's "not dispatched yet" phase, and every worker tick dispatched it again."""
    run_id = kit.trigger("web").json["run_id"]
    kit.cycle(4)
    assert len(fake.dispatches) == 1 and len(fake.runs) == 1
    run = kit.status(run_id)
    assert (run["status"], run["phase"], run["provider_status"]) == ("running", "dispatching", "queued")
    assert run["upstream_run_id"] == str(next(iter(fake.runs)))


def test_a_failing_step_fails_the_run_and_is_named(kit, fake):
    run_id = kit.trigger("web").json["run_id"]
    upstream = int(kit.status(run_id)["upstream_run_id"])
    fake.runs[upstream].fail_step = "Run tests"
    fake.finish(upstream)
    run = kit.cycle_until(lambda r: r["phase"] == "completed", run_id)
    assert (run["status"], run["conclusion"], run["failed_step"]) == ("failed", "failure", "build / Run tests")
    assert [s["status"] for s in run["steps"]] == ["success", "failed", "skipped"]
    assert run["deployment_url"] is None
    assert kit.events(run_id) == ["run.failed", "run.started"]


def test_cancel_run_cancels_upstream(kit, fake):
    run_id = kit.trigger("web").json["run_id"]
    upstream = int(kit.status(run_id)["upstream_run_id"])
    fake.advance(upstream, 2)
    kit.cycle_until(lambda r: r["phase"] == "in_progress", run_id)

    answer = kit.cancel(run_id)
    assert answer.status_code == 200 and answer.json["run"]["cancel_requested"] is True
    run = kit.cycle_until(lambda r: r["phase"] == "completed", run_id)
    assert fake.by_route["POST /repos/{owner}/{repo}/actions/runs/{run_id}/cancel"] == 1
    assert fake.runs[upstream].conclusion == "cancelled"
    assert (run["status"], run["conclusion"]) == ("failed", "cancelled")


@pytest.mark.parametrize(
    "pipeline_id, body, github_says",
    [
        ("web", {"branch": "no-such-branch"}, "No ref found for: no-such-branch"),
        ("nodispatch", {}, "Workflow does not have 'workflow_dispatch' trigger"),
        ("web", {"inputs": {"undeclared": "x"}}, 'Unexpected inputs provided: ["undeclared"]'),
        ("missing", {}, "Not Found"),
    ],
)
def test_upstream_refusal_answers_422_with_githubs_message_and_leaves_a_failed_run(kit, pipeline_id, body, github_says):
    provider_api.assert_upstream_refused(kit, pipeline_id, body, github_says)


def test_bad_credentials_answer_502_naming_provider_and_pipeline_never_the_token(make_kit, fake, caplog):
    wrong = "ghp_wrongToken0000000000000000000000000000"
    message = provider_api.assert_bad_token_refused(make_kit, "web", TOKEN_ENV, wrong, caplog)
    assert "github" in message and "pipeline web" in message and "Bad credentials" in message


def test_without_return_run_details_the_run_says_dispatching_then_binds(kit, fake, clock):
    fake.reject_return_run_details = True
    fake.list_delay = 30  # the new run shows up in lists 30 s (fake clock) after the dispatch
    started = kit.trigger("web").json
    assert (started["phase"], started["upstream_run_id"]) == ("dispatching", None)
    run_id = started["run_id"]
    kit.cycle(3)
    run = kit.status(run_id)
    assert (run["status"], run["phase"], run["upstream_run_id"]) == ("running", "dispatching", None)

    clock.advance(31)
    run = kit.cycle_until(lambda r: r["upstream_run_id"] is not None, run_id)
    [upstream] = fake.runs
    assert run["upstream_run_id"] == str(upstream) and run["phase"] == "dispatching"
    assert run["html_url"] == f"https://github.com/{REPO}/actions/runs/{upstream}"
    stored = kit.db_run(run_id).state
    assert stored["correlation"] == "order" and stored["updated_at"]  # Dispatch.state kept, snapshot state merged

    fake.finish(upstream)
    run = kit.cycle_until(lambda r: r["phase"] == "completed", run_id)
    assert run["status"] == "success" and run["deployment_url"] == DEPLOY_URL


def test_a_run_never_found_ends_dispatch_lost(make_kit, fake):
    kit = make_kit(dispatch_lost_after_seconds=0.3, return_run_details=False)
    fake.list_delay = 10_000  # never listed
    run_id = kit.trigger("web").json["run_id"]
    assert kit.status(run_id)["phase"] == "dispatching"
    run = kit.cycle_until(lambda r: r["phase"] == "completed", run_id, limit=60)
    assert (run["status"], run["conclusion"], run["provider_status"]) == ("failed", "dispatch_lost", "dispatch_lost")
    assert kit.events(run_id) == ["run.failed", "run.started"]


def test_a_worker_poll_cycle_with_100_quiet_runs_costs_at_most_2_counted_requests(kit, fake):
    wf = fake.find_workflow(REPO, "deploy.yml")
    for _ in range(30):  # older finished dispatches: the list reaches a second page
        fake.finish(fake.create_run(wf).id)
    run_ids = []
    for _ in range(100):
        answer = kit.trigger("web")
        assert answer.status_code == 200, answer.text
        run_ids.append(answer.json["run_id"])
    for upstream in list(fake.runs)[30::2]:
        fake.advance(upstream, 3)  # half of them in progress, half queued
    kit.cycle()  # first sight of every run: pays for the jobs of the running ones
    assert {kit.status(r)["phase"] for r in run_ids} == {"dispatching", "in_progress"}
    assert len(fake.dispatches) == 100

    for _ in range(3):
        fake.reset_counters()
        kit.cycle()
        steady = fake.stats()
        print(
            f"\ngateway worker cycle, 100 quiet GitHub runs: {steady['total']} requests, "
            f"{steady['counted']} counted, {steady['not_modified']} answered 304"
        )
        assert steady["counted"] <= 2
        assert steady["total"] == steady["by_route"].get(LIST, 0) <= 2
    assert steady["total"] >= 1  # the worker did poll (the cycle was not skipped)


def test_one_worker_follows_more_active_runs_than_its_batch_size(tmp_path, db_url, fake):
    """Core regression: Worker.claim() used to take the oldest batch_size active runs, its own
    included, so one worker never polled the newer ones while the older kept running."""
    env = {TOKEN_ENV: TOKEN, "FLASHFUSION_WORKER__BATCH_SIZE": "3"}
    kit = build_kit(tmp_path, db_url, provider_config(fake.url), env, pause=provider_api.PAUSE)
    try:
        run_ids = [kit.trigger("web").json["run_id"] for _ in range(5)]
        kit.cycle()
        for upstream in list(fake.runs)[3:]:
            fake.finish(upstream)  # the two newest finish while the three oldest keep running
        kit.cycle(3)
        assert [kit.status(r)["phase"] for r in run_ids[3:]] == ["completed", "completed"]
    finally:
        kit.close()


def test_the_worker_polls_at_the_providers_default_10_second_interval(tmp_path, db_url, fake):
    clock = ManualClock()
    extra = provider_config(fake.url).replace("poll_interval_seconds = 0.1\n", "")
    kit = build_kit(tmp_path, db_url, extra, {TOKEN_ENV: TOKEN}, worker_clock=clock)
    try:
        provider = kit.gateway.providers.get("github")
        assert provider.settings.poll_interval_seconds == 10
        calls = []
        real_poll = provider.poll
        provider.poll = lambda pipeline, refs: calls.append(len(refs)) or real_poll(pipeline, refs)
        kit.trigger("web")
        kit.worker.tick()
        assert calls == [1]
        for _ in range(9):
            clock.advance(1)
            kit.worker.tick()
        assert calls == [1]
        clock.advance(1)
        kit.worker.tick()
        assert calls == [1, 1]
    finally:
        kit.close()


def test_dispatch_state_round_trips_through_the_database(kit, fake):
    fake.reject_return_run_details = True
    run_id = kit.trigger("web").json["run_id"]
    with database.connection_context():
        from flashfusion.core.runs.transitions import to_ref

        ref = to_ref(Run.get_by_id(run_id))
    assert ref.state["correlation"] == "order" and isinstance(ref.state["seq"], int)
    assert isinstance(ref.state["dispatched_at"], float) and ref.upstream_id is None
    # an int of 19 digits survives JSON storage exactly
    assert ref.state["seq"] == kit.gateway.providers.get("github")._last_seq


# ---------------------------------------------------------------------------- doctor and readyz


def test_doctor_prints_one_line_per_pipeline_and_exits_1_on_problems(tmp_path, db_url, fake, monkeypatch, capsys):
    config = write_gateway_config(tmp_path, db_url, provider_config(fake.url))
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    fake.reset_counters()
    lines = provider_checks.run_doctor(capsys, config, exits=1).splitlines()
    assert "web: ok (github)" in lines and "demo: ok (local)" in lines
    assert "nodispatch: workflow 'push-only.yml' has no workflow_dispatch trigger" in lines
    assert (
        "missing: workflow 'missing.yml' not found in acme/web (or the credentials cannot see the repository)" in lines
    )
    assert lines[-1] == "6 pipelines checked: 4 ok, 2 with problems"
    with capsys.disabled():
        print(f"\ndoctor, 3 GitHub pipelines: {fake.stats()['counted']} counted requests")
    assert fake.stats()["counted"] <= 5  # workflow + file for each found workflow, one 404

    assert provider_checks.run_doctor(capsys, config, "web", exits=0).splitlines() == [
        "web: ok (github)",
        "1 pipelines checked: 1 ok, 0 with problems",
    ]

    wrong = "ghp_wrongToken0000000000000000000000000000"
    monkeypatch.setenv(TOKEN_ENV, wrong)
    out = provider_checks.run_doctor(capsys, config, "web", "demo", exits=1)
    assert out.splitlines()[:2] == [
        f"web: github credentials rejected (Bad credentials): check environment variable {TOKEN_ENV}",
        "demo: ok (local)",
    ]
    assert wrong not in out

    monkeypatch.delenv(TOKEN_ENV)
    out = provider_checks.run_doctor(capsys, config, "web", exits=1)
    assert out.splitlines()[0] == f"web: github credentials: environment variable {TOKEN_ENV} is not set"
    provider_checks.run_doctor(capsys, config, "nope", exits=2)


def test_readyz_reports_provider_problems_per_pipeline_as_degraded_with_200(kit):
    body = provider_api.assert_readyz_degraded(kit)
    assert body["pipelines_checked_at"].endswith("Z")
    pipelines = body["pipelines"]
    assert pipelines["web"] == {"provider": "github", "status": "ok"}
    assert pipelines["demo"] == {"provider": "local", "status": "ok"}
    assert pipelines["nodispatch"] == {
        "provider": "github",
        "status": "degraded",
        "problems": ["workflow 'push-only.yml' has no workflow_dispatch trigger"],
    }
    assert pipelines["missing"]["status"] == "degraded"
    assert pipelines["missing"]["problems"][0].startswith("workflow 'missing.yml' not found in acme/web")


def test_readyz_with_a_bad_token_is_degraded_and_never_shows_it(make_kit):
    wrong = "ghp_wrongToken0000000000000000000000000000"
    answer = make_kit(env={TOKEN_ENV: wrong}).readyz()
    assert answer.status_code == 200 and answer.json["status"] == "degraded"
    assert answer.json["pipelines"]["web"]["problems"] == [
        f"github credentials rejected (Bad credentials): check environment variable {TOKEN_ENV}"
    ]
    assert wrong not in answer.text


def test_readyz_caches_checks_for_60_seconds_per_process(make_kit, fake, monkeypatch):
    from flashfusion.core.web.resources import health

    clock = ManualClock()
    monkeypatch.setattr(health.Readyz, "clock", clock)
    kit = make_kit()
    fake.reset_counters()
    assert kit.readyz().json["status"] == "degraded"
    first = fake.stats()["total"]
    assert first >= 3
    for _ in range(5):
        clock.advance(11)
        assert kit.readyz().json["pipelines"]["web"]["status"] == "ok"
    assert fake.stats()["total"] == first  # 55 s of probes: answered from the cache
    clock.advance(6)
    kit.readyz()
    assert fake.stats()["total"] == 2 * first


def test_readyz_waits_a_bounded_time_for_slow_checks(make_kit, fake, monkeypatch):
    import time

    from flashfusion.core.web.resources import health

    monkeypatch.setattr(health.Readyz, "wait_seconds", 0.1)
    monkeypatch.setattr(health.Readyz, "check_timeout_seconds", 0.4)
    kit = make_kit()
    kit.admin_session()
    fake.stall_next(1.2)  # GitHub hangs on one request
    began = time.monotonic()
    answer = kit.readyz()
    assert time.monotonic() - began < 0.5
    assert answer.status_code == 200 and answer.json["status"] == "ready"
    assert {p["status"] for p in answer.json["pipelines"].values()} == {"checking"}

    time.sleep(0.5)  # the refresh gave up on the hanging check at 0.4 s
    pipelines = kit.readyz().json["pipelines"]
    late = [pid for pid, p in pipelines.items() if p.get("problems") == ["no answer within 0.4 s"]]
    assert len(late) == 1 and pipelines["demo"]["status"] == "ok"


# ---------------------------------------------------------------------------- one real serve


@pytest.mark.e2e
def test_real_serve_follows_a_github_run_and_never_shows_the_token(tmp_path, fake, clock):
    """One real serve per provider is enough: this one on SQLite, GitLab's on PostgreSQL."""
    from testkit.db import database_url

    db_url = database_url("sqlite", tmp_path)
    config_text = provider_config(fake.url)
    with provider_api.serving_with_worker(tmp_path, db_url, config_text, {TOKEN_ENV: TOKEN}, "gh") as served:
        started = served.trigger("web")
        upstream = int(started["upstream_run_id"])
        clock.advance(3)
        fake.advance(upstream)
        served.wait_until_started(started["run_id"], what="the run to start")
        clock.advance(4)
        fake.finish(upstream)
        run = served.wait_until_completed(started["run_id"], what="the run to finish")
        assert (run["status"], run["conclusion"], run["deployment_url"]) == ("success", "success", DEPLOY_URL)
        assert all(s["duration_seconds"] is not None for s in run["steps"]) and len(run["steps"]) == 3
        assert run["duration_seconds"] >= 4

        fake.tokens.pop(TOKEN)  # the token is revoked upstream
        provider_checks.assert_trigger_refused(served, "web", ("github", "web"), TOKEN)
    provider_checks.assert_refusal_logged(served, "rejected the credentials", TOKEN)
