"""Upstream refusals and failures map to the plugin error tree, without leaking tokens."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from testkit.fake_gitlab import DEVELOPER, FakeGitLab

from flashfusion.plugins import (
    ProviderError,
    UpstreamAuthError,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)

REPO = "acme/web"
SECRET = "glpat-very-secret-value"


@pytest.fixture
def project(fake: FakeGitLab) -> Any:
    return fake.add_project(REPO)


def dispatch_error(kit: Any, provider: Any = None, repo: str = REPO, **options: Any) -> ProviderError:
    core = kit.core(repo, provider, **options)
    with pytest.raises(ProviderError) as caught:
        core.dispatch({"K": "V"})
    error = caught.value
    assert error.__cause__ is not None  # raised "from" the upstream exception
    return error


def test_unknown_ref_is_rejected_with_gitlabs_message(kit: Any, project: Any) -> None:
    core = kit.core(REPO)
    with pytest.raises(UpstreamRejected) as caught:
        core.dispatch(ref="no-such-branch")
    error = caught.value
    assert error.http_status == 422 and error.conclusion == "dispatch_error"
    assert "Reference not found" in error.message and "'web'" in error.message
    assert error.__cause__ is not None


def test_400_message_of_any_shape_is_quoted(kit: Any, fake: FakeGitLab, project: Any) -> None:
    fake.fail("pipeline.create", 400, {"message": {"variables": ["key is invalid"]}})
    error = dispatch_error(kit)
    assert isinstance(error, UpstreamRejected) and "variables: key is invalid" in error.message


def test_bad_token_is_an_auth_error_naming_gitlab_and_the_pipeline_not_the_token(
    kit: Any, fake: FakeGitLab, project: Any
) -> None:
    provider = kit.provider(env={"GITLAB_TOKEN": SECRET})
    error = dispatch_error(kit, provider)
    assert isinstance(error, UpstreamAuthError) and error.http_status == 502
    assert error.message.startswith("gitlab:") and "'web'" in error.message and "401" in error.message
    assert SECRET not in error.message and SECRET not in str(error)


def test_read_api_token_cannot_create_pipelines(kit: Any, fake: FakeGitLab, project: Any) -> None:
    fake.add_token(SECRET, scopes=("read_api",))
    error = dispatch_error(kit, kit.provider(env={"GITLAB_TOKEN": SECRET}))
    assert isinstance(error, UpstreamAuthError) and "insufficient_scope" in error.message
    assert SECRET not in error.message


def test_echoed_secret_is_scrubbed(kit: Any, fake: FakeGitLab, project: Any) -> None:
    fake.fail("pipeline.create", 403, {"message": f"token {fake.token} is blocked"})
    error = dispatch_error(kit)
    assert fake.token not in error.message and "***" in error.message


def test_missing_project_is_rejected(kit: Any, fake: FakeGitLab) -> None:
    error = dispatch_error(kit, repo="acme/missing")
    assert isinstance(error, UpstreamRejected) and "404" in error.message and "repository_name" in error.message


def test_server_errors_and_unreachable_hosts_are_unavailable(kit: Any, fake: FakeGitLab, project: Any) -> None:
    fake.fail("pipeline.create", 502, "<html>Bad Gateway</html>")
    assert isinstance(dispatch_error(kit), UpstreamUnavailable)

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    provider = kit.provider(url=f"http://127.0.0.1:{closed_port}")
    error = dispatch_error(kit, provider)
    assert isinstance(error, UpstreamUnavailable) and "could not be reached" in error.message


def test_slow_gitlab_is_a_timeout(kit: Any, fake: FakeGitLab, project: Any) -> None:
    fake.delay("pipeline.create", 0.5)
    error = dispatch_error(kit, kit.provider(timeout_seconds=0.1))
    assert isinstance(error, UpstreamTimeout) and error.http_status == 504


def test_missing_token_variable_is_named(kit: Any, project: Any) -> None:
    core = kit.core(REPO, kit.provider(env={}))
    with pytest.raises(UpstreamAuthError, match="GITLAB_TOKEN"):
        core.dispatch()


def test_bad_trigger_token_is_an_auth_error(kit: Any, fake: FakeGitLab, project: Any) -> None:
    fake.add_trigger_token(project, "glptt-right")
    provider = kit.provider(env={"GITLAB_TOKEN": fake.token, "TRIG": "glptt-wrong"})
    error = dispatch_error(kit, provider, trigger_token_env="TRIG")
    assert isinstance(error, UpstreamAuthError) and "TRIG" in error.message and "glptt" not in error.message


def test_poll_raises_when_the_list_fails_and_loses_nothing(kit: Any, fake: FakeGitLab, project: Any) -> None:
    core = kit.core(REPO)
    run = core.dispatch()
    fake.advance(int(run.upstream_id))
    fake.fail("pipelines.list", 503, {"message": "503 Service Unavailable"})
    with pytest.raises(UpstreamUnavailable):
        core.poll()
    [snap] = core.poll()
    assert snap.provider_status == "running"


def test_a_deleted_pipeline_ends_the_run(kit: Any, fake: FakeGitLab, project: Any) -> None:
    core = kit.core(REPO)
    run = core.dispatch()
    fake.advance(int(run.upstream_id))
    fake.fail("pipeline", 404, {"message": "404 Not found"})
    [snap] = core.poll()
    assert (snap.status, snap.conclusion) == ("failed", "not_found")


def test_cancel_errors_are_mapped(kit: Any, fake: FakeGitLab, project: Any) -> None:
    core = kit.core(REPO)
    run = core.dispatch()
    fake.add_token("glpat-reporter", access_level=20)
    reporter = kit.provider(env={"GITLAB_TOKEN": "glpat-reporter"})
    with pytest.raises(UpstreamAuthError, match="403"):
        reporter.cancel(core.pipeline, run)


@pytest.mark.parametrize(
    "case, expected",
    [
        ("bad-token", "refused the credentials (HTTP 401"),
        ("missing-project", "not found (HTTP 404"),
        ("reporter", "access level 20"),
        ("no-env", "GITLAB_TOKEN"),
        ("no-trigger-env", "TRIG"),
    ],
)
def test_check_reports_one_line_per_problem(kit: Any, fake: FakeGitLab, project: Any, case: str, expected: str) -> None:
    fake.add_token("glpat-reporter", access_level=DEVELOPER - 10)
    env = {"bad-token": {"GITLAB_TOKEN": SECRET}, "reporter": {"GITLAB_TOKEN": "glpat-reporter"}, "no-env": {}}.get(
        case, {"GITLAB_TOKEN": fake.token}
    )
    table = {"trigger_token_env": "TRIG"} if case == "no-trigger-env" else {}
    repo = "acme/missing" if case == "missing-project" else REPO
    [line] = kit.provider(env=env, **table).check(kit.pipeline(repo))
    assert expected in line and line.startswith("gitlab:") and "\n" not in line
    assert SECRET not in line
