"""The kit's ``FakeControl`` over ``testkit.fake_github.FakeGitHub``."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from testkit.fake_github import FakeClock, FakeGitHub
from testkit.hooks_out import Target, github_headers, signed_delivery

from flashfusion.plugins import Pipeline, Provider
from flashfusion.plugins.testing import FakeControl, Fault, InboundRequest, UpstreamRun
from flashfusion.providers.github.provider import GitHubProvider
from flashfusion.providers.github.settings import Settings

REPO = "acme/web"
HOOK_SECRET_ENV, HOOK_SECRET = "GITHUB_WEBHOOK_SECRET", "kit-github-hook-secret-8c2d"
CONCLUSIONS = {
    "success": "success",
    "neutral": "success",
    "skipped": "success",
    "failure": "failed",
    "cancelled": "failed",
    "timed_out": "failed",
    "action_required": "failed",
    "startup_failure": "failed",
    "stale": "failed",
}
STATES = {
    "requested": "running",
    "queued": "running",
    "pending": "running",
    "waiting": "running",
    "in_progress": "running",
    **{f"completed/{c}": status for c, status in CONCLUSIONS.items()},
}
FAULTS = {
    Fault.BAD_CREDENTIALS: (401, "Bad credentials"),
    Fault.NOT_FOUND: (404, "Not Found"),
    Fault.UNAVAILABLE: (503, "Service Unavailable"),
}


class GitHubControl(FakeControl):
    timeout_seconds = 20.0

    def __init__(self, provider_class: type[GitHubProvider] = GitHubProvider) -> None:
        self.clock = FakeClock()
        self.fake = FakeGitHub(clock=self.clock).start()
        self.fake.add_repo(REPO)
        self.fake.add_workflow(REPO, "deploy.yml", inputs=(self.marker_input,))
        self.provider_class = provider_class

    def provider(self) -> Provider:
        settings = Settings(base_url=self.fake.url, poll_interval_seconds=1, webhook_secret_env=HOOK_SECRET_ENV)
        return self.provider_class(
            settings, env={"GITHUB_TOKEN": self.fake.token, HOOK_SECRET_ENV: HOOK_SECRET}, clock=self.clock
        )

    def pipeline(self) -> Pipeline:
        return Pipeline(
            id="kit", name="kit", provider="github", repository_name=REPO, options={"workflow": "deploy.yml"}
        )

    def runs(self) -> Sequence[UpstreamRun]:
        with self.fake._lock:
            return [UpstreamRun(str(r.id), {k: str(v) for k, v in r.inputs.items()}) for r in self.fake.runs.values()]

    def states(self) -> Mapping[str, str]:
        return STATES

    def set_state(self, upstream_id: str, state: str) -> None:
        status, _, conclusion = state.partition("/")
        with self.fake._lock:
            run = self.fake.runs[int(upstream_id)]
            run.status, run.conclusion = status, conclusion or None
            self.fake._touch(run)

    def advance(self, upstream_id: str) -> bool:
        return self.fake.advance(int(upstream_id)).status != "completed"

    def unknown_state(self) -> str | None:
        return "kit_unheard_of"

    def inject(self, fault: Fault, *, retry_after: int) -> bool:
        if fault is Fault.RATE_LIMITED:
            self.fake.secondary_limit(1, retry_after=retry_after)
        else:
            status, message = FAULTS[fault]
            self.fake.fail_next(status, message=message)
        return True

    def secrets(self) -> Sequence[str]:
        return [self.fake.token, HOOK_SECRET]

    def invalid_settings(self) -> Sequence[tuple[Mapping[str, Any], str]]:
        return [
            ({"base_url": "ftp://example"}, "base_url"),
            ({"per_page": 500}, "per_page"),
            ({"app_id": 1}, "installation_id"),
        ]

    def inbound_request(self, upstream_id: str) -> InboundRequest | None:
        """The ``workflow_run`` delivery GitHub sends as a run reaches its current status."""
        with self.fake._lock:
            run = self.fake.runs[int(upstream_id)]
            action = run.status if run.status in ("in_progress", "completed") else "requested"
            payload = self.fake.hooks.workflow_run(run, action)
        headers, body = signed_delivery(github_headers, Target(self.fake.url, HOOK_SECRET), "workflow_run", payload)
        return InboundRequest(headers, body)

    def tick(self) -> None:
        self.clock.advance(2)
        time.sleep(0.005)

    def close(self) -> None:
        self.fake.stop()
