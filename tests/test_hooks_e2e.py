"""Provider webhooks in, end to end: a real ``serve`` (with its worker), the fake GitHub and
GitLab sending signed hooks, and a receiver for the gateway's outgoing webhooks. Polling is
set to once an hour, so everything seen here arrived by hook (or by the reconciler)."""

from __future__ import annotations

import hashlib
import hmac
import json
import signal
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from testkit.fake_github import FakeGitHub
from testkit.fake_gitlab import FakeGitLab
from testkit.gateway import write_gateway_config
from testkit.provider_api import provider_table
from testkit.receiver import Receiver
from testkit.server import FLASHFUSION, cli, cli_key, spawn, start_server, wait_for

pytestmark = pytest.mark.e2e
SECRET = "hook-secret-0123456789"
GH_TOKEN, GL_TOKEN = "ghp_hooksTestToken0123456789abcdefABCDEF", "glpat-hooksTestToken-0123456789"
ENV = {"FF_HOOKS_GH": GH_TOKEN, "FF_HOOKS_GL": GL_TOKEN, "FF_HOOK_SECRET": SECRET, "FLASHFUSION_WORKERS": "1"}
REPO, PROJECT = "acme/app", "acme/backend"
DEPLOYED = "https://app.acme.example"  # the GitHub workflow's environment URL


def hooked_provider(provider: str, url_key: str, url: str, token_env: str, poll: float, reconcile: float) -> str:
    """A provider table that takes signed webhooks and reconciles on its own interval."""
    return provider_table(
        provider,
        {
            url_key: url,
            "token_env": token_env,
            "poll_interval_seconds": poll,
            "webhook_secret_env": "FF_HOOK_SECRET",
            "reconcile_interval_seconds": reconcile,
        },
    )


def config_text(github_url: str, gitlab_url: str, reconcile: float, poll: float = 3600) -> str:
    return f"""
[webhooks]
allow_http = true
allow_private_networks = true
tick_seconds = 0.05
{hooked_provider("github", "base_url", github_url, "FF_HOOKS_GH", poll, reconcile)}
{hooked_provider("gitlab", "url", gitlab_url, "FF_HOOKS_GL", poll, reconcile)}
[pipelines.gh]
provider = "github"
repository_name = "{REPO}"
workflow = "deploy.yml"
triggers = {{ push = ["main", "release/*"] }}

[pipelines.gl]
provider = "gitlab"
repository_name = "{PROJECT}"
"""


@contextmanager
def world(
    tmp_path: Path, db_url: str, *, reconcile: float = 3600, poll: float = 3600, serve_args: tuple[str, ...] = ()
):
    with FakeGitHub(token=GH_TOKEN) as gh, FakeGitLab(token=GL_TOKEN) as gl, Receiver() as rx:
        gh.add_repo(REPO, branches=("main", "release/1.2", "feature/x"))
        gh.add_workflow(REPO, "deploy.yml", jobs=[("build", ["compile", "test"])], deploy=("production", DEPLOYED))
        gl.add_project(PROJECT)
        config = write_gateway_config(tmp_path, db_url, config_text(gh.url, gl.url, reconcile, poll))
        server = start_server(config, tmp_path, *serve_args, env=ENV)
        try:
            gh.hooks.add_target(f"{server.url}/hooks/github", SECRET)
            gl.hooks.add_target(f"{server.url}/hooks/gitlab", SECRET)
            cli(
                "webhooks",
                "create",
                "--url",
                rx.url(),
                "--events",
                "run.started,run.completed,run.failed",
                config=config,
                env=ENV,
            )
            key = cli_key(config, name="hooks", env=ENV)
            with server.client(key) as http:
                yield gh, gl, rx, server, http
        finally:
            server.process.stop(signal.SIGTERM)


def status(http: httpx.Client, run_id: str) -> dict:
    return http.get("/api/get-status", params={"run_id": run_id}).json()["run"]


