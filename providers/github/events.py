"""GitHub webhooks in: signature check, parsing, and the snapshots an event causes.

GitHub signs the raw body with the webhook's secret: ``X-Hub-Signature-256: sha256=<hex
HMAC-SHA256>``; ``X-GitHub-Event`` names the event and ``X-GitHub-Delivery`` is a GUID that a
redelivery repeats. What each event costs upstream:

* ``workflow_run`` carries the run exactly as the runs list shows it, so it goes through the
  polling code (``GitHubProvider._snapshot``). Its jobs are read only when the run has
  completed: the final steps. That read stays even when every job's hooks have arrived,
  because a ``workflow_run`` hook does not say how many jobs the run has, and a job whose hooks
  were all dropped would otherwise be missing from the finished run for good.
* ``workflow_job`` carries one job with its steps: that job's steps are replaced from the
  hook's own body, reading nothing.
* ``deployment_status`` carries the deployment and, for one made by a workflow run, that run:
  a successful status gives the run its deployment URL from the body, reading nothing. The
  lookup at completion (``deployments``) remains for a run whose URL no hook brought.

While a repository's hooks arrive (one applied within ``reconcile_interval_seconds``), a poll
reads a run's jobs only when the runs list shows a status or attempt that no hook reported:
step progress inside a job is not worth a request when the job's hooks bring its steps.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from github import GithubException

from flashfusion.plugins import (
    DeliveryRejected,
    InboundDelivery,
    InboundEvent,
    Pipeline,
    RunRef,
    RunSnapshot,
    UpstreamRejected,
)
from flashfusion.providers.github.mapping import steps_from_jobs, utc

FINAL = frozenset({"success", "failed", "skipped", "cancelled"})

EVENTS = frozenset({"workflow_run", "workflow_job", "deployment_status", "push", "ping"})
_RUN_LINK = re.compile(r"/actions/runs/(\d+)")


def verify(headers: Mapping[str, str], body: bytes, secret: str | None) -> InboundDelivery:
    if not secret:
        raise DeliveryRejected("github: no webhook secret is configured (webhook_secret_env)")
    given = headers.get("x-hub-signature-256", "")
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise DeliveryRejected("github: X-Hub-Signature-256 is missing or does not match")
    event = headers.get("x-github-event", "")
    delivery_id = headers.get("x-github-delivery") or hashlib.sha256(body).hexdigest()
    return InboundDelivery(delivery_id=delivery_id, event=event, wanted=event in EVENTS)


def parse(event: str, body: bytes) -> InboundEvent | None:
    payload = json.loads(body)
    repository = str((payload.get("repository") or {}).get("full_name") or "")
    if event == "ping":
        return InboundEvent(kind="ping", repository=repository)
    if event == "push":
        ref = str(payload.get("ref") or "")
        if not ref.startswith("refs/heads/"):
            return None  # tags and deletions start nothing
        return InboundEvent(
            kind="push",
            repository=repository,
            ref=ref.removeprefix("refs/heads/"),
            commit=payload.get("after"),
            pusher=(payload.get("pusher") or {}).get("name"),
        )
    if event == "workflow_run":
        item = payload.get("workflow_run") or {}
        return InboundEvent(
            kind="run",
            repository=repository,
            upstream_id=str(item["id"]),
            started_upstream=item.get("event") != "workflow_dispatch",
            ref=item.get("head_branch"),
            commit=item.get("head_sha"),
            occurred_at=utc(item.get("updated_at")),
            data={"item": item},
        )
    if event == "workflow_job":
        job = payload.get("workflow_job") or {}
        return InboundEvent(
            kind="run",
            repository=repository,
            upstream_id=str(job["run_id"]),
            occurred_at=utc(job.get("completed_at") or job.get("started_at")),
            data={"job": job},
        )
    if event == "deployment_status":
        status = payload.get("deployment_status") or {}
        run = payload.get("workflow_run") or {}
        found = _RUN_LINK.search(f"{status.get('log_url') or ''} {status.get('target_url') or ''}")
        upstream_id = str(run["id"]) if run.get("id") else found.group(1) if found else None
        return InboundEvent(
            kind="run",
            repository=repository,
            upstream_id=upstream_id,
            data={"deployment_status": status, "deployment": payload.get("deployment") or {}},
        )
    return None


def workflow_matches(pipeline: Pipeline, item: Mapping[str, Any]) -> bool:
    """Whether a ``workflow_run`` item is a run of the pipeline's ``workflow`` (a file name or id)."""
    workflow = str(pipeline.option("workflow", ""))
    path = str(item.get("path") or "")
    return workflow in (str(item.get("workflow_id")), path, path.rsplit("/", 1)[-1])


def stale(run: RunRef, item: Mapping[str, Any]) -> bool:
    """The item is older than what the run already reflects (an earlier attempt, or an
    earlier ``updated_at`` of the same attempt)."""
    known_attempt, attempt = run.state.get("run_attempt"), item.get("run_attempt")
    if isinstance(known_attempt, int) and isinstance(attempt, int) and attempt != known_attempt:
        return attempt < known_attempt
    known, seen = utc(run.state.get("updated_at")), utc(item.get("updated_at"))
    return known is not None and seen is not None and seen < known


