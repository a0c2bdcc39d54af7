"""The fake GitHub's webhooks: ``workflow_run``, ``workflow_job``, ``deployment_status`` and
``push`` deliveries built from GitHub's documented payloads (``tests/fixtures/hooks/github``,
from octokit/webhooks) with the fake's own run, job and repository bodies in them, sent as
the state they describe changes (see ``hooks_out`` for signing and the delivery switches)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from testkit.hooks_out import FakeHooks, github_headers

if TYPE_CHECKING:
    from testkit.fake_github import FakeGitHub, FakeRun

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hooks" / "github"


def payload(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


class GitHubHooks(FakeHooks):
    def __init__(self, fake: FakeGitHub) -> None:
        names = (
            "workflow_run-requested",
            "workflow_run-completed",
            "workflow_job-in_progress",
            "workflow_job-completed",
            "deployment_status",
            "push",
        )
        super().__init__(github_headers, FIXTURES, names)
        self.fake = fake

    def _envelope(self, name: str, run: FakeRun, action: str) -> dict[str, Any]:
        body = self.template(name)
        body["action"] = action
        body["repository"] = self.fake.repo_body(self.fake.repos[run.repo])
        return body

    def workflow_run(self, run: FakeRun, action: str) -> dict[str, Any]:
        """The ``workflow_run`` delivery about ``run`` as it is now."""
        body = self._envelope(
            "workflow_run-completed" if action == "completed" else "workflow_run-requested", run, action
        )
        body["workflow_run"] = self.fake.run_body(run)
        return body

    def emit_changes(self) -> None:
        """Send one delivery for every run and job whose status changed since the last call."""
        if not self.targets:
            return
        for run in list(self.fake.runs.values()):
            first = ("run", run.id) not in self._seen
            if self.changed(("run", run.id), run.status):
                self.send(
                    "workflow_run",
                    self.workflow_run(run, "requested" if first and run.status != "completed" else run.status),
                )
            for job in run.jobs:
                if self.changed(("job", job["id"]), job["status"]):
                    name = "workflow_job-completed" if job["status"] == "completed" else "workflow_job-in_progress"
                    body = self._envelope(name, run, job["status"])
                    body["workflow_job"] = self.fake.job_body(run, job)
                    self.send("workflow_job", body)

    def deployment_status(self, deployment: Any, status: dict[str, Any]) -> None:
        """The ``deployment_status`` delivery GitHub sends when a status is created; a deployment
        made by a workflow run also carries that run and its workflow (``workflow_run``,
        ``workflow``), as GitHub adds them for deployments made by Actions."""
        if not self.targets:
            return
        body = self.template("deployment_status")
        body["action"] = "created"
        body["repository"] = self.fake.repo_body(self.fake.repos[deployment.repo])
        body["deployment"] = self.fake.deployment_body(deployment)
        body["deployment_status"] = self.fake.deployment_status_body(deployment, status)
        run = self.fake.runs.get(status.get("run_id") or 0)
        if run is not None:
            body["workflow_run"] = self.fake.run_body(run)
            body["workflow"] = self.fake.workflow_body(run.workflow)
        self.send("deployment_status", body)

    def push(self, repo: str, branch: str, sha: str, pusher: str = "octocat") -> None:
        body = self.template("push")
        body.update(ref=f"refs/heads/{branch}", after=sha, repository=self.fake.repo_body(self.fake.repos[repo]))
        body["pusher"] = {"name": pusher, "email": f"{pusher}@example.com"}
        self.send("push", body)
