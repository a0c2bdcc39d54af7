"""The kit's ``FakeControl`` over ``FakeJenkins``."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from fake_jenkins import FakeJenkins
from flashfusion_jenkins.provider import JenkinsProvider

from flashfusion.plugins import Pipeline, Provider
from flashfusion.plugins.testing import FakeControl, Fault, UpstreamRun

JOB = "team/app"
STATES = {
    "building": "running",
    "SUCCESS": "success",
    "FAILURE": "failed",
    "UNSTABLE": "failed",
    "ABORTED": "failed",
    "NOT_BUILT": "success",
}
FAULTS = {Fault.BAD_CREDENTIALS: 401, Fault.NOT_FOUND: 404, Fault.RATE_LIMITED: 429, Fault.UNAVAILABLE: 503}


def settings_table(fake: FakeJenkins, **extra: Any) -> dict[str, Any]:
    return {"url": fake.url, "user": fake.user, "poll_interval_seconds": 0.05, **extra}


class JenkinsControl(FakeControl):
    timeout_seconds = 20.0

    def __init__(self, **fake_options: Any) -> None:
        self.fake = FakeJenkins(require_crumb=True, **fake_options).start()
        self.fake.add_job(JOB)

    def provider(self) -> Provider:
        return JenkinsProvider.from_table(settings_table(self.fake), env={"JENKINS_TOKEN": self.fake.token})

    def pipeline(self) -> Pipeline:
        return Pipeline(id="kit", name="kit", provider="jenkins", repository_name=JOB)

    def runs(self) -> Sequence[UpstreamRun]:
        return [UpstreamRun(str(b.number), dict(b.params)) for b in self.fake.builds()]

    def states(self) -> Mapping[str, str]:
        return STATES

    def set_state(self, upstream_id: str, state: str) -> None:
        self.fake.set_state(int(upstream_id), state)

    def advance(self, upstream_id: str) -> bool:
        return self.fake.advance(int(upstream_id))

    def unknown_state(self) -> str | None:
        return "KIT_UNHEARD_OF"

    def inject(self, fault: Fault, *, retry_after: int) -> bool:
        headers = {"Retry-After": str(retry_after)} if fault is Fault.RATE_LIMITED else {}
        self.fake.fail_next(FAULTS[fault], headers=headers)
        return True

    def secrets(self) -> Sequence[str]:
        return [self.fake.token]

    def invalid_settings(self) -> Sequence[tuple[Mapping[str, Any], str]]:
        url = {"url": self.fake.url}
        return [
            ({"url": "ftp://jenkins", "user": "u"}, "url"),
            (url, "user"),
            ({**url, "user": "u", "timeout_seconds": 0}, "timeout_seconds"),
            ({**url, "user": "u", "ssl_verify": 3}, "ssl_verify"),
        ]

    def tick(self) -> None:
        time.sleep(0.01)

    def close(self) -> None:
        self.fake.stop()
