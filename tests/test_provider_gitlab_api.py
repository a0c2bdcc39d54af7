"""GitLab CI pipelines through the gateway's API: the provider built from the configuration
(``[providers.gitlab] url`` = the fake, token from the configuration's environment), triggered
with ``trigger-pipeline``, followed by a worker, read with ``get-status``."""

from __future__ import annotations

import provider_checks
import pytest
from testkit import provider_api
from testkit.fake_gitlab import FakeGitLab, JobSpec
from testkit.gateway import write_gateway_config

TOKEN_ENV = "FF_GATEWAY_TEST_GITLAB_TOKEN"
TOKEN = "glpat-gatewayTestToken-0123456789"
PROJECT = "acme/backend/api"
PIPELINES = {
    "api": {"name": "API", "repository_name": PROJECT, "branch": "main"},
    "byid": {"repository_name": "77"},
    "manual": {"repository_name": "acme/manual-deploy"},
    "flaky": {"repository_name": "acme/flaky"},
    "gone": {"repository_name": "acme/no-such-project"},
}
DEPLOY_URL = "https://api.acme.example"


def provider_config(url: str, **settings) -> str:
    table = {
        "url": url,
        "token_env": TOKEN_ENV,
        "poll_interval_seconds": provider_api.POLL_SECONDS,
        "timeout_seconds": 5,
        **settings,
    }
    return provider_api.provider_table("gitlab", table) + provider_checks.pipeline_tables("gitlab", PIPELINES)


@pytest.fixture
def fake():
    with FakeGitLab(token=TOKEN) as server:
        project = server.add_project(PROJECT)
        server.add_environment(project, "production", DEPLOY_URL)
        server.add_project("acme/by-id", id=77)
        server.add_project(
            "acme/flaky",
            jobs=(
                JobSpec("build", "build"),
                JobSpec("unit", "test", outcome="failed"),
                JobSpec("deploy", "deploy", environment="production"),
            ),
        )
        server.add_project(
            "acme/manual-deploy", jobs=(JobSpec("build", "build"), JobSpec("deploy", "deploy", when="manual"))
        )
        yield server
        assert not server.errors, server.errors


make_kit, kit = provider_api.kit_fixtures(provider_config, {TOKEN_ENV: TOKEN})


def test_trigger_follows_the_pipeline_to_success_with_jobs_durations_and_deployment(kit, fake):
    answer = kit.trigger("api", inputs={"VERSION": "1.2.3"})
    assert answer.status_code == 200, answer.text
    started = answer.json
    pid = int(started["upstream_run_id"])
    assert started["status"] == "running" and started["phase"] == "dispatching"
    assert started["html_url"] == f"{fake.url}/{PROJECT}/-/pipelines/{pid}"
    assert fake.pipeline(pid).variables == {"VERSION": "1.2.3"}
    run_id = started["run_id"]

    kit.cycle(2)  # unchanged since the dispatch (its answer is the baseline): nothing to report
    run = kit.status(run_id)
    # GitLab's word for the new pipeline comes with the dispatch answer, before any poll
    assert (run["status"], run["phase"], run["provider_status"]) == (
        "running",
        "dispatching",
        fake.pipeline(pid).status,
    )
    assert run["provider_status"] in ("created", "pending")
    for waiting in ("waiting_for_resource", "pending"):
        fake.set_status(pid, waiting)
        run = kit.cycle_until(lambda r: r["provider_status"] == waiting, run_id)
        assert (run["status"], run["phase"]) == ("running", "dispatching")
    assert fake.counts["pipeline.create"] == 1

    seen = provider_checks.cycle_until_upstream_finishes(
        kit, run_id, lambda: fake.pipeline(pid).status in ("success", "failed"), fake.tick, lambda: fake.advance(pid)
    )
    for run in seen:
        if run["provider_status"] == "running":
            assert run["phase"] == "in_progress" and run["status"] == "running" and run["steps"]
    assert ("in_progress", "running") in [(run["phase"], run["provider_status"]) for run in seen]

    run = kit.cycle_until(lambda r: r["phase"] == "completed", run_id)
    assert (run["status"], run["conclusion"], run["provider_status"]) == ("success", "success", "success")
    jobs = {j.spec.name: j for j in fake.jobs(pid)}
    assert [(s["stage"], s["name"]) for s in run["steps"]] == [
        ("build", "build"),
        ("test", "unit"),
        ("test", "lint"),
        ("deploy", "deploy"),
    ]
    for step in run["steps"]:
        job = jobs[step["name"]]
        assert step["status"] == "success"
        assert step["duration_seconds"] == (job.finished_at - job.started_at).total_seconds() == 6
        assert step["url"] == f"{fake.url}/{PROJECT}/-/jobs/{job.id}"
    p = fake.pipeline(pid)
    assert run["duration_seconds"] == (p.finished_at - p.started_at).total_seconds() == 18
    assert run["html_url"] == started["html_url"]
    assert run["deployment_url"] == DEPLOY_URL

    kit.cycle(3)
    assert kit.events(run_id) == ["deployment.success", "run.completed", "run.started"]