def finish(provider: str, gh: FakeGitHub, gl: FakeGitLab, upstream_id: str) -> None:
    if provider == "github":
        gh.finish(int(upstream_id))
    else:
        while gl.pipeline(int(upstream_id)).status not in ("success", "failed"):
            gl.advance(int(upstream_id))


def start(http: httpx.Client, pipeline: str) -> dict:
    started = http.post("/api/trigger-pipeline", json={"pipeline_id": pipeline}).json()
    assert started["upstream_run_id"], started
    return started


def completions(rx: Receiver, run_id: str) -> list:
    return [r for r in rx.snapshot() if r.json.get("event") == "run.completed" and r.json["data"]["run_id"] == run_id]


@pytest.mark.parametrize("provider", ["github", "gitlab"])
def test_an_upstream_completion_arrives_by_hook_once_with_steps_and_never_moves_back(tmp_path, db_url, provider):
    with world(tmp_path, db_url) as (gh, gl, rx, server, http):
        fake = gh if provider == "github" else gl
        fake.hooks.duplicates = 3  # every delivery sent three times
        run = start(http, "gh" if provider == "github" else "gl")
        finish(provider, gh, gl, run["upstream_run_id"])
        wait_for(lambda: completions(rx, run["run_id"]), timeout=20, what="run.completed by hook")
        done = status(http, run["run_id"])
        assert (done["status"], done["phase"]) == ("success", "completed")
        assert done["steps"] and all(s["status"] == "success" for s in done["steps"])
        if provider == "github":  # by its deployment_status hook, as polling would find it
            assert done["deployment_url"] == DEPLOYED
            assert completions(rx, run["run_id"])[0].json["data"]["deployment_url"] == DEPLOYED
        fake.hooks.wait_idle()
        time.sleep(0.5)  # let the worker apply the late copies
        assert len(completions(rx, run["run_id"])) == 1
        before = status(http, run["run_id"])

        # An older "in progress" delivery after the completion leaves the run completed.
        if provider == "github":
            stale = gh.hooks._envelope("workflow_run-requested", gh.runs[int(run["upstream_run_id"])], "in_progress")
            stale["workflow_run"] = dict(
                gh.run_body(gh.runs[int(run["upstream_run_id"])]),
                status="in_progress",
                conclusion=None,
                updated_at="2001-01-01T00:00:00Z",
            )
            gh.hooks.send("workflow_run", stale)
        else:
            stale = gl.hooks.pipeline_body(gl.pipeline(int(run["upstream_run_id"])))
            stale["object_attributes"]["status"] = "running"
            gl.hooks.send("Pipeline Hook", stale)
        fake.hooks.wait_idle()
        time.sleep(0.5)
        assert status(http, run["run_id"]) == before

        # A tampered or missing signature is refused and stores nothing.
        body = json.dumps({"action": "completed", "workflow_run": {"id": 1}}).encode()
        if provider == "github":
            bad = hmac.new(b"wrong", body, hashlib.sha256).hexdigest()
            headers = [
                {"X-GitHub-Event": "workflow_run", "X-GitHub-Delivery": "x1", "X-Hub-Signature-256": f"sha256={bad}"},
                {"X-GitHub-Event": "workflow_run", "X-GitHub-Delivery": "x2"},
            ]
        else:
            headers = [
                {"X-Gitlab-Event": "Pipeline Hook", "X-Gitlab-Token": SECRET + "x"},
                {"X-Gitlab-Event": "Pipeline Hook"},
            ]
        for h in headers:
            answer = httpx.post(f"{server.url}/hooks/{provider}", content=body, headers=h)
            assert answer.status_code == 401
            assert answer.json() == {
                "error": "Invalid signature",
                "message": "The webhook signature is missing or does not match",
            }
        big = httpx.post(f"{server.url}/hooks/{provider}", content=b"x" * (1024 * 1024 + 1), headers=headers[0])
        assert big.status_code == 413
        assert status(http, run["run_id"]) == before


