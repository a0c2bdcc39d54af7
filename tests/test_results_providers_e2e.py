"""Outputs, artifacts and cancel-with-the-caller through a real ``serve`` against the fake
GitHub and GitLab: artifacts listed and downloaded through the gateway with the provider's
credentials, refused (404) to a key scoped to another pipeline, outputs read from the
outputs artifact (GitHub) or dotenv reports (GitLab) and gated on; a SIGTERM to a waiting
CLI cancels the upstream run."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import zipfile
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from testkit.fake_github import FakeGitHub
from testkit.fake_gitlab import FakeGitLab
from testkit.gateway import write_gateway_config
from testkit.server import FLASHFUSION, cli_key, start_server, terminate_when, wait_for

pytestmark = pytest.mark.e2e
GH_TOKEN, GL_TOKEN = "ghp_resultsTestToken0123456789abcdefABCDEF", "glpat-resultsTestToken-0123456789"
ENV = {"FF_RESULTS_GH": GH_TOKEN, "FF_RESULTS_GL": GL_TOKEN, "FLASHFUSION_WORKERS": "1"}
REPO, PROJECT = "acme/app", "acme/backend"


def config_text(github_url: str, gitlab_url: str) -> str:
    return f"""
[providers.github]
base_url = "{github_url}"
token_env = "FF_RESULTS_GH"
poll_interval_seconds = 0.2

[providers.gitlab]
url = "{gitlab_url}"
token_env = "FF_RESULTS_GL"
poll_interval_seconds = 0.2

[pipelines.gh]
provider = "github"
repository_name = "{REPO}"
workflow = "deploy.yml"
quality_gates = {{ outputs = {{ coverage = ">= 80" }} }}

