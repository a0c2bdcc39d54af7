"""The dashboard and provider webhooks: runs that upstream started show "started upstream",
and the pipelines page says when a pipeline's provider hooks are silent (what ``/readyz`` and
``doctor`` report)."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from test_dashboard import WEBHOOKS, Browser, make_run, make_user
from test_dashboard_runpage import WEB_PIPELINE

from flashfusion.core.hooks.apply import apply_delivery
from flashfusion.core.storage.db import database, to_db_time, utcnow
from flashfusion.core.storage.models import InboundHook, Run

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "hooks" / "github"
HOOKED = (
    WEBHOOKS
    + """
[providers.github]
token_env = "FF_DASH_GH_TOKEN"
webhook_secret_env = "FF_DASH_HOOK_SECRET"
reconcile_interval_seconds = 300
"""
    + WEB_PIPELINE
)


EXTRA_CONFIG = HOOKED  # added to the test configuration by conftest's config_path


@pytest.fixture
def admin(client, gateway):
    make_user(gateway, "root", admin=True)
    return Browser(client, "root")


def hooks_fact(page: str, pipeline_id: str) -> str | None:
    card = re.search(rf'<article class="card pipeline" id="pipeline-{pipeline_id}">(.*?)</article>', page, re.S)
    assert card, f"no card for {pipeline_id}"
    fact = re.search(r'<dd data-hooks="(\w+)">(.*?)</dd>', card.group(1), re.S)
    return None if fact is None else f"{fact.group(1)}: {re.sub(r'<[^>]+>', '', fact.group(2))}"


def received(seconds_ago: float) -> None:
    with database.connection_context():
        InboundHook.create(
            provider="github",
            delivery_id=f"d-{seconds_ago}",
            event="workflow_run",
            headers={},
            body="{}",
            received_at=to_db_time(utcnow() - timedelta(seconds=seconds_ago)),
            repository="acme/web",
            applied_at=to_db_time(utcnow()),
            outcome="applied",
        )


def test_the_pipelines_page_says_when_provider_hooks_are_silent(admin):
    page = admin.get("/dashboard/pipelines").text
    assert hooks_fact(page, "demo") is None  # the local provider takes no hooks
    fact = hooks_fact(page, "web")
    assert fact.startswith("silent:") and "none received yet" in fact

    received(seconds_ago=20)
    fact = hooks_fact(admin.get("/dashboard/pipelines").text, "web")
    assert fact.startswith("arriving") and "last" in fact

    with database.connection_context():
        InboundHook.delete().execute()
    received(seconds_ago=3600)  # older than reconcile_interval_seconds
    fact = hooks_fact(admin.get("/dashboard/pipelines").text, "web")
    assert fact.startswith("silent:") and "last received" in fact and "none received" not in fact


def test_a_run_started_upstream_says_so_on_its_page_and_in_the_runs_list(admin):
    run = make_run("web", status="running")
    with database.connection_context():
        Run.update(
            trigger={"kind": "upstream", "upstream_run_id": "4711"}, started_upstream=True, upstream_id="4711"
        ).where(Run.id == run.id).execute()
    other = make_run("demo")
    page = admin.get(f"/dashboard/runs/{run.id}").text
    started = re.search(r'<dt>Started by</dt><dd data-trigger="upstream">(.*?)</dd>', page).group(1)
    assert re.sub(r"<[^>]+>", "", started) == "started upstream (run 4711)"
    rows = admin.get("/dashboard/runs").text
    mine = re.search(rf"<tr[^>]*>(?:(?!</tr>).)*{run.id}(?:(?!</tr>).)*</tr>", rows, re.S).group(0)
    assert "started upstream" in mine
    theirs = re.search(rf"<tr[^>]*>(?:(?!</tr>).)*{other.id}(?:(?!</tr>).)*</tr>", rows, re.S).group(0)
    assert "started upstream" not in theirs


def test_a_run_github_started_on_a_push_links_its_commit(admin, gateway):
    body = json.loads((FIXTURES / "workflow_run-requested.json").read_text())
    body["repository"]["full_name"] = "acme/web"
    body["workflow_run"].update(event="push", path=".github/workflows/deploy.yml")
    sha = body["workflow_run"]["head_sha"]
    with database.connection_context():
        row = InboundHook.create(
            provider="github",
            delivery_id="d-1",
            event="workflow_run",
            headers={},
            body=json.dumps(body),
            received_at=to_db_time(utcnow()),
        )
        apply_delivery(gateway, row)
        run = Run.get(Run.pipeline_id == "web")
    assert run.trigger == {"kind": "upstream", "upstream_run_id": str(body["workflow_run"]["id"]), "commit": sha}
    page = admin.get(f"/dashboard/runs/{run.id}").text
    assert (
        f'<a href="https://github.com/acme/web/commit/{sha}" rel="noopener noreferrer" target="_blank">'
        f"<code>{sha[:12]}</code></a>" in page
    )
