"""The fake answers as recorded GitHub exchanges do (shared/fixtures/recorded/pygithub)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import requests
from github import Auth, Github, GithubException
from testkit.fake_github import DEFAULT_TOKEN, FIXTURES

REPO = "acme/web"
RECORDED = FIXTURES.parent / "recorded" / "pygithub"


def _github(fake) -> Github:
    return Github(
        auth=Auth.Token(DEFAULT_TOKEN),
        base_url=fake.url,
        retry=None,
        seconds_between_requests=None,
        seconds_between_writes=None,
    )


def _recorded_body(name: str, status: str) -> dict:
    blocks = (RECORDED / name).read_text().split("\n\n")
    for block in blocks:
        lines = block.strip().splitlines()
        if len(lines) >= 10 and lines[7] == status:
            return json.loads(lines[9])
    raise AssertionError(f"no {status} exchange in {name}")


def test_conditional_get_answers_304_free_of_charge(fake):
    url = f"{fake.url}/repos/{REPO}"
    headers = {"Authorization": f"token {DEFAULT_TOKEN}"}
    first = requests.get(url, headers=headers, timeout=5)
    assert first.status_code == 200 and first.headers["ETag"].startswith('W/"')
    second = requests.get(url, headers={**headers, "If-None-Match": first.headers["ETag"]}, timeout=5)
    assert second.status_code == 304 and second.content == b""
    assert second.headers["x-ratelimit-remaining"] == first.headers["x-ratelimit-remaining"]
    assert (fake.total, fake.counted, fake.not_modified) == (2, 1, 1)


def test_pygithub_objects_and_pagination(fake):
    wf = fake.add_workflow(REPO, "deploy.yml")
    for _ in range(45):
        fake.create_run(wf)
    g = _github(fake)
    repo = g.get_repo(REPO)
    assert repo.full_name == REPO and repo.url.startswith(fake.url)
    workflow = repo.get_workflow("deploy.yml")
    assert workflow.id == wf.id
    runs = workflow.get_runs(event="workflow_dispatch")
    assert runs.totalCount == 45 and len(list(runs)) == 45
    run = runs[0]
    assert run.jobs().totalCount == 0
    fake.advance(run.id, 2)
    run.update()
    [job] = run.jobs()
    assert job.steps[0].status == "in_progress"
    assert g.get_rate_limit().resources.core.remaining == fake.remaining
    g.close()


def test_error_bodies_match_the_recorded_ones(fake):
    fake.add_workflow(REPO, "deploy.yml", dispatch=False)
    g = _github(fake)
    workflow = g.get_repo(REPO).get_workflow("deploy.yml")
    try:
        workflow.create_dispatch("main", throw=True)
    except GithubException as exc:
        recorded = _recorded_body("Workflow.testCreateDispatchForNonTriggerEnabled.txt", "422")
        assert exc.status == 422 and exc.data["message"] == recorded["message"]
    else:
        raise AssertionError("dispatch without trigger was accepted")
    fake.exhaust_rate_limit()
    try:
        g.get_repo(REPO).get_workflow("deploy.yml").id
    except GithubException as exc:
        assert type(exc).__name__ == "RateLimitExceededException" and exc.headers["x-ratelimit-remaining"] == "0"
    else:
        raise AssertionError("exhausted limit was not enforced")
    g.close()


def test_created_filter_syntax(fake, clock):
    wf = fake.add_workflow(REPO, "deploy.yml")
    early = fake.create_run(wf)
    clock.advance(3600)
    late = fake.create_run(wf)
    g = _github(fake)
    iso = datetime.fromtimestamp(clock() - 60, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    repo = g.get_repo(REPO)
    assert [r.id for r in repo.get_workflow_runs(created=f">={iso}")] == [late.id]
    assert [r.id for r in repo.get_workflow_runs(created=f"<{iso}")] == [early.id]
    assert {r.id for r in repo.get_workflow_runs(created=f"*..{iso}")} == {early.id}
    g.close()
