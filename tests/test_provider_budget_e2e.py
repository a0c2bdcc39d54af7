"""The providers' remaining API budget on ``/metrics`` of a real ``serve``: after runs against
the fake GitHub and GitLab, the gauges say what the fakes' latest answers said; the local
provider, which has no budget, exposes none."""

from __future__ import annotations

import signal
import sys

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from test_results_providers_e2e import ENV, GH_TOKEN, GL_TOKEN, PROJECT, REPO, config_text, finished, make_key
from testkit.db import database_url, fresh_database
from testkit.fake_github import FakeGitHub
from testkit.fake_gitlab import FakeGitLab
from testkit.gateway import write_gateway_config
from testkit.server import start_server, wait_for

pytestmark = pytest.mark.e2e
BUDGET_METRICS = (
    "flashfusion_provider_budget_remaining",
    "flashfusion_provider_budget_limit",
    "flashfusion_provider_budget_reset_timestamp_seconds",
)


def budgets(url: str) -> dict[str, dict[str, float]]:
    """provider -> {metric name: value} of the budget gauges, read with prometheus_client's parser."""
    found: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(httpx.get(url + "/metrics", timeout=10).text):
        for sample in family.samples:
            if sample.name in BUDGET_METRICS:
                found.setdefault(sample.labels["provider"], {})[sample.name] = sample.value
    return found


def test_budget_gauges_follow_what_github_and_gitlab_said_and_local_has_none(tmp_path):
    db_url = database_url("sqlite", tmp_path)  # once, on SQLite: nothing here depends on the database
    fresh_database(db_url)
    with FakeGitHub(token=GH_TOKEN, rate_limit=4321) as gh, FakeGitLab(token=GL_TOKEN) as gl:
        gh.add_repo(REPO)
        gh.add_workflow(REPO, "deploy.yml", jobs=[("build", ["compile"])])
        gl.add_project(PROJECT)
        gl.set_rate_limit(777, observed=10, reset_in=600)
        config = write_gateway_config(
            tmp_path,
            db_url,
            config_text(gh.url, gl.url)
            + f"""
[pipelines.here]
provider = "local"
repository_name = "local/here"
steps = [{{ name = "hello", run = "{sys.executable} -c pass" }}]
""",
        )
        server = start_server(config, tmp_path, env=ENV)
        try:
            with server.client(make_key(config)) as http:
                assert budgets(server.url) == {}  # nobody asked upstream yet: nothing made up
                runs = {
                    p: http.post("/api/trigger-pipeline", json={"pipeline_id": p}).json() for p in ("gh", "gl", "here")
                }
                gh.finish(int(runs["gh"]["upstream_run_id"]))
                upstream = int(runs["gl"]["upstream_run_id"])
                while gl.pipeline(upstream).status not in ("success", "failed"):
                    gl.advance(upstream)
                for started in runs.values():
                    finished(http, started["run_id"])
            # no active runs are left, so the fakes' counts stand still: the gauges must reach them
            wait_for(
                lambda: budgets(server.url).get("github", {}).get(BUDGET_METRICS[0]) == gh.remaining,
                what=f"github's budget gauge to equal the fake's {gh.remaining}",
            )
            wait_for(
                lambda: budgets(server.url).get("gitlab", {}).get(BUDGET_METRICS[0]) == gl.rate_remaining,
                what=f"gitlab's budget gauge to equal the fake's {gl.rate_remaining}",
            )
            seen = budgets(server.url)
            assert gh.remaining < 4321 and gl.rate_remaining < 767  # the runs did cost requests
            assert seen["github"][BUDGET_METRICS[1]] == 4321
            assert seen["github"][BUDGET_METRICS[2]] == int(gh.reset_at)
            assert seen["gitlab"][BUDGET_METRICS[1]] == 777
            assert "local" not in seen
        finally:
            server.process.stop(signal.SIGTERM)