[pipelines.gl]
provider = "gitlab"
repository_name = "{PROJECT}"
quality_gates = {{ outputs = {{ coverage = ">= 80" }} }}
"""


@contextmanager
def world(tmp_path: Path, db_url: str):
    with FakeGitHub(token=GH_TOKEN) as gh, FakeGitLab(token=GL_TOKEN) as gl:
        gh.add_repo(REPO)
        gh.add_workflow(REPO, "deploy.yml", jobs=[("build", ["compile", "test"])])
        gl.add_project(PROJECT)
        config = write_gateway_config(tmp_path, db_url, config_text(gh.url, gl.url))
        server = start_server(config, tmp_path, env=ENV)
        try:
            yield gh, gl, server, config
        finally:
            server.process.stop(signal.SIGTERM)


def make_key(config: Path, pipelines: str = "") -> str:
    return cli_key(config, pipelines=pipelines, env=ENV)


def status(http: httpx.Client, run_id: str) -> dict:
    return http.get("/api/get-status", params={"run_id": run_id}).json()["run"]


def finished(http: httpx.Client, run_id: str) -> dict:
    return wait_for(
        lambda: (r := status(http, run_id))["phase"] == "completed" and r, timeout=60, what=f"run {run_id} to finish"
    )


def unzip(data: bytes) -> dict[str, bytes]:
    archive = zipfile.ZipFile(io.BytesIO(data))
    return {name: archive.read(name) for name in archive.namelist()}


def test_github_outputs_and_artifacts_through_the_gateway(tmp_path, db_url):
    with world(tmp_path, db_url) as (gh, gl, server, config):
        with server.client(make_key(config)) as http:
            passing = http.post("/api/trigger-pipeline", json={"pipeline_id": "gh"}).json()
            failing = http.post("/api/trigger-pipeline", json={"pipeline_id": "gh"}).json()
            gh.add_artifact(
                int(passing["upstream_run_id"]),
                "flashfusion-outputs",
                {"outputs.env": b"coverage=85\nNOTES<<EOF\na\nb\nEOF\n"},
            )
            gh.add_artifact(int(passing["upstream_run_id"]), "report", {"report.txt": b"all good"})
            gh.add_artifact(
                int(failing["upstream_run_id"]), "flashfusion-outputs", {"outputs.json": b'{"coverage": 70}'}
            )
            gh.finish(int(passing["upstream_run_id"]))
            gh.finish(int(failing["upstream_run_id"]))
            ok, low = finished(http, passing["run_id"]), finished(http, failing["run_id"])

            assert (ok["status"], ok["outputs"]) == ("success", {"coverage": "85", "NOTES": "a\nb"})
            assert ok["quality_gates"][0]["passed"] is True
            assert {a["name"] for a in ok["artifacts"]} == {"flashfusion-outputs", "report"}
            report = next(a for a in ok["artifacts"] if a["name"] == "report")
            assert report["size"] > 0 and report["expires_at"]
            got = http.get(report["download_url"])
            assert got.status_code == 200, got.text
            assert unzip(got.content) == {"report.txt": b"all good"}
            assert gh.stats()["by_route"]["GET blob"] >= 3  # two outputs artifacts and this download

            assert (low["status"], low["conclusion"]) == ("failed", "quality_gate_failed")
            assert low["quality_gates"][0]["actual"] == "70"

        with server.client(make_key(config, "gl")) as other:
            assert other.get(report["download_url"]).status_code == 404


def test_gitlab_outputs_from_dotenv_reports_and_job_artifacts(tmp_path, db_url):
    with world(tmp_path, db_url) as (gh, gl, server, config):
        with server.client(make_key(config)) as http:
            started = http.post("/api/trigger-pipeline", json={"pipeline_id": "gl"}).json()
            upstream = int(started["upstream_run_id"])
            build = gl.job_id(upstream, "build")
            gl.add_job_artifacts(build, {"dist/app.txt": b"binary"}, dotenv=b"coverage=91\nVERSION=1.2.3\n")
            while gl.pipeline(upstream).status not in ("success", "failed"):
                gl.advance(upstream)
            run = finished(http, started["run_id"])
            assert (run["status"], run["outputs"]) == ("success", {"coverage": "91", "VERSION": "1.2.3"})
            [artifact] = run["artifacts"]
            assert artifact["name"] == "build" and artifact["size"] > 0
            got = http.get(artifact["download_url"])
            assert got.status_code == 200 and unzip(got.content)["dist/app.txt"] == b"binary"
        with server.client(make_key(config, "gh")) as other:
            assert other.get(artifact["download_url"]).status_code == 404


def test_sigterm_to_a_waiting_cli_cancels_the_github_run(tmp_path, db_url):
    with world(tmp_path, db_url) as (gh, gl, server, config):
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("CI", "GITHUB_", "GITLAB_", "FLASHFUSION_"))}
        clean.update(FLASHFUSION_URL=server.url, FLASHFUSION_API_KEY=make_key(config), FLASHFUSION_CANCEL_GRACE="30")
        proc = subprocess.Popen(
            [FLASHFUSION, "trigger", "gh", "--wait"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=clean,
        )

        def dispatched(first: str) -> None:
            assert "started for pipeline gh" in first, first
            wait_for(lambda: gh.runs, what="the dispatch to reach the fake")

        _, out, err = terminate_when(proc, dispatched)
        assert proc.returncode == 143, out + err
        assert gh.stats()["by_route"]["POST /repos/{owner}/{repo}/actions/runs/{run_id}/cancel"] == 1
        assert "conclusion cancelled" in out


def test_fail_fast_group_cancels_the_github_run_when_the_gitlab_one_fails(tmp_path, db_url):
    with world(tmp_path, db_url) as (gh, gl, server, config):
        key = make_key(config)
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("CI", "GITHUB_", "GITLAB_", "FLASHFUSION_"))}
        clean.update(FLASHFUSION_URL=server.url, FLASHFUSION_API_KEY=key, FLASHFUSION_CANCEL_GRACE="30")
        proc = subprocess.Popen(
            [FLASHFUSION, "trigger", "gh", "gl", "--wait", "--fail-fast"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=clean,
        )
        try:
            lines = [proc.stdout.readline() for _ in range(3)]
            started = [re.search(r"run (\S+) started for pipeline (\S+)", line) for line in lines[1:]]
            run_ids = {m.group(2): m.group(1) for m in started}
            with server.client(key) as http:
                upstream = wait_for(lambda: status(http, run_ids["gl"])["upstream_run_id"], what="the GitLab pipeline")
                gl.set_status(int(upstream), "failed")
                out, err = proc.communicate(timeout=90)
                gh_run = status(http, run_ids["gh"])
                group = http.get("/api/get-group", params={"group_id": gh_run["group_id"]}).json()["group"]
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 1, out + err
        assert "cancelling the others (--fail-fast)" in out
        assert gh.stats()["by_route"]["POST /repos/{owner}/{repo}/actions/runs/{run_id}/cancel"] == 1
        assert gh_run["conclusion"] == "cancelled"
        assert group["status"] == "failed" and set(group["failed_runs"]) == set(run_ids.values())
