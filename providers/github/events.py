"""GitHub webhooks in: signature check, parsing, and the snapshots an event causes.

GitHub signs the raw body with the webhook's secret: ``X-Hub-Signature-256: sha256=<hex
HMAC-SHA256>``; ``X-GitHub-Event`` names the event and ``X-GitHub-Delivery`` is a GUID that a
redelivery repeats. A ``workflow_run`` event carries the run exactly as the runs list shows
it, so it goes through the polling code (``GitHubProvider._snapshot``: jobs, deployment URL);
``workflow_job`` and ``deployment_status`` say that a run moved on and the run is read again
(conditionally: a 304 costs nothing).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import Any, Mapping, Sequence

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
from flashfusion.providers.github.mapping import utc

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
        return InboundEvent(kind="push", repository=repository, ref=ref.removeprefix("refs/heads/"),
                            commit=payload.get("after"), pusher=(payload.get("pusher") or {}).get("name"))
    if event == "workflow_run":
        item = payload.get("workflow_run") or {}
        return InboundEvent(kind="run", repository=repository, upstream_id=str(item["id"]),
                            started_upstream=item.get("event") != "workflow_dispatch",
                            ref=item.get("head_branch"), commit=item.get("head_sha"),
                            occurred_at=utc(item.get("updated_at")), data={"item": item})
    if event == "workflow_job":
        job = payload.get("workflow_job") or {}
        return InboundEvent(kind="run", repository=repository, upstream_id=str(job["run_id"]),
                            occurred_at=utc(job.get("completed_at") or job.get("started_at")))
    if event == "deployment_status":
        status = payload.get("deployment_status") or {}
        run = payload.get("workflow_run") or {}
        found = _RUN_LINK.search(f"{status.get('log_url') or ''} {status.get('target_url') or ''}")
        upstream_id = str(run["id"]) if run.get("id") else found.group(1) if found else None
        return InboundEvent(kind="run", repository=repository, upstream_id=upstream_id)
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


class GitHubEvents:
    """The webhook half of ``GitHubProvider`` (mixed in; uses its client pool and lister)."""

    webhook_events = ("Workflow runs", "Workflow jobs", "Deployment statuses", "Pushes")

    settings: Any
    env: Mapping[str, str]
    _pool: Any
    _lister: Any

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
                    "web", {"url": url, "content_type": "json", "secret": secret, "insecure_ssl": "0"},
                    events=sorted(EVENTS - {"ping"}), active=True)
        except GithubException as exc:
            raise UpstreamRejected(f"github: creating the webhook of {pipeline.repository_name} failed "
                                   f"(HTTP {exc.status}); the token needs admin:repo_hook or Webhooks: write") from exc
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
        with self._pool.client() as g:
            for run in runs:
                item = event.data.get("item") or self._lister.run(g, repo, str(run.upstream_id))
                if item is None or stale(run, item):
                    continue
                snapshot = self._snapshot(g, pipeline, run, item)  # type: ignore[attr-defined]
                if snapshot.terminal:
                    self._lister.forget_run(repo, str(item["id"]))
                out.append(snapshot)
        return out
