"""Upstream failures map to the plugin interface's errors; ``check()`` explains problems in one line."""

from __future__ import annotations

import socket
from datetime import UTC, datetime

import pytest
from github import GithubException
from testkit.fake_github import FakeGitHub

from flashfusion.plugins import (
    Pipeline,
    RunRef,
    UpstreamAuthError,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from flashfusion.providers.github.plugin import GitHubProvider
from flashfusion.providers.github.settings import Settings

REPO = "acme/web"
SECRET = "ghp_thisTokenMustNeverBeShown000000000000"


def _dispatch(t, **inputs):
    return t.provider.dispatch(t.pipeline, t.new_ref("run_1"), "main", inputs)


def test_no_workflow_dispatch_trigger_is_rejected_with_githubs_message(fake, tracker):
    fake.add_workflow(REPO, "deploy.yml", dispatch=False)
    with pytest.raises(UpstreamRejected) as info:
        _dispatch(tracker())
    assert "Workflow does not have 'workflow_dispatch' trigger" in info.value.message
    assert info.value.http_status == 422
    assert isinstance(info.value.__cause__, GithubException)


def test_unknown_ref_is_rejected_with_githubs_message(fake, tracker):
    fake.add_workflow(REPO, "deploy.yml")
    t = tracker()
    with pytest.raises(UpstreamRejected, match="No ref found for: nope"):
        t.provider.dispatch(t.pipeline, t.new_ref("run_1"), "nope", {})


def test_unknown_workflow_is_rejected(fake, tracker, make_pipeline):
    t = tracker(make_pipeline("missing.yml"))
    with pytest.raises(UpstreamRejected) as info:
        _dispatch(t)
    assert "Not Found" in info.value.message and "missing.yml" in info.value.message


def test_bad_credentials_name_provider_and_pipeline_but_never_the_token(fake, tracker):
    fake.add_workflow(REPO, "deploy.yml")
    t = tracker(env={"GITHUB_TOKEN": SECRET})
    with pytest.raises(UpstreamAuthError) as info:
        _dispatch(t)
    message = info.value.message
    assert "github" in message and "pipeline web" in message and "Bad credentials" in message
    assert SECRET not in message and SECRET not in str(info.value) and SECRET not in repr(info.value)
    assert info.value.http_status == 502
    with pytest.raises(UpstreamAuthError) as polled:
        t.provider.poll(t.pipeline, [t.new_ref("run_1")])
    assert SECRET not in polled.value.message


def test_missing_token_variable(fake, tracker):
    fake.add_workflow(REPO, "deploy.yml")
    t = tracker(env={})
    with pytest.raises(UpstreamAuthError, match="environment variable GITHUB_TOKEN is not set"):
        _dispatch(t)
    assert fake.total == 0


def test_upstream_5xx_is_unavailable(fake, tracker):
    fake.add_workflow(REPO, "deploy.yml")
    fake.fail_next(502, path_contains="/dispatches")
    with pytest.raises(UpstreamUnavailable) as info:
        _dispatch(tracker())
    assert info.value.http_status == 502 and "502" in info.value.message


def test_upstream_timeout(fake, tracker):
    fake.add_workflow(REPO, "deploy.yml")
    t = tracker(timeout_seconds=1)
    t.provider.dispatch(t.pipeline, t.new_ref("run_0"), "main", {})  # the workflow id is now known
    fake.stall_next(1.5)
    with pytest.raises(UpstreamTimeout) as info:
        _dispatch(t)
    assert info.value.http_status == 504


def test_unreachable_host(clock):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = GitHubProvider(Settings(base_url=f"http://127.0.0.1:{port}"), env={"GITHUB_TOKEN": "t"}, clock=clock)
    pipeline = Pipeline(
        id="web", name="Web", provider="github", repository_name=REPO, options={"workflow": "deploy.yml"}
    )
    with pytest.raises(UpstreamUnavailable, match="cannot reach GitHub"):
        provider.dispatch(
            pipeline,
            RunRef(
                id="run_1", pipeline_id="web", ref="main", inputs={}, created_at=datetime.fromtimestamp(clock(), UTC)
            ),
            "main",
            {},
        )
    provider.close()


def test_polling_survives_a_5xx_and_catches_up(fake, tracker):
    fake.add_workflow(REPO, "deploy.yml")
    t = tracker()
    upstream = int(t.dispatch("run_1").upstream_id)
    fake.finish(upstream)
    fake.fail_next(503)
    assert t.cycle() == []
    [snap] = t.cycle()
    assert snap.status == "success"


@pytest.mark.parametrize(
    "inputs, message",
    [
        ({f"k{i}": "v" for i in range(26)}, "at most 25"),
        ({"count": 3}, "'count' must be a string"),
    ],
)
def test_inputs_are_validated_before_calling_github(fake, tracker, inputs, message):
    fake.add_workflow(REPO, "deploy.yml")
    with pytest.raises(UpstreamRejected, match=message):
        _dispatch(tracker(), **inputs)
    assert fake.total == 0


def test_exactly_25_string_inputs_are_accepted(fake, tracker):
    fake.add_workflow(REPO, "deploy.yml", inputs=[f"k{i}" for i in range(25)])
    assert _dispatch(tracker(), **{f"k{i}": "v" for i in range(25)}).upstream_id


# ---------------------------------------------------------------- check()


def test_check_is_clean_for_a_good_pipeline(fake, tracker):
    fake.add_workflow(REPO, "deploy.yml", inputs=["flashfusion_run_id"], run_name="${{ inputs.flashfusion_run_id }}")
    assert tracker().provider.check(tracker().pipeline) == []


@pytest.mark.parametrize(
    "setup, expected",
    [
        (lambda f: f.add_workflow(REPO, "deploy.yml", dispatch=False), "has no workflow_dispatch trigger"),
        (lambda f: f.add_workflow(REPO, "other.yml"), "workflow 'deploy.yml' not found in acme/web"),
        (lambda f: f.add_workflow(REPO, "deploy.yml", state="disabled_manually"), "is disabled_manually, not active"),
        (lambda f: f.add_workflow(REPO, "deploy.yml", inputs=["flashfusion_run_id"]), "run-name does not show it"),
    ],
)
def test_check_reports_one_line(fake, tracker, setup, expected):
    setup(fake)
    t = tracker()
    [line] = t.provider.check(t.pipeline)
    assert expected in line


def test_check_reports_bad_and_missing_credentials_without_the_token(fake, tracker):
    fake.add_workflow(REPO, "deploy.yml")
    t = tracker(env={"GITHUB_TOKEN": SECRET})
    [line] = t.provider.check(t.pipeline)
    assert "credentials rejected" in line and "GITHUB_TOKEN" in line and SECRET not in line
    t = tracker(env={})
    assert t.provider.check(t.pipeline) == ["github credentials: environment variable GITHUB_TOKEN is not set"]


def test_check_skips_the_file_checks_without_contents_permission(clock, tracker):
    with FakeGitHub(clock=clock) as fake:
        fake.add_repo(REPO, contents_readable=False)
        fake.add_workflow(REPO, "deploy.yml", dispatch=False)
        t = tracker(base_url=fake.url)
        assert t.provider.check(t.pipeline) == []


def test_check_reports_a_bad_pipeline_block(fake, tracker, make_pipeline):
    t = tracker(make_pipeline(workflow=""))
    [line] = t.provider.check(t.pipeline)
    assert line.startswith("pipeline block: workflow:")
