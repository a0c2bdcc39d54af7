"""The kit's ``FakeControl`` over ``testkit.fake_gitlab.FakeGitLab``."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from testkit.fake_gitlab import TERMINAL_PIPELINE, FakeGitLab
from testkit.hooks_out import Target, gitlab_headers, signed_delivery

from flashfusion.plugins import Pipeline, Provider
from flashfusion.plugins.testing import FakeControl, Fault, InboundRequest, UpstreamRun
from flashfusion.providers.gitlab.mapping import PIPELINE_STATUSES
from flashfusion.providers.gitlab.provider import GitLabProvider, Settings

PROJECT = "acme/web"
HOOK_TOKEN_ENV, HOOK_TOKEN = "GITLAB_WEBHOOK_TOKEN", "kit-gitlab-hook-token-31b7"
#: GitLab's Standard Webhooks signing token (whsec_ + base64 key): deliveries carry both checks.
SIGNING_ENV, SIGNING_TOKEN = "GITLAB_WEBHOOK_SIGNING", "whsec_a2l0LWdpdGxhYi1zaWduaW5nLWtleS00ZTg="
FAULTS = {
    Fault.BAD_CREDENTIALS: (401, {"message": "401 Unauthorized"}),
    Fault.NOT_FOUND: (404, {"message": "404 Project Not Found"}),
    Fault.UNAVAILABLE: (503, {"message": "503 Service Unavailable"}),
}


class GitLabControl(FakeControl):
    timeout_seconds = 20.0

    def __init__(self, provider_class: type[GitLabProvider] = GitLabProvider) -> None:
        self.fake = FakeGitLab().start()
        self.project = self.fake.add_project(PROJECT)
        self.provider_class = provider_class

    def provider(self) -> Provider:
        settings = Settings(
            url=self.fake.url,
            poll_interval_seconds=0,
            webhook_secret_env=HOOK_TOKEN_ENV,
            webhook_signing_token_env=SIGNING_ENV,
        )
        return self.provider_class(
            settings, env={"GITLAB_TOKEN": self.fake.token, HOOK_TOKEN_ENV: HOOK_TOKEN, SIGNING_ENV: SIGNING_TOKEN}
        )

    def pipeline(self) -> Pipeline:
        return Pipeline(id="kit", name="kit", provider="gitlab", repository_name=PROJECT)

    def runs(self) -> Sequence[UpstreamRun]:
        with self.fake._lock:
            return [UpstreamRun(str(p.id), dict(p.variables)) for p in self.fake._pipelines.values()]

    def states(self) -> Mapping[str, str]:
        return {raw: status for raw, (status, _, _) in PIPELINE_STATUSES.items()}

    def set_state(self, upstream_id: str, state: str) -> None:
        self.fake.set_status(int(upstream_id), state)

    def advance(self, upstream_id: str) -> bool:
        return self.fake.advance(int(upstream_id)) not in TERMINAL_PIPELINE

    def unknown_state(self) -> str | None:
        return "kit_unheard_of"

    def inject(self, fault: Fault, *, retry_after: int) -> bool:
        if fault is Fault.RATE_LIMITED:
            self.fake.throttle(1, retry_after=retry_after, route="pipeline.create")
        else:
            status, body = FAULTS[fault]
            self.fake.fail("pipeline.create", status, body)
        return True

    def secrets(self) -> Sequence[str]:
        return [self.fake.token, HOOK_TOKEN, SIGNING_TOKEN]

    def invalid_settings(self) -> Sequence[tuple[Mapping[str, Any], str]]:
        return [({"url": "ftp://example"}, "url"), ({"timeout_seconds": 0}, "timeout_seconds")]

    def inbound_request(self, upstream_id: str) -> InboundRequest | None:
        """The ``Pipeline Hook`` delivery GitLab sends as a pipeline reaches its current status."""
        with self.fake._lock:
            payload = self.fake.hooks.pipeline_body(self.fake.pipeline(int(upstream_id)))
        target = Target(self.fake.url, HOOK_TOKEN, SIGNING_TOKEN)
        headers, body = signed_delivery(gitlab_headers, target, "Pipeline Hook", payload)
        return InboundRequest(headers, body)

    def tick(self) -> None:
        time.sleep(0.01)

    def close(self) -> None:
        self.fake.stop()
