"""Applying one stored delivery: the provider parses it and turns it into the snapshots
polling would give, and they go through the one transition path (``apply_snapshot``), so
steps, deployment URLs and outgoing webhooks follow as they do for polled changes.

Runs that upstream started itself (a push, a schedule) for a configured pipeline become runs
of that pipeline marked ``started_upstream`` (its trigger says ``upstream``) (one per upstream run and pipeline: a unique
index makes a second worker's insert fail harmlessly).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import peewee

from flashfusion.core.gateway import Gateway
from flashfusion.core.hooks import inbox
from flashfusion.core.ids import new_id
from flashfusion.core.runs import transitions as runs
from flashfusion.core.runs import triggers
from flashfusion.core.runs.results import completion_for
from flashfusion.core.storage.db import to_db_time, utcnow, write_tx
from flashfusion.core.storage.models import InboundHook, Run
from flashfusion.plugins import InboundDelivery, InboundEvent, Pipeline, Provider, ProviderError

log = logging.getLogger("flashfusion.hooks")


@dataclass
class Applied:
    """What applying a delivery did: runs that finished (for ``run_finished`` hooks) and
    pipelines to poll at once (an event that names no run, or a run not bound yet)."""

    finished: list[str] = field(default_factory=list)
    poll_now: set[str] = field(default_factory=set)


def apply_delivery(gw: Gateway, row: InboundHook) -> Applied:
    applied = Applied()
    provider = gw.providers.instances.get(row.provider)
    if provider is None:
        inbox.done(row, None, "provider no longer configured")
        return applied
    headers = dict(row.headers or {})
    try:
        event = provider.parse_event(InboundDelivery(row.delivery_id, row.event), headers, row.body.encode())
    except (ValueError, KeyError, TypeError) as exc:
        inbox.done(row, None, f"unreadable: {exc.__class__.__name__}")
        return applied
    if event is None:
        inbox.done(row, None, "ignored")
        return applied
    pipelines = [
        p for p in gw.config.pipelines.values() if p.provider == row.provider and provider.event_matches(p, event)
    ]
    repository = pipelines[0].repository_name if pipelines else event.repository
    if event.kind == "push":
        outcome = _push(gw, row.provider, event)
    elif event.kind == "run":
        outcome = _run_event(provider, pipelines, event, applied, gw.pm.hook.check_quality_gate)
    else:
        outcome = event.kind
    with write_tx():
        inbox.done(row, repository, outcome)
    return applied


def _push(gw: Gateway, provider: str, event: InboundEvent) -> str:
    started = triggers.on_push(gw, provider, event.repository, event.ref or "", event.commit or "", event.pusher or "")
    return f"push: {len(started)} run(s) started"


def _run_event(
    provider: Provider, pipelines: list[Pipeline], event: InboundEvent, applied: Applied, check_gate: Callable[..., Any]
) -> str:
    if event.upstream_id is None:
        applied.poll_now.update(p.id for p in pipelines)
        return "poll requested"
    changed = 0
    for pipeline in pipelines:
        bound = list(
            Run.select().where(
                (Run.pipeline_id == pipeline.id)
                & (Run.upstream_id == event.upstream_id)
                & Run.phase.in_(runs.ACTIVE_PHASES)
            )
        )
        if not bound and event.started_upstream:
            created = _started_upstream(pipeline, event)
            bound = [created] if created is not None else []
        if not bound:
            if _has_unbound(pipeline):
                applied.poll_now.add(pipeline.id)  # a dispatch of ours may be waiting for this run
            continue
        try:
            snapshots = provider.event_snapshots(pipeline, event, [runs.to_ref(r) for r in bound])
        except ProviderError as exc:
            log.warning("applying a %s hook to pipeline %s failed: %s", provider.name, pipeline.id, exc.message)
            applied.poll_now.add(pipeline.id)
            continue
        except Exception:
            log.exception("applying a %s hook to pipeline %s crashed", provider.name, pipeline.id)
            applied.poll_now.add(pipeline.id)
            continue
        refs = {r.id: runs.to_ref(r) for r in bound}
        for snapshot in snapshots:
            if snapshot.run_id not in refs:
                continue
            completion = completion_for(pipeline, provider, refs[snapshot.run_id], snapshot, check_gate)
            if runs.apply_snapshot(snapshot, completion=completion):
                changed += 1
                if snapshot.terminal:
                    applied.finished.append(snapshot.run_id)
    return f"run {event.upstream_id}: {changed} change(s)"


def _has_unbound(pipeline: Pipeline) -> bool:
    return (
        Run.select()
        .where((Run.pipeline_id == pipeline.id) & Run.upstream_id.is_null() & Run.phase.in_(runs.ACTIVE_PHASES))
        .exists()
    )


def _started_upstream(pipeline: Pipeline, event: InboundEvent) -> Run | None:
    """The run of ``pipeline`` for an upstream-started run, created on its first event;
    None when it exists already and has finished."""
    existing = Run.get_or_none((Run.pipeline_id == pipeline.id) & (Run.upstream_id == event.upstream_id))
    if existing is not None:
        return existing if existing.phase in runs.ACTIVE_PHASES else None
    now = to_db_time(utcnow())
    try:
        with write_tx():
            return Run.create(
                id=new_id("run"),
                pipeline_id=pipeline.id,
                provider=pipeline.provider,
                ref=event.ref or pipeline.branch,
                inputs={},
                api_key_id=None,
                status="running",
                phase="dispatching",
                upstream_id=event.upstream_id,
                html_url=event.data.get("html_url"),
                steps=[],
                state={},
                created_at=now,
                updated_at=now,
                started_upstream=True,
                trigger={
                    "kind": "upstream",
                    "upstream_run_id": event.upstream_id,
                    **({"commit": event.commit} if event.commit else {}),
                },
            )
    except peewee.IntegrityError:
        return Run.get_or_none((Run.pipeline_id == pipeline.id) & (Run.upstream_id == event.upstream_id))
