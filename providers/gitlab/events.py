"""GitLab webhooks in: token and signature checks, parsing, and the snapshots an event causes.

GitLab sends the webhook's secret token as ``X-Gitlab-Token``; with a signing token it also
signs each delivery the Standard Webhooks way (``webhook-id``, ``webhook-timestamp``,
``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">``, the key being the
base64 part of ``whsec_...``). ``X-Gitlab-Event`` names the event and
``X-Gitlab-Event-UUID`` identifies the delivery (a redelivery repeats it).

A ``Job Hook`` carries one job: that job's step is replaced from the hook's own body, reading
nothing; a hook about an older attempt of the job, or an earlier state of the same attempt,
changes nothing. A ``Pipeline Hook`` about an unfinished pipeline is applied from its body the
same way (its status, and its ``builds`` merged as job hooks), unless the run already shows a
later status. A ``Pipeline Hook`` that reports the pipeline finished is applied by reading the
pipeline and its jobs again with the polling code: the run ends exactly as polling shows it
(final steps, times, deployment URL), however many hooks were lost before. (``Deployment Hook`` names a job, not
a pipeline, so it only asks for the project to be polled.) While a project's hooks arrive, a
poll re-reads a pipeline only when its status changed without a hook saying so.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from flashfusion.plugins import (
    DeliveryRejected,
    InboundDelivery,
    InboundEvent,
    Pipeline,
    RunRef,
    RunSnapshot,
    StepResult,
)
from flashfusion.providers.gitlab import mapping

EVENTS = frozenset({"Pipeline Hook", "Job Hook", "Deployment Hook", "Push Hook"})
#: Pipeline sources that mean "started by GitLab itself" (our dispatches are api or trigger).
UPSTREAM_SOURCES = frozenset(
    {"push", "schedule", "web", "merge_request_event", "external_pull_request_event", "chat", "external"}
)
SIGNATURE_TOLERANCE_SECONDS = 300
#: in a run's ``state``: hooks moved it on since it was last read (polling reads drop it)
HOOKED = "followed_by_hooks"


def verify(
    headers: Mapping[str, str], body: bytes, token: str | None, signing_key: str | None, now: float | None = None
) -> InboundDelivery:
    if not token and not signing_key:
        raise DeliveryRejected("gitlab: no webhook secret is configured (webhook_secret_env)")
    if token and not hmac.compare_digest(headers.get("x-gitlab-token", "").encode(), token.encode()):
        raise DeliveryRejected("gitlab: X-Gitlab-Token is missing or does not match")
    if signing_key:
        _check_signature(headers, body, signing_key, time.time() if now is None else now)
    event = headers.get("x-gitlab-event", "")
    delivery_id = headers.get("x-gitlab-event-uuid") or headers.get("webhook-id") or hashlib.sha256(body).hexdigest()
    return InboundDelivery(delivery_id=delivery_id, event=event, wanted=event in EVENTS)


def _check_signature(headers: Mapping[str, str], body: bytes, signing_key: str, now: float) -> None:
    msg_id, stamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
    try:
        key = base64.b64decode(signing_key.removeprefix("whsec_"), validate=True)
        sent_at = int(stamp)
    except (binascii.Error, ValueError):
        raise DeliveryRejected(
            "gitlab: webhook-timestamp is missing or the signing token is not whsec_<base64>"
        ) from None
    if abs(now - sent_at) > SIGNATURE_TOLERANCE_SECONDS:
        raise DeliveryRejected("gitlab: webhook-timestamp is too far from now")
    expected = base64.b64encode(hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest())
    given = [part.split(",", 1)[1] for part in headers.get("webhook-signature", "").split() if part.startswith("v1,")]
    if not any(hmac.compare_digest(sig.encode(), expected) for sig in given):
        raise DeliveryRejected("gitlab: webhook-signature is missing or does not match")


def _project(payload: Mapping[str, Any]) -> tuple[str, str | None]:
    project = payload.get("project") or {}
    project_id = project.get("id", payload.get("project_id"))
    path = project.get("path_with_namespace") or (str(project_id) if project_id is not None else "")
    return str(path), str(project_id) if project_id is not None else None


def parse(event: str, body: bytes) -> InboundEvent | None:
    payload = json.loads(body)
    repository, project_id = _project(payload)
    data = {"project_id": project_id}
    if event == "Push Hook":
        ref = str(payload.get("ref") or "")
        if not ref.startswith("refs/heads/") or not payload.get("checkout_sha"):
            return None  # tags and branch deletions start nothing
        return InboundEvent(
            kind="push",
            repository=repository,
            ref=ref.removeprefix("refs/heads/"),
            commit=payload.get("checkout_sha") or payload.get("after"),
            pusher=payload.get("user_username") or payload.get("user_name"),
            data=data,
        )
    if event == "Pipeline Hook":
        attrs = payload.get("object_attributes") or {}
        web = _web(payload)
        builds = [_api_job(b, web) for b in payload.get("builds") or []]
        return InboundEvent(
            kind="run",
            repository=repository,
            upstream_id=str(attrs["id"]),
            started_upstream=attrs.get("source") in UPSTREAM_SOURCES,
            ref=attrs.get("ref"),
            commit=attrs.get("sha"),
            data={**data, "html_url": attrs.get("url"), "status": attrs.get("status"), "builds": builds},
        )
    if event == "Job Hook":
        pipeline_id = payload.get("pipeline_id")
        return InboundEvent(
            kind="run",
            repository=repository,
            upstream_id=str(pipeline_id) if pipeline_id is not None else None,
            data={**data, "job": _job(payload)},
        )
    if event == "Deployment Hook":
        return InboundEvent(kind="run", repository=repository, upstream_id=None, data=data)
    return None


def project_matches(pipeline: Pipeline, event: InboundEvent) -> bool:
    repo = pipeline.repository_name.strip()
    return repo == event.repository or (repo.isdigit() and repo == event.data.get("project_id"))


def _hook_time(value: Any) -> str | None:
    """GitLab's hook times (``2021-02-23 02:41:37 UTC``) as ISO 8601, as its API writes them."""
    return None if not value else str(value).replace(" UTC", "+00:00")


