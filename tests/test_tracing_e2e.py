"""Optional OpenTelemetry tracing through a real ``serve`` (gunicorn and the worker) exporting
to a real OTLP/HTTP receiver on loopback: a span per API request with its route and status,
per dispatch and per poll, and the trace's ``traceparent`` passed as a workflow input to the
pipelines that declare it, and only to them. Off by default, without importing OpenTelemetry."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest
from testkit.db import database_url, fresh_database
from testkit.fake_github import FakeGitHub
from testkit.gateway import write_gateway_config
from testkit.otlp_receiver import OtlpReceiver
from testkit.server import cli, start_server, wait_for

from flashfusion.core.config import parse_config
from flashfusion.core.errors import ConfigError
from flashfusion.core.observability import tracing

TOKEN = "ghp_tracingTestToken0123456789abcdefABCDEF"
ENV = {"FF_TRACING_GH": TOKEN, "FLASHFUSION_WORKERS": "1"}
REPO = "acme/app"
RUNS_LIST = "GET /repos/{owner}/{repo}/actions/runs"


@pytest.mark.e2e
def test_spans_reach_the_collector_and_the_dispatch_carries_the_trace(tmp_path):
    db_url = database_url("sqlite", tmp_path)  # once, on SQLite: nothing here depends on the database
    fresh_database(db_url)
    with FakeGitHub(token=TOKEN) as gh, OtlpReceiver() as otlp:
        gh.add_repo(REPO)
        gh.add_workflow(REPO, "traced.yml", inputs=["traceparent"])
        gh.add_workflow(REPO, "plain.yml")  # declares no input: sending one would be refused (422)
        config = write_gateway_config(
            tmp_path,
            db_url,
            f"""
[tracing]
enabled = true
endpoint = "{otlp.url}"
service_name = "ff-under-test"
dispatch_input_pipelines = ["traced"]

[providers.github]
base_url = "{gh.url}"
token_env = "FF_TRACING_GH"
poll_interval_seconds = 0.2

[pipelines.traced]
provider = "github"
repository_name = "{REPO}"
workflow = "traced.yml"

[pipelines.plain]
provider = "github"
repository_name = "{REPO}"
workflow = "plain.yml"
""",
        )
        server = start_server(config, tmp_path, env=ENV)
        try:
            key = json.loads(
                cli(
                    "keys",
                    "create",
                    "--name",
                    "k",
                    "--permissions",
                    "trigger_pipeline,read_runs",
                    "--json",
                    config=config,
                    env=ENV,
                ).stdout
            )["plaintext_key"]
            with server.client(key) as http:
                for pipeline in ("traced", "plain"):
                    answer = http.post("/api/trigger-pipeline", json={"pipeline_id": pipeline})
                    assert answer.status_code == 200, answer.text
                assert http.get("/api/get-status", params={"run_id": "nope"}).status_code == 404
            wait_for(lambda: gh.stats()["by_route"].get(RUNS_LIST, 0) > 0, what="the worker to poll GitHub")
        finally:
            server.process.stop(signal.SIGTERM)  # each process exports what it holds as it exits

        traced, plain = (d["body"]["inputs"] for d in gh.dispatches)
        assert "traceparent" not in plain
        version, trace_id, parent_id, flags = traced["traceparent"].split("-")
        spans = otlp.wait_for(lambda spans: any(s.name == "poll" for s in spans) and spans)
        assert {s.service for s in spans} == {"ff-under-test"}
        assert otlp.bad_requests == 0
        requests = [s for s in spans if s.attributes.get("http.route") == "/api/trigger-pipeline"]
        assert len(requests) == 2
        assert all(
            s.name == "POST /api/trigger-pipeline" and s.attributes["http.response.status_code"] == 200
            for s in requests
        )
        [lookup] = [s for s in spans if s.attributes.get("http.route") == "/api/get-status"]
        assert lookup.attributes["http.response.status_code"] == 404
        [dispatch] = [s for s in spans if s.name == "dispatch" and s.attributes["flashfusion.pipeline"] == "traced"]
        [request] = [s for s in requests if s.trace_id == dispatch.trace_id]
        assert dispatch.parent_span_id == request.span_id  # the dispatch is part of the trigger's trace
        assert (version, trace_id, parent_id) == ("00", dispatch.trace_id, dispatch.span_id)
        assert int(flags, 16) & 1  # sampled
        polls = [s for s in spans if s.name == "poll"]
        assert polls and all(s.attributes["flashfusion.provider"] == "github" for s in polls)


def test_tracing_is_off_by_default_and_never_imports_opentelemetry(tmp_path):
    script = (
        "import sys; from flashfusion.core import app, worker, cli; "
        "from flashfusion.core.config import parse_config; "
        "app.tracing.configure(parse_config({}).tracing); "
        "assert not app.tracing.enabled(); "
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_enabling_tracing_without_the_packages_names_the_extra(monkeypatch):
    monkeypatch.setitem(tracing.PACKAGES, "flashfusion_no_such_module.trace", "opentelemetry-sdk")
    with pytest.raises(ConfigError) as caught:
        parse_config({"tracing": {"enabled": True}})
    assert "tracing.enabled" in str(caught.value) and "flashfusion[tracing]" in str(caught.value)
    parse_config({"tracing": {"enabled": False}})  # off: nothing needed


def test_trace_input_pipelines_must_exist():
    with pytest.raises(ConfigError) as caught:
        parse_config({"tracing": {"dispatch_input_pipelines": ["ghost"]}})
    assert "tracing.dispatch_input_pipelines" in str(caught.value) and "ghost" in str(caught.value)