def test_a_pipeline_pending_upstream_is_created_once(kit, fake):
    """Core regression: GitLab's ``pending`` maps to phase "queued", which used to put the run
    back in the core's "not dispatched yet" phase: every worker tick created another pipeline."""
    run_id = kit.trigger("api").json["run_id"]
    fake.set_status(int(kit.status(run_id)["upstream_run_id"]), "pending")  # a change, still pending
    kit.cycle(4)
    assert fake.counts["pipeline.create"] == 1
    run = kit.status(run_id)
    assert (run["status"], run["phase"], run["provider_status"]) == ("running", "dispatching", "pending")


def test_failed_pipeline_fails_the_run_and_names_the_job(kit, fake):
    run_id = kit.trigger("flaky").json["run_id"]
    pid = int(kit.status(run_id)["upstream_run_id"])
    while fake.pipeline(pid).status not in ("success", "failed"):
        fake.advance(pid)
    run = kit.cycle_until(lambda r: r["phase"] == "completed", run_id)
    assert (run["status"], run["conclusion"], run["provider_status"]) == ("failed", "failure", "failed")
    assert run["failed_step"] == "unit"
    assert [s["status"] for s in run["steps"]] == ["success", "failed", "skipped"]
    assert run["deployment_url"] is None
    assert kit.events(run_id) == ["run.failed", "run.started"]


def test_a_numeric_project_id_works(kit, fake):
    started = kit.trigger("byid").json
    pid = int(started["upstream_run_id"])
    assert fake.pipeline(pid).project.id == 77
    for _ in range(4):
        fake.advance(pid)
    run = kit.cycle_until(lambda r: r["phase"] == "completed", started["run_id"])
    assert run["status"] == "success" and len(run["steps"]) == 4


def test_manual_stays_running_until_played(kit, fake):
    run_id = kit.trigger("manual").json["run_id"]
    pid = int(kit.status(run_id)["upstream_run_id"])
    fake.advance(pid)
    fake.advance(pid)
    assert fake.pipeline(pid).status == "manual"
    kit.cycle(3)
    run = kit.status(run_id)
    assert (run["status"], run["phase"], run["provider_status"], run["conclusion"]) == (
        "running",
        "in_progress",
        "manual",
        None,
    )
    assert [(s["name"], s["status"], s.get("conclusion")) for s in run["steps"]] == [
        ("build", "success", "success"),
        ("deploy", "pending", "action_required"),
    ]

    fake.play(fake.job_id(pid, "deploy"))
    fake.advance(pid)
    fake.advance(pid)
    run = kit.cycle_until(lambda r: r["phase"] == "completed", run_id)
    assert (run["status"], run["conclusion"]) == ("success", "success")


def test_cancel_run_cancels_the_pipeline(kit, fake):
    run_id = kit.trigger("api").json["run_id"]
    pid = int(kit.status(run_id)["upstream_run_id"])
    fake.advance(pid)
    kit.cycle_until(lambda r: r["phase"] == "in_progress", run_id)
    assert kit.cancel(run_id).status_code == 200
    run = kit.cycle_until(lambda r: r["phase"] == "completed", run_id)
    assert fake.counts["pipeline.cancel"] == 1
    assert (run["status"], run["conclusion"], run["provider_status"]) == ("failed", "cancelled", "canceled")


@pytest.mark.parametrize(
    "pipeline_id, body, gitlab_says",
    [
        ("api", {"branch": "no-such-ref"}, "Reference not found"),
        ("gone", {}, "404 Project Not Found"),
    ],
)
def test_upstream_refusal_answers_422_with_gitlabs_message_and_leaves_a_failed_run(kit, pipeline_id, body, gitlab_says):
    assert pipeline_id in provider_api.assert_upstream_refused(kit, pipeline_id, body, gitlab_says)


def test_pipeline_creation_rate_limit_answers_502_with_retry_after(kit, fake):
    fake.throttle(route="pipeline.create", retry_after=42)
    answer = kit.trigger("api")
    assert answer.status_code == 502 and answer.headers["Retry-After"] == "42"
    assert "rate limit" in answer.json["message"]
    [run] = kit.runs("api")
    assert (run["status"], run["conclusion"]) == ("failed", "dispatch_error")


def test_bad_credentials_answer_502_naming_provider_and_pipeline_never_the_token(make_kit, fake, caplog):
    wrong = "glpat-wrongToken-000000000000"
    message = provider_api.assert_bad_token_refused(make_kit, "api", TOKEN_ENV, wrong, caplog)
    assert "gitlab" in message and "'api'" in message and "401" in message