def _web(payload: Mapping[str, Any]) -> str:
    return str((payload.get("project") or {}).get("web_url") or "").rstrip("/")


def _job(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A ``Job Hook``'s job in the jobs API's field names (what ``mapping.job_step`` reads)."""
    job = {key.removeprefix("build_"): value for key, value in payload.items() if key.startswith("build_")}
    return _api_job({**job, "environment": payload.get("environment")}, _web(payload))


def _api_job(job: Mapping[str, Any], web: str) -> dict[str, Any]:
    """A hook's job (a ``Pipeline Hook``'s build, or a ``Job Hook`` without its ``build_``
    prefixes) as the jobs API shows it; its page is ``<project>/-/jobs/<id>`` there too."""
    return {
        "id": job.get("id"),
        "name": job.get("name"),
        "stage": job.get("stage"),
        "status": job.get("status"),
        "allow_failure": job.get("allow_failure"),
        "started_at": _hook_time(job.get("started_at")),
        "finished_at": _hook_time(job.get("finished_at")),
        "duration": job.get("duration"),
        "web_url": f"{web}/-/jobs/{job.get('id')}" if web else None,
        "environment": job.get("environment"),
    }


def _job_id(url: str | None) -> int | None:
    tail = (url or "").rsplit("/-/jobs/", 1)
    return int(tail[1]) if len(tail) == 2 and tail[1].isdigit() else None


def job_snapshot(run: RunRef, job: Mapping[str, Any]) -> RunSnapshot | None:
    """The run with one job's step replaced by a ``Job Hook``'s job (see ``_merged``); None
    when the hook is older than what the run shows."""
    fresh = mapping.job_step(job)
    steps = _merged(list(run.steps), fresh)
    if steps is None:
        return None
    started = fresh.status != "pending"
    return RunSnapshot(
        run_id=run.id,
        status="running",
        phase="in_progress" if started else "queued",
        provider_status=run.provider_status,
        steps=tuple(steps),
        state={**run.state, HOOKED: True},
    )


def pipeline_snapshot(
    run: RunRef, status: str, builds: Sequence[Mapping[str, Any]], html_url: str | None
) -> RunSnapshot | None:
    """An unfinished pipeline from its ``Pipeline Hook``: its status, and each build merged into
    the run's steps as a job hook would be. None when the run shows a later status (a late
    hook); a pipeline's end is read with the polling code instead (final steps, deployments)."""
    if _pipeline_rank(status) < _pipeline_rank(run.provider_status):
        return None
    steps = list(run.steps)
    for build in builds:
        steps = _merged(steps, mapping.job_step(build)) or steps
    return mapping.snapshot(
        run.id,
        {"status": status, "web_url": html_url, "id": run.upstream_id},
        tuple(steps),
        None,
        {**run.state, "status": status, HOOKED: True},
    )


def _merged(steps: list[StepResult], fresh: StepResult) -> list[StepResult] | None:
    """``steps`` with ``fresh`` in the place of its job (same stage and name; a job not shown
    yet goes where its id puts it, as polling orders jobs); None when the run shows a newer
    attempt of that job (a higher job id) or a later state of the same attempt."""
    steps = list(steps)
    at = next((i for i, s in enumerate(steps) if (s.stage, s.name) == (fresh.stage, fresh.name)), None)
    if at is not None:
        known_id, new_id = _job_id(steps[at].url), _job_id(fresh.url)
        if known_id is not None and new_id is not None and new_id < known_id:
            return None
        if known_id == new_id and _rank(fresh.status) < _rank(steps[at].status):
            return None
        steps[at] = fresh
    else:
        new_id = _job_id(fresh.url) or 0
        later = [i for i, s in enumerate(steps) if (_job_id(s.url) or 0) > new_id]
        steps.insert(later[0] if later else len(steps), fresh)
    return steps


def _pipeline_rank(status: str | None) -> int:
    if status in mapping.TERMINAL:
        return 2
    return 1 if status in ("running", "manual", "canceling") else 0


def _rank(step_status: str) -> int:
    return {"pending": 0, "running": 1}.get(step_status, 2)
