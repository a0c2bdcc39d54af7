"""The fake GitLab's webhooks: ``Pipeline Hook``, ``Job Hook`` and ``Push Hook`` deliveries
built from the documented payloads (``tests/fixtures/hooks/gitlab``) with the fake's own
pipelines, jobs and projects in them (times in GitLab's ``2016-08-12 15:23:28 UTC`` form),
sent as the state they describe changes. ``emits`` marks the fake's mutating methods."""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from testkit.hooks_out import HookSender, gitlab_headers

if TYPE_CHECKING:
    from testkit.fake_gitlab import FakeGitLab, Job, Pipeline

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hooks" / "gitlab"
F = TypeVar("F", bound=Callable[..., Any])


def hook_time(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def emits(method: F) -> F:
    """After the wrapped mutation, send a hook for every pipeline and job that changed."""

    @functools.wraps(method)
    def wrapper(self: FakeGitLab, *args: Any, **kwargs: Any) -> Any:
        result = method(self, *args, **kwargs)
        with self._lock:
            self.hooks.emit_changes()
        return result

    return wrapper  # type: ignore[return-value]


class GitLabHooks(HookSender):
    def __init__(self, fake: FakeGitLab) -> None:
        super().__init__(gitlab_headers)
        self.fake = fake
        self._seen: dict[Any, str] = {}
        self._templates = {
            name: json.loads((FIXTURES / f"{name}.json").read_text())
            for name in ("pipeline-hook", "job-hook", "push-hook")
        }

    def _project(self, p: Pipeline) -> dict[str, Any]:
        body = copy.deepcopy(self._templates["pipeline-hook"]["project"])
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
        body = copy.deepcopy(self._templates["pipeline-hook"])
        duration = (
            None
            if p.started_at is None or p.finished_at is None
            else int((p.finished_at - p.started_at).total_seconds())
        )
        body["object_attributes"].update(
            id=p.id,
            iid=p.iid,
            ref=p.ref,
            sha=p.sha,
            before_sha=p.sha,
            source=p.source,
            status=p.status,
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
                id=j.id,
                stage=j.spec.stage,
                name=j.spec.name,
                status=j.status,
                created_at=hook_time(j.created_at),
                started_at=hook_time(j.started_at),
                finished_at=hook_time(j.finished_at),
                when=j.spec.when,
                duration=self.fake._duration(j.started_at, j.finished_at),
                queued_duration=self.fake._duration(j.created_at, j.started_at),
                manual=j.spec.when == "manual",
                allow_failure=j.spec.allow_failure,
                environment=({"name": j.spec.environment, "action": "start"} if j.spec.environment else None),
            )
            for j in p.jobs
        ]
        return body

    def job_body(self, p: Pipeline, job: Job) -> dict[str, Any]:
        body = copy.deepcopy(self._templates["job-hook"])
        body.update(
            ref=p.ref,
            sha=p.sha,
            before_sha=p.sha,
            build_id=job.id,
            build_name=job.spec.name,
            build_stage=job.spec.stage,
            build_status=job.status,
            build_created_at=hook_time(job.created_at),
            build_started_at=hook_time(job.started_at),
            build_finished_at=hook_time(job.finished_at),
            build_allow_failure=job.spec.allow_failure,
            build_duration=self.fake._duration(job.started_at, job.finished_at),
            build_queued_duration=self.fake._duration(job.created_at, job.started_at),
            environment={"name": job.spec.environment, "action": "start"} if job.spec.environment else None,
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
                if self._seen.get(("job", job.id)) != job.status:
                    self._seen[("job", job.id)] = job.status
                    self.send("Job Hook", self.job_body(p, job))
            if self._seen.get(("pipeline", p.id)) != p.status:
                self._seen[("pipeline", p.id)] = p.status
                self.send("Pipeline Hook", self.pipeline_body(p))

    def push(self, project_path: str, branch: str, sha: str, user: str = "jsmith") -> None:
        body = copy.deepcopy(self._templates["push-hook"])
        project = next(p for p in self.fake._projects.values() if p.path == project_path)
        body.update(ref=f"refs/heads/{branch}", after=sha, checkout_sha=sha, user_username=user, project_id=project.id)
        body["project"] = dict(
            body["project"], id=project.id, path_with_namespace=project.path, web_url=f"{self.fake.url}/{project.path}"
        )
        self.send("Push Hook", body)