def test_a_worker_poll_cycle_with_100_quiet_pipelines_costs_one_request(kit, fake):
    run_ids = []
    for _ in range(100):
        answer = kit.trigger("api")
        assert answer.status_code == 200, answer.text
        run_ids.append(answer.json["run_id"])
    pids = [int(kit.status(r)["upstream_run_id"]) for r in run_ids]
    for pid in pids[::2]:
        fake.advance(pid)  # half of them running, half pending
    kit.cycle()  # pays for the pipelines that changed since their dispatch
    assert {kit.status(r)["phase"] for r in run_ids} == {"dispatching", "in_progress"}
    assert fake.counts["pipeline.create"] == 100

    for _ in range(3):
        fake.reset_counters()
        kit.cycle()
        print(f"\ngateway worker cycle, 100 quiet GitLab pipelines: {fake.total} requests {dict(fake.counts)}")
        assert dict(fake.counts) == {"pipelines.list": 1}


# ---------------------------------------------------------------------------- doctor and readyz


def test_doctor_reports_a_missing_project_bad_credentials_and_a_weak_token(tmp_path, db_url, fake, monkeypatch, capsys):
    config = write_gateway_config(tmp_path, db_url, provider_config(fake.url))
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    fake.reset_counters()
    lines = provider_checks.run_doctor(capsys, config, exits=1).splitlines()
    for pid in ("api", "byid", "flaky", "manual", "demo"):
        assert any(line.startswith(f"{pid}: ok (") for line in lines), (pid, lines)
    assert (
        "gone: gitlab: checking the project for pipeline 'gone': not found (HTTP 404: 404 Project Not Found); "
        "check repository_name and that the token can see the project" in lines
    )
    assert lines[-1] == "8 pipelines checked: 7 ok, 1 with problems"
    assert fake.counts["project"] == 5  # one request per GitLab pipeline

    wrong = "glpat-wrongToken-000000000000"
    monkeypatch.setenv(TOKEN_ENV, wrong)
    out = provider_checks.run_doctor(capsys, config, "api", exits=1)
    assert out.splitlines()[0] == (
        "api: gitlab: checking the project for pipeline 'api': GitLab refused the "
        "credentials (HTTP 401: 401 Unauthorized)"
    )
    assert wrong not in out

    fake.add_token("glpat-reporter-000000000", access_level=20)
    monkeypatch.setenv(TOKEN_ENV, "glpat-reporter-000000000")
    assert provider_checks.run_doctor(capsys, config, "api", exits=1).splitlines()[0] == (
        "api: gitlab: pipeline 'api': the token has access level 20 on 'acme/backend/api'; creating pipelines "
        "needs Developer (30) or a trigger token"
    )


def test_readyz_reports_a_missing_project_as_degraded_with_200(kit):
    body = provider_api.assert_readyz_degraded(kit)
    assert body["pipelines"]["api"] == {"provider": "gitlab", "status": "ok"}
    assert body["pipelines"]["byid"] == {"provider": "gitlab", "status": "ok"}
    assert body["pipelines"]["gone"]["status"] == "degraded"
    assert "404 Project Not Found" in body["pipelines"]["gone"]["problems"][0]


def test_readyz_with_bad_credentials_is_degraded_and_never_shows_the_token(make_kit, fake):
    wrong = "glpat-wrongToken-000000000000"
    answer = make_kit(env={TOKEN_ENV: wrong}).readyz()
    assert answer.status_code == 200 and answer.json["status"] == "degraded"
    gitlab = {pid: p for pid, p in answer.json["pipelines"].items() if p["provider"] == "gitlab"}
    assert len(gitlab) == 5 and all("refused the credentials (HTTP 401" in p["problems"][0] for p in gitlab.values())
    assert wrong not in answer.text
    assert make_kit(env={}).readyz().json["pipelines"]["api"]["problems"] == [
        f"gitlab: pipeline 'api': environment variable {TOKEN_ENV} (API token) is not set"
    ]


# ---------------------------------------------------------------------------- one real serve


@pytest.mark.e2e
def test_real_serve_follows_a_gitlab_pipeline_and_never_shows_the_token(tmp_path, fake):
    """One real serve per provider is enough: GitHub's runs on SQLite, this one on PostgreSQL
    when the suite has it."""
    from testkit.db import AVAILABLE_BACKENDS, database_url

    db_url = database_url(AVAILABLE_BACKENDS[-1], tmp_path)
    config_text = provider_config(fake.url)
    with provider_api.serving_with_worker(tmp_path, db_url, config_text, {TOKEN_ENV: TOKEN}, "gl") as served:
        started = served.trigger("api")
        pid = int(started["upstream_run_id"])
        fake.advance(pid)
        served.wait_until_started(started["run_id"], what="the pipeline to start")
        while fake.pipeline(pid).status == "running":
            fake.tick(2)
            fake.advance(pid)
        run = served.wait_until_completed(started["run_id"], what="the pipeline to finish")
        assert (run["status"], run["conclusion"], run["deployment_url"]) == ("success", "success", DEPLOY_URL)
        assert len(run["steps"]) == 4 and all(s["duration_seconds"] for s in run["steps"])
        assert run["duration_seconds"] > 0

        fake.remove_token(TOKEN)  # the token is revoked upstream
        provider_checks.assert_trigger_refused(served, "api", ("gitlab", "'api'"), TOKEN)
    provider_checks.assert_refusal_logged(served, "refused the credentials", TOKEN)
