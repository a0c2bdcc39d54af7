"""Projects addressed by path (subgroups, special characters) and by numeric id."""

from __future__ import annotations

from typing import Any

import gitlab
import pytest
from testkit.fake_gitlab import FakeGitLab, JobSpec

SPECIAL = "acme.io/platform-team/sub_group/web.app-2"


@pytest.mark.parametrize("address", ["path", "id"])
def test_dispatch_poll_and_cancel_by_path_or_numeric_id(kit: Any, fake: FakeGitLab, address: str) -> None:
    project = fake.add_project(SPECIAL, id=4242, jobs=(JobSpec("build", "build"), JobSpec("test", "test")))
    repo = SPECIAL if address == "path" else "4242"
    core = kit.core(repo)

    run = core.dispatch()
    fake.advance(int(run.upstream_id))
    [snap] = core.poll()
    core.provider.cancel(core.pipeline, core.runs[run.id])
    [final] = core.poll()

    assert run.workflow_id == "4242"
    assert snap.provider_status == "running" and final.conclusion == "cancelled"
    assert snap.html_url == f"{fake.url}/{SPECIAL}/-/pipelines/{run.upstream_id}"
    expected = "acme.io%2Fplatform-team%2Fsub_group%2Fweb.app-2" if address == "path" else "4242"
    for request in fake.requests:
        if request.route in ("pipeline.create", "pipelines.list", "pipeline.cancel"):
            assert request.path.split("/")[4] == expected
    assert project.id == 4242


def test_check_passes_for_a_reachable_project(kit: Any, fake: FakeGitLab) -> None:
    fake.add_project(SPECIAL)
    provider = kit.provider()
    assert provider.check(kit.pipeline(SPECIAL)) == []
    assert fake.counts == {"project": 1}


def test_fake_routes_on_the_raw_path_like_gitlab(fake: FakeGitLab) -> None:
    """An unencoded path is a different URL to GitLab: the fake must not accept it either."""
    fake.add_project("group/project")
    gl = gitlab.Gitlab(fake.url, private_token=fake.token)
    assert gl.projects.get("group/project").id == gl.projects.get(1).id
    with pytest.raises(gitlab.GitlabHttpError) as caught:
        gl.http_get("/projects/group/project")
    assert caught.value.response_code == 404