class _Job:
    """A ``workflow_job`` hook's job with the attributes ``steps_from_jobs`` reads (PyGithub's
    WorkflowJob has the same names)."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.name = str(raw.get("name") or "")
        self.status, self.conclusion = raw.get("status"), raw.get("conclusion")
        self.started_at, self.completed_at = raw.get("started_at"), raw.get("completed_at")
        self.html_url = raw.get("html_url")
        self.steps = [_Step(s) for s in raw.get("steps") or []]


class _Step:
    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.number = int(raw.get("number") or 0)
        self.name = str(raw.get("name") or "")
        self.status, self.conclusion = raw.get("status"), raw.get("conclusion")
        self.started_at, self.completed_at = raw.get("started_at"), raw.get("completed_at")


def job_snapshot(run: RunRef, raw: Mapping[str, Any]) -> RunSnapshot | None:
    """The run with one job's steps replaced by those in a ``workflow_job`` hook. A job under
    way means the run is; the run's own end comes with its ``workflow_run`` event. An event
    older than what the run shows for that job (a late ``in_progress`` after ``completed``)
    changes nothing."""
    job = _Job(raw)
    known = [s for s in run.steps if s.stage == job.name]
    if known and all(s.status in FINAL for s in known) and job.status != "completed":
        return None
    # The job's steps go where its first step was (the steps before it are all other jobs'), or last.
    others = [s for s in run.steps if s.stage != job.name]
    at = next((i for i, s in enumerate(run.steps) if s.stage == job.name), len(others))
    steps = (*others[:at], *steps_from_jobs([job]), *others[at:])
    phase = "in_progress" if job.status in ("in_progress", "completed") else "dispatching"
    return RunSnapshot(run_id=run.id, status="running", phase=phase, provider_status=run.provider_status, steps=steps)


def deployment_snapshot(
    pipeline: Pipeline, run: RunRef, status: Mapping[str, Any], deployment: Mapping[str, Any]
) -> RunSnapshot | None:
    """The run's deployment URL from a ``deployment_status`` hook about it: a successful status
    with an ``environment_url`` (in the pipeline's ``environment``, when it names one). The
    first URL found stays, as when polling finds it."""
    url = status.get("environment_url")
    if run.state.get("deployment_url") or status.get("state") != "success" or not url:
        return None
    environment = pipeline.option("environment")
    if environment and str(deployment.get("environment") or status.get("environment")) != str(environment):
        return None
    return RunSnapshot(
        run_id=run.id,
        status="running",
        phase="in_progress",
        provider_status=run.provider_status,
        deployment_url=str(url),
        state={**run.state, "deployment_url": str(url)},
    )


class GitHubEvents:
    """The webhook half of ``GitHubProvider`` (mixed in; uses its client pool and lister)."""

    webhook_events: ClassVar[tuple[str, ...]] = ("Workflow runs", "Workflow jobs", "Deployment statuses", "Pushes")

    settings: Any
    env: Mapping[str, str]
    _pool: Any
    _lister: Any
    _clock: Callable[[], float]
    _hooks_seen: dict[str, float]

    def hooks_arrive(self, repo: str) -> bool:
        """Whether a hook about ``repo`` was applied here within ``reconcile_interval_seconds``."""
        seen = self._hooks_seen.get(repo.lower())
        return seen is not None and self._clock() - seen <= self.settings.reconcile_interval_seconds

    def _snapshot(
        self, g: Any, pipeline: Pipeline, run: RunRef, item: Mapping[str, Any], *, with_steps: bool = True
    ) -> RunSnapshot:
        raise NotImplementedError

    def verify_delivery(self, headers: Mapping[str, str], body: bytes) -> InboundDelivery:
        name = self.settings.webhook_secret_env
        return verify(headers, body, self.env.get(name) if name else None)

    def register_webhook(self, pipeline: Pipeline, url: str) -> str:
        secret = self.env.get(self.settings.webhook_secret_env or "")
        if not secret:
            raise UpstreamRejected("github: set webhook_secret_env and its environment variable first")
        try:
            with self._pool.client() as g:
                hook = g.get_repo(pipeline.repository_name).create_hook(
                    "web",
                    {"url": url, "content_type": "json", "secret": secret, "insecure_ssl": "0"},
                    events=sorted(EVENTS - {"ping"}),
                    active=True,
                )
        except GithubException as exc:
            raise UpstreamRejected(
                f"github: creating the webhook of {pipeline.repository_name} failed "
                f"(HTTP {exc.status}); the token needs admin:repo_hook or Webhooks: write"
            ) from exc
        return f"github webhook {hook.id} on {pipeline.repository_name} -> {url}"

    def parse_event(self, delivery: InboundDelivery, headers: Mapping[str, str], body: bytes) -> InboundEvent | None:
        return parse(delivery.event, body)

    def event_matches(self, pipeline: Pipeline, event: InboundEvent) -> bool:
        if pipeline.repository_name.lower() != event.repository.lower():
            return False
        item = event.data.get("item")
        return item is None or workflow_matches(pipeline, item)

    def event_snapshots(self, pipeline: Pipeline, event: InboundEvent, runs: Sequence[RunRef]) -> list[RunSnapshot]:
        out: list[RunSnapshot] = []
        repo = pipeline.repository_name
        self._hooks_seen[repo.lower()] = self._clock()
        job = event.data.get("job")
        if job is not None:
            return [s for s in (job_snapshot(run, job) for run in runs) if s is not None]
        status = event.data.get("deployment_status")
        if status is not None:
            deployment = event.data.get("deployment") or {}
            return [s for s in (deployment_snapshot(pipeline, run, status, deployment) for run in runs) if s]
        with self._pool.client() as g:
            for run in runs:
                item = event.data.get("item") or self._lister.run(g, repo, str(run.upstream_id))
                if item is None or stale(run, item):
                    continue
                snapshot = self._snapshot(g, pipeline, run, item, with_steps=item.get("status") == "completed")
                if snapshot.terminal:
                    self._lister.forget_run(repo, str(item["id"]))
                out.append(snapshot)
        return out