def test_with_a_fifth_of_the_hooks_dropped_every_run_converges_within_the_reconcile_interval(tmp_path, db_url):
    """While hooks arrive the runs are polled every reconcile interval (here 2 s, the normal
    poll interval 1 s: a provider answers from its cache within its own poll interval)."""
    reconcile = 2.0
    with world(tmp_path, db_url, reconcile=reconcile, poll=1) as (gh, gl, rx, server, http):
        gh.hooks.drop_rate = gl.hooks.drop_rate = 0.2
        runs = [(p, start(http, "gh" if p == "github" else "gl")) for p in ("github", "gitlab") for _ in range(3)]
        for provider, run in runs:
            finish(provider, gh, gl, run["upstream_run_id"])
        gh.hooks.wait_idle()
        gl.hooks.wait_idle()
        assert gh.hooks.dropped or gl.hooks.dropped
        for provider, run in runs:
            wait_for(
                lambda: status(http, run["run_id"])["phase"] == "completed",
                timeout=reconcile * 3 + 10,
                what=f"convergence of a {provider} run by the reconciler",
            )
            if provider == "github":  # dropped deployment hooks too: the completion looks the URL up
                assert status(http, run["run_id"])["deployment_url"] == DEPLOYED


def test_hooks_accepted_before_the_worker_is_killed_are_applied_after_restart(tmp_path, db_url):
    with world(tmp_path, db_url, serve_args=("--no-worker",)) as (gh, gl, rx, server, http):
        runs = [start(http, "gl") for _ in range(3)]
        for run in runs:  # no worker yet: the hooks wait in the inbox
            finish("gitlab", gh, gl, run["upstream_run_id"])
        gl.hooks.wait_idle()
        assert all(code == 202 for _, _, code in gl.hooks.sent)
        assert all(status(http, r["run_id"])["phase"] != "completed" for r in runs)
        worker = spawn([FLASHFUSION, "--config", str(server.config), "worker"], tmp_path / "worker1.log", env=ENV)
        time.sleep(0.3)
        worker.stop(signal.SIGKILL)
        worker = spawn([FLASHFUSION, "--config", str(server.config), "worker"], tmp_path / "worker2.log", env=ENV)
        try:
            for run in runs:
                wait_for(
                    lambda: status(http, run["run_id"])["phase"] == "completed",
                    timeout=30,
                    what="the inbox applied after the restart",
                )
        finally:
            worker.stop(signal.SIGTERM)


def test_a_push_to_a_matching_branch_starts_the_pipeline_once_per_commit(tmp_path, db_url):
    """GitHub's push hook reaches the push trigger: a matching branch starts one run (however
    often the delivery comes), dispatched to GitHub on the pushed commit's branch; another
    branch starts nothing."""
    with world(tmp_path, db_url) as (gh, gl, rx, server, http):
        sha = "9049f1265b7d61be4a8904a9a27120d2064dab3b"
        for _ in range(3):
            gh.hooks.push(REPO, "release/1.2", sha, pusher="mona")
        gh.hooks.push(REPO, "feature/x", "1" * 40, pusher="mona")
        gh.hooks.wait_idle()

        def pushed():
            runs = http.get("/api/runs", params={"pipeline_id": "gh"}).json()["runs"]
            return runs if runs and all(r["phase"] != "queued" for r in runs) else None

        runs = wait_for(pushed, what="the pushed run dispatched")
        time.sleep(1.0)  # the duplicate deliveries and the other branch have been applied by now
        runs = http.get("/api/runs", params={"pipeline_id": "gh"}).json()["runs"]
        assert len(runs) == 1, runs
        trigger = runs[0]["trigger"]
        assert trigger["kind"] == "push" and trigger["commit"] == sha and trigger["pusher"] == "mona"
        assert runs[0]["branch"] == "release/1.2"
        assert runs[0]["status"] != "failed", runs[0]["error"]
        assert [d["body"]["ref"] for d in gh.dispatches] == ["release/1.2"]
