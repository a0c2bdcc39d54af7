"""An example FlashFusion provider: runs that finish by themselves after two polls."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from flashfusion.plugins import (
    Dispatch,
    Pipeline,
    Provider,
    RunRef,
    RunSnapshot,
    StepResult,
    UpstreamAuthError,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
    hookimpl,
)

FAILURES = {
    "rejected": lambda p: UpstreamRejected("No ref found for: does-not-exist"),
    "auth": lambda p: UpstreamAuthError(f"echo rejected the credentials of pipeline {p.id}"),
    "down": lambda p: UpstreamUnavailable("echo answered 503 Service Unavailable"),
    "timeout": lambda p: UpstreamTimeout("echo did not answer within 15 s"),
}


@dataclass(frozen=True)
class EchoSettings:
    base_url: str = "https://echo.invalid"
    poll_interval_seconds: float = 0.05


class EchoProvider(Provider):
    name = "echo"
    Settings = EchoSettings
    capabilities = frozenset({"cancel", "returns_run_id", "deployments"})

    def __init__(self, settings: EchoSettings, *, env: Mapping[str, str] | None = None) -> None:
        super().__init__(settings, env=env)
        self._ids = itertools.count(1000)
        self._lock = threading.Lock()
        self.polls: list[int] = []
        self.cancelled: set[str] = set()

    def dispatch(self, pipeline: Pipeline, run: RunRef, ref: str, inputs: Mapping[str, str]) -> Dispatch:
        failure = inputs.get("echo_fail")
        if failure in FAILURES:
            raise FAILURES[failure](pipeline)
        if failure == "crash":
            raise RuntimeError("a bug in the plugin")
        with self._lock:
            upstream = str(next(self._ids))
        url = f"{self.settings.base_url}/{pipeline.repository_name}/runs/{upstream}"
        return Dispatch(workflow_id="echo.yml", upstream_id=upstream, api_url=url, html_url=url, state={"polls": 0})

    def poll(self, pipeline: Pipeline, runs: Sequence[RunRef]) -> list[RunSnapshot]:
        self.polls.append(len(runs))
        now = datetime.now(UTC)
        return [self._snapshot(run, int(run.state.get("polls", 0)) + 1, now) for run in runs]

    def _snapshot(self, run: RunRef, polls: int, now: datetime) -> RunSnapshot:
        """In progress at the first poll, successful at the next, unless cancelled."""
        memo = {"polls": polls}
        if run.id in self.cancelled:
            return RunSnapshot.failed(run.id, "cancelled", "cancelled", finished_at=now, state=memo)
        if polls == 1:
            step = StepResult(name="echo", status="running", started_at=now)
            return RunSnapshot(
                run_id=run.id,
                status="running",
                phase="in_progress",
                provider_status="in_progress",
                started_at=now,
                steps=(step,),
                state=memo,
            )
        step = StepResult(name="echo", status="success", conclusion="success", completed_at=now)
        return RunSnapshot(
            run_id=run.id,
            status="success",
            phase="completed",
            conclusion="success",
            provider_status="completed",
            finished_at=now,
            deployment_url=run.inputs.get("deploy_to"),
            steps=(step,),
            state=memo,
        )

    def cancel(self, pipeline: Pipeline, run: RunRef) -> None:
        if run.inputs.get("echo_fail_cancel"):
            raise UpstreamUnavailable("echo could not cancel")
        with self._lock:
            self.cancelled.add(run.id)


@hookimpl
def register_providers(register):
    register(EchoProvider)
