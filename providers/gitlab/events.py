"""GitLab webhooks in: token and signature checks, parsing, and the snapshots an event causes.

GitLab sends the webhook's secret token as ``X-Gitlab-Token``; with a signing token it also
signs each delivery the Standard Webhooks way (``webhook-id``, ``webhook-timestamp``,
``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">``, the key being the
base64 part of ``whsec_...``). ``X-Gitlab-Event`` names the event and
``X-Gitlab-Event-UUID`` identifies the delivery (a redelivery repeats it).

Every event about a pipeline (``Pipeline Hook``, ``Job Hook``; ``Deployment Hook`` names a
job, so it only asks for the project to be polled) is applied by reading the pipeline and its
jobs again with the polling code: the snapshot is the one polling gives, and an event that
arrives late cannot move a run back.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

from flashfusion.plugins import DeliveryRejected, InboundDelivery, InboundEvent, Pipeline

EVENTS = frozenset({"Pipeline Hook", "Job Hook", "Deployment Hook", "Push Hook"})
#: Pipeline sources that mean "started by GitLab itself" (our dispatches are api or trigger).
UPSTREAM_SOURCES = frozenset({"push", "schedule", "web", "merge_request_event", "external_pull_request_event",
                              "chat", "external"})
SIGNATURE_TOLERANCE_SECONDS = 300


def verify(headers: Mapping[str, str], body: bytes, token: str | None, signing_key: str | None,
           now: float | None = None) -> InboundDelivery:
    if not token and not signing_key:
        raise DeliveryRejected("gitlab: no webhook secret is configured (webhook_secret_env)")
    if token and not hmac.compare_digest(headers.get("x-gitlab-token", "").encode(), token.encode()):
        raise DeliveryRejected("gitlab: X-Gitlab-Token is missing or does not match")
    if signing_key:
        _check_signature(headers, body, signing_key, time.time() if now is None else now)
    event = headers.get("x-gitlab-event", "")
    delivery_id = (headers.get("x-gitlab-event-uuid") or headers.get("webhook-id")
                   or hashlib.sha256(body).hexdigest())
    return InboundDelivery(delivery_id=delivery_id, event=event, wanted=event in EVENTS)


def _check_signature(headers: Mapping[str, str], body: bytes, signing_key: str, now: float) -> None:
    msg_id, stamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
    try:
        key = base64.b64decode(signing_key.removeprefix("whsec_"), validate=True)
        sent_at = int(stamp)
    except (binascii.Error, ValueError):
        raise DeliveryRejected("gitlab: webhook-timestamp is missing or the signing token is not whsec_<base64>") from None
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
        return InboundEvent(kind="push", repository=repository, ref=ref.removeprefix("refs/heads/"),
                            commit=payload.get("checkout_sha") or payload.get("after"),
                            pusher=payload.get("user_username") or payload.get("user_name"), data=data)
    if event == "Pipeline Hook":
        attrs = payload.get("object_attributes") or {}
        return InboundEvent(kind="run", repository=repository, upstream_id=str(attrs["id"]),
                            started_upstream=attrs.get("source") in UPSTREAM_SOURCES, ref=attrs.get("ref"),
                            commit=attrs.get("sha"), data={**data, "html_url": attrs.get("url")})
    if event == "Job Hook":
        pipeline_id = payload.get("pipeline_id")
        return InboundEvent(kind="run", repository=repository,
                            upstream_id=str(pipeline_id) if pipeline_id is not None else None, data=data)
    if event == "Deployment Hook":
        return InboundEvent(kind="run", repository=repository, upstream_id=None, data=data)
    return None


def project_matches(pipeline: Pipeline, event: InboundEvent) -> bool:
    repo = pipeline.repository_name.strip()
    return repo == event.repository or (repo.isdigit() and repo == event.data.get("project_id"))
