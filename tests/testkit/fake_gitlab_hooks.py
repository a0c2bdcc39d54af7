"""The fake GitLab's webhooks: ``Pipeline Hook``, ``Job Hook`` and ``Push Hook`` deliveries
built from the documented payloads (``tests/fixtures/hooks/gitlab``) with the fake's own
pipelines, jobs and projects in them (times in GitLab's ``2016-08-12 15:23:28 UTC`` form),
sent as the state they describe changes. ``emits`` marks the fake's mutating methods."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from testkit.bodies import same_named
from testkit.hooks_out import FakeHooks, gitlab_headers

if TYPE_CHECKING:
    from testkit.fake_gitlab import FakeGitLab, Job, Pipeline

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hooks" / "gitlab"
F = TypeVar("F", bound=Callable[..., Any])


def hook_time(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _environment(job: Job) -> dict[str, str] | None:
    return {"name": job.spec.environment, "action": "start"} if job.spec.environment else None


def emits(method: F) -> F:
    """After the wrapped mutation, send a hook for every pipeline and job that changed."""

    @functools.wraps(method)
    def wrapper(self: FakeGitLab, *args: Any, **kwargs: Any) -> Any:
        result = method(self, *args, **kwargs)
        with self._lock:
            self.hooks.emit_changes()
        return result

    return wrapper  # type: ignore[return-value]


class GitLabHooks(FakeHooks):
    def __init__(self, fake: FakeGitLab) -> None:
        super().__init__(gitlab_headers, FIXTURES, ("pipeline-hook", "job-hook", "push-hook"))
        self.fake = fake

    def _project(self, p: Pipeline) -> dict[str, Any]:
        body = self.template("pipeline-hook")["project"]
        web = f"{self.fake.url}/{p.project.path}"
        body.update(
            id=p.project.id,
            name=p.project.path.rsplit("/", 1)[-1],
            web_url=web,
            path_with_namespace=p.project.path,
            default_branch=p.project.default_branch,
            git_http_url=f"{web}.git",
            git_ssh_url=f"git@127.0.0.1:{p.project.path}.git",
        )
        return body

    def pipeline_body(self, p: Pipeline) -> dict[str, Any]:
        body = self.template("pipeline-hook")
        duration = (
            None
            if p.started_at is None or p.finished_at is None
            else int((p.finished_at - p.started_at).total_seconds())
        )
        body["object_attributes"].update(
            same_named(p, "id", "iid", "ref", "sha", "source", "status"),
            before_sha=p.sha,
            detailed_status=p.status,
            stages=list(dict.fromkeys(j.spec.stage for j in p.jobs)),
            created_at=hook_time(p.created_at),
            finished_at=hook_time(p.finished_at),
            duration=duration,
            variables=[{"key": k, "value": v} for k, v in p.variables.items()],
            url=f"{self.fake.url}/{p.project.path}/-/pipelines/{p.id}",
        )
        body["project"] = self._project(p)
        body["commit"] = dict(body["commit"], id=p.sha, url=f"{self.fake.url}/{p.project.path}/-/commit/{p.sha}")
        template = body.pop("builds")[0]
        body["builds"] = [
            dict(
                template,
                **self.fake.job_fields(j, hook_time),
                when=j.spec.when,
                manual=j.spec.when == "manual",
                environment=_environment(j),
            )
            for j in p.jobs
        ]
        return body

    def job_body(self, p: Pipeline, job: Job) -> dict[str, Any]:
        body = self.template("job-hook")
        body.update(
            {f"build_{name}": value for name, value in self.fake.job_fields(job, hook_time).items()},
            ref=p.ref,
            sha=p.sha,
            before_sha=p.sha,
            environment=_environment(job),
            pipeline_id=p.id,
            project_id=p.project.id,
            project_name=p.project.path,
            project=self._project(p),
        )
        body["commit"] = dict(body["commit"], id=p.id, sha=p.sha, status=p.status)
        return body

    def emit_changes(self) -> None:
        if not self.targets:
            return
        for p in list(self.fake._pipelines.values()):
            for job in p.jobs:
                if self.changed(("job", job.id), job.status):
                    self.send("Job Hook", self.job_body(p, job))
            if self.changed(("pipeline", p.id), p.status):
                self.send("Pipeline Hook", self.pipeline_body(p))

    def push(self, project_path: str, branch: str, sha: str, user: str = "jsmith") -> None:
        body = self.template("push-hook")
        project = next(p for p in self.fake._projects.values() if p.path == project_path)
        body.update(ref=f"refs/heads/{branch}", after=sha, checkout_sha=sha, user_username=user, project_id=project.id)
        body["project"] = dict(
            body["project"], id=project.id, path_with_namespace=project.path, web_url=f"{self.fake.url}/{project.path}"
        )
        self.send("Push Hook", body)
