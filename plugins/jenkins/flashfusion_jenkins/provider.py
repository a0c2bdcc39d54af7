"""``JenkinsProvider``: trigger, follow and stop Jenkins builds, written against
``flashfusion.plugins`` only.

A dispatch POSTs ``buildWithParameters`` (``build`` without inputs) and gets a queue item;
polls follow the queue item until Jenkins names the build number (the run's upstream id),
then read the build and, for Pipeline jobs, its stages (``wfapi/describe``) as steps.
Cancel POSTs ``stop`` to the build, or cancels the queue item while it waits.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from flashfusion.plugins import (
    Dispatch,
    Pipeline,
    Provider,
    ProviderError,
    RunRef,
    RunSnapshot,
    StepResult,
    UpstreamAuthError,
    UpstreamRejected,
)
from flashfusion_jenkins import mapping
from flashfusion_jenkins.client import JenkinsClient
from flashfusion_jenkins.settings import JenkinsSettings, job_name, job_path, validate

log = logging.getLogger("flashfusion_jenkins")

QUEUE_ITEM = re.compile(r"/queue/item/(\d+)/?$")


class JenkinsProvider(Provider):
    """Pipeline block: ``repository_name`` (or ``job``) is the job's full name, folders
    separated by ``/``; ``multibranch = true`` makes it a multibranch project whose branch
    job is chosen by the run's branch."""

    name = "jenkins"
    Settings = JenkinsSettings
    capabilities = frozenset({"cancel"})

    def __init__(self, settings: JenkinsSettings, *, env: Mapping[str, str] | None = None) -> None:
        super().__init__(settings, env=env)
        self._lock = threading.Lock()
        self._client: JenkinsClient | None = None
        self._hold_until = 0.0

    def __repr__(self) -> str:
        return f"JenkinsProvider(url={self.settings.url!r}, user={self.settings.user!r})"

    def validate(self, pipeline: Pipeline) -> None:
        validate(pipeline)

    def check(self, pipeline: Pipeline) -> list[str]:
        path = job_path(pipeline, pipeline.branch)
        try:
            job = self._jenkins().get_json(
                f"{path}/api/json", f"check job {job_name(pipeline)!r}", params={"tree": "name,buildable"}
            )
        except ProviderError as exc:
            return [exc.message]
        if job.get("buildable") is False:
            return [f"jenkins: job {job_name(pipeline)!r} is disabled (not buildable)"]
        return []

    def dispatch(self, pipeline: Pipeline, run: RunRef, ref: str, inputs: Mapping[str, str]) -> Dispatch:
        path = job_path(pipeline, ref)
        action = f"trigger job {job_name(pipeline)!r}"
        if inputs:
            response = self._jenkins().post(f"{path}/buildWithParameters", action, data=dict(inputs))
        else:
            response = self._jenkins().post(f"{path}/build", action)
        found = QUEUE_ITEM.search(response.headers.get("location", "").rstrip("/") + "/")
        if found is None:
            raise ProviderError(f"jenkins: {action}: Jenkins accepted the build but named no queue item")
        item = int(found.group(1))
        return Dispatch(
            workflow_id=job_name(pipeline),
            api_url=f"{self._jenkins().base}/queue/item/{item}/",
            provider_status="queued",
            state={"queue_item": item, "job_path": path},
        )

    def poll(self, pipeline: Pipeline, runs: Sequence[RunRef]) -> list[RunSnapshot]:
        """One request per waiting queue item and per changed build (two for a Pipeline
        job: the build and its stages). Bad credentials raise; other failures are logged and
        the run keeps its state; a rate limit holds polling back until its Retry-After."""
        if time.monotonic() < self._hold_until:
            return []
        out: list[RunSnapshot] = []
        for run in runs:
            try:
                snapshot = self._poll_one(pipeline, run)
            except UpstreamAuthError:
                raise
            except ProviderError as exc:
                if exc.retry_after:
                    self._hold_until = time.monotonic() + exc.retry_after
                log.warning("%s", exc.message)
                break
            if snapshot is not None:
                out.append(snapshot)
        return out

    def cancel(self, pipeline: Pipeline, run: RunRef) -> None:
        path = str(run.state.get("job_path") or job_path(pipeline, run.ref))
        if run.upstream_id:
            self._jenkins().post(f"{path}/{run.upstream_id}/stop", f"stop build #{run.upstream_id}")
            return
        item = run.state.get("queue_item")
        if item is None:
            raise UpstreamRejected("jenkins: the run has no queue item or build to cancel")
        self._jenkins().post(f"queue/cancelItem?id={int(item)}", f"cancel queue item {item}")

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    # ------------------------------------------------------------------ helpers

    def _jenkins(self) -> JenkinsClient:
        with self._lock:
            if self._client is None:
                token = self.env.get(self.settings.token_env, "")
                if not token:
                    raise UpstreamAuthError(
                        f"jenkins: environment variable {self.settings.token_env} (API token) is not set"
                    )
                self._client = JenkinsClient(
                    self.settings.url,
                    self.settings.user,
                    token,
                    verify=self.settings.ssl_verify,
                    timeout=self.settings.timeout_seconds,
                )
            return self._client

    def _poll_one(self, pipeline: Pipeline, run: RunRef) -> RunSnapshot | None:
        path = str(run.state.get("job_path") or job_path(pipeline, run.ref))
        number = run.upstream_id
        if number is None:
            waiting = self._from_queue(run)
            if isinstance(waiting, RunSnapshot) or waiting is None:
                return waiting
            number = waiting
        client = self._jenkins()
        build = client.get_json(
            f"{path}/{number}/api/json",
            f"read build #{number}",
            params={"tree": "number,url,building,result,timestamp,duration"},
        )
        state = {**run.state, "job_path": path}
        steps = self._steps(path, number, build, state)
        seen = [build.get("building"), build.get("result"), build.get("duration"), [[s.name, s.status] for s in steps]]
        if run.upstream_id is not None and run.state.get("seen") == seen:
            return None
        state["seen"] = seen
        return mapping.snapshot(run.id, build, steps, state)

    def _from_queue(self, run: RunRef) -> RunSnapshot | str | None:
        """The build number once the queue item has one, else the run's queued snapshot
        (``None`` when it was already reported)."""
        item = run.state.get("queue_item")
        if item is None:
            return RunSnapshot.failed(run.id, "dispatch_lost", "no_queue_item")
        try:
            queued = self._jenkins().get_json(f"queue/item/{int(item)}/api/json", f"read queue item {item}")
        except UpstreamRejected:
            return RunSnapshot.failed(run.id, "dispatch_lost", "queue_item_gone")
        executable = queued.get("executable") or {}
        if executable.get("number") is not None:
            return str(executable["number"])
        if queued.get("cancelled"):
            return RunSnapshot.failed(run.id, "cancelled", "cancelled_in_queue")
        if run.state.get("queued_reported"):
            return None
        return RunSnapshot(
            run_id=run.id,
            status="running",
            phase="queued",
            provider_status="queued",
            state={**run.state, "queued_reported": True},
        )

    def _steps(self, path: str, number: str, build: Mapping[str, Any], state: dict[str, Any]) -> tuple[StepResult, ...]:
        if state.get("stages") is not False:
            try:
                described = self._jenkins().get_json(f"{path}/{number}/wfapi/describe", f"read stages of #{number}")
            except UpstreamRejected:
                state["stages"] = False
            else:
                state["stages"] = True
                url = build.get("url")
                return tuple(mapping.stage_step(stage, url) for stage in described.get("stages") or ())
        return (mapping.build_step(job_name_of(path), build),)


def job_name_of(path: str) -> str:
    return path.rsplit("/", 1)[-1]
