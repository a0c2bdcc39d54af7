"""Run state: creation, transitions and the events they cause.

Every change of a run's state and the outbox events it causes are written in one
transaction, and each run event has a unique (run_id, event_type), so a crash or a retry can
never publish an event twice or lose one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, cast

from flashfusion.core.ids import new_id
from flashfusion.core.observability import metrics
from flashfusion.core.runs import groups, runcache
from flashfusion.core.runs.results import Completion
from flashfusion.core.runs.serialize import event_data, run_to_dict
from flashfusion.core.storage.db import fetch_by_id, from_db_time, is_sqlite, to_db_time, utcnow, write_tx
from flashfusion.core.storage.models import Run, TriggerClaim
from flashfusion.core.webhooks import outbox
from flashfusion.plugins import Dispatch, Pipeline, ProviderError, RunRef, RunSnapshot, StepResult

ACTIVE_PHASES = ("queued", "dispatching", "in_progress")
#: Phases only move forward. "queued" is the core's "not dispatched yet" (the worker dispatches
#: runs in it), so a snapshot saying "queued" upstream (GitHub's queued, GitLab's pending) leaves a
#: dispatched run in "dispatching"; the raw upstream state is in ``provider_status``.
PHASE_ORDER = {"queued": 0, "dispatching": 1, "in_progress": 2, "completed": 3}
log = logging.getLogger("flashfusion.runs")


def lifecycle(run: Run, what: str) -> None:
    """The log line and the count of one step in a run's life."""
    metrics.run_transitions.labels(run.provider, run.phase, run.status).inc()
    fields = {
        "run_id": run.id,
        "pipeline_id": run.pipeline_id,
        "provider": run.provider,
        "phase": run.phase,
        "status": run.status,
        "conclusion": run.conclusion,
        "upstream_id": run.upstream_id,
    }
    log.info(
        "run %s %s (pipeline %s, phase %s, status %s%s)",
        run.id,
        what,
        run.pipeline_id,
        run.phase,
        run.status,
        f", conclusion {run.conclusion}" if run.conclusion else "",
        extra=fields,
    )


def create_run(
    pipeline: Pipeline,
    ref: str,
    inputs: Mapping[str, str],
    api_key_id: str | None,
    *,
    trigger: Mapping[str, Any] | None = None,
    lease_owner: str | None = None,
    lease_seconds: float = 0,
    run_id: str | None = None,
    group_id: str | None = None,
) -> Run:
    """A new queued run; ``trigger`` records what started it (runs.triggers)."""
    now = utcnow()
    run = Run.create(
        id=run_id or new_id("run"),
        pipeline_id=pipeline.id,
        provider=pipeline.provider,
        ref=ref,
        inputs=dict(inputs),
        api_key_id=api_key_id,
        status="running",
        phase="queued",
        steps=[],
        state={},
        created_at=to_db_time(now),
        updated_at=to_db_time(now),
        trigger=dict(trigger) if trigger is not None else {"kind": "unknown"},
        lease_owner=lease_owner,
        lease_until=to_db_time(now + timedelta(seconds=lease_seconds)) if lease_owner else None,
        group_id=group_id,
    )
    lifecycle(run, "queued")
    return run


def create_run_once(
    claim: str,
    pipeline: Pipeline,
    ref: str,
    inputs: Mapping[str, str],
    *,
    trigger: Mapping[str, Any],
    lease_owner: str | None = None,
    lease_seconds: float = 0,
) -> Run | None:
    """Like ``create_run``, but only if no run of this pipeline has claimed ``claim`` before (a
    pushed commit, a schedule's due time). The claim and the run are written in one
    transaction, so across processes and hosts exactly one caller gets the run; the others
    get None."""
    run_id = new_id("run")
    with write_tx():
        inserted = (
            TriggerClaim.insert(
                pipeline_id=pipeline.id, claim_key=claim, run_id=run_id, created_at=to_db_time(utcnow())
            )
            .on_conflict_ignore()
            .as_rowcount()
            .execute()
        )
        if not inserted:
            return None
        return create_run(
            pipeline,
            ref,
            inputs,
            None,
            trigger=trigger,
            lease_owner=lease_owner,
            lease_seconds=lease_seconds,
            run_id=run_id,
        )


def created_at(run: Run) -> datetime:
    """When ``run`` was created, as an aware UTC datetime."""
    created = from_db_time(run.created_at)
    assert created is not None, "run.created_at is NOT NULL"
    return created


def stored_time(when: datetime) -> datetime:
    """``when`` as stored (naive UTC), for the NOT NULL time columns."""
    stored = to_db_time(when)
    assert stored is not None, "to_db_time() maps only None to None"
    return stored


def to_ref(run: Run) -> RunRef:
    return RunRef(
        id=run.id,
        pipeline_id=run.pipeline_id,
        ref=run.ref,
        inputs=run.inputs or {},
        created_at=created_at(run),
        upstream_id=run.upstream_id,
        workflow_id=run.workflow_id,
        provider_status=run.provider_status,
        steps=tuple(StepResult.from_dict(s) for s in run.steps or []),
        state=run.state or {},
    )


def emit(event_type: str, pipeline_id: str, run_id: str | None, data: dict[str, Any]) -> None:
    """Write one outbox event in the caller's transaction. Run events are unique per (run,
    type): a repeat is ignored."""
    outbox.record(event_type, pipeline_id, data, run_id=run_id)


def _locked(run_id: str) -> Run | None:
    """The run, locked for the rest of the transaction on PostgreSQL (SQLite's write
    transactions already exclude each other)."""
    return cast("Run | None", fetch_by_id(Run, run_id, for_update=not is_sqlite()))


def record_dispatch(
    run_id: str, dispatch: Dispatch, *, lease_owner: str | None = None, lease_seconds: float = 0
) -> Run | None:
    """Store the provider's answer to a dispatch; the lease passes to ``lease_owner`` (None:
    to whichever worker claims the run next)."""
    with write_tx():
        run = _locked(run_id)
        if run is None or run.phase == "completed":
            return run
        now = utcnow()
        run.workflow_id = dispatch.workflow_id
        run.upstream_id = dispatch.upstream_id
        run.api_url = dispatch.api_url
        run.html_url = dispatch.html_url
        run.provider_status = dispatch.provider_status or run.provider_status
        run.state = dict(dispatch.state)
        run.phase = "dispatching"
        run.lease_owner = lease_owner
        run.lease_until = to_db_time(now + timedelta(seconds=lease_seconds)) if lease_owner else None
        run.updated_at = stored_time(now)
        run.version += 1
        run.save()
        runcache.changed(run.id)
        lifecycle(run, f"dispatched (upstream {run.upstream_id or 'not known yet'})")
        return run


def fail_run(
    run_id: str, conclusion: str, message: str | None = None, *, phase_from: Iterable[str] = ACTIVE_PHASES
) -> Run | None:
    """End a run as ``failed`` (dispatch errors, timeouts, cancellation before dispatch)."""
    with write_tx():
        run = _locked(run_id)
        if run is None or run.phase not in tuple(phase_from):
            return run
        now = stored_time(utcnow())
        run.status, run.phase, run.conclusion = "failed", "completed", conclusion
        run.error_message = message
        run.finished_at = now
        run.started_at = run.started_at or now
        run.updated_at = now
        run.lease_owner = run.lease_until = None
        run.version += 1
        run.save()
        runcache.changed(run.id)
        emit("run.failed", run.pipeline_id, run.id, event_data(run))
        lifecycle(run, f"failed: {message or conclusion}")
        groups.note_completed(run)
        return run


def fail_dispatch(run_id: str, exc: ProviderError) -> Run | None:
    return fail_run(run_id, exc.conclusion, exc.message)


def apply_snapshot(
    snapshot: RunSnapshot, *, lease_owner: str | None = None, completion: Completion | None = None
) -> bool:
    """Store what the provider reported and publish the events the change causes.
    Returns whether anything changed. A finished run is never reopened. When the snapshot
    ends the run, ``completion`` stores its results and judges its quality gates here, so the
    run's first finished state already carries the verdict."""
    with write_tx():
        run = _locked(snapshot.run_id)
        if run is None or run.phase == "completed":
            return False
        if lease_owner is not None and run.lease_owner not in (None, lease_owner):
            return False
        before = _comparable(run)
        now = utcnow()
        run.status = snapshot.status
        phase = "completed" if snapshot.terminal else snapshot.phase
        if PHASE_ORDER.get(phase, 2) < PHASE_ORDER.get(run.phase, 0):
            phase = run.phase
        run.phase = phase
        for field in ("conclusion", "provider_status", "deployment_url", "html_url", "upstream_id"):
            value = getattr(snapshot, field)
            if value is not None:
                setattr(run, field, value)
        if snapshot.steps is not None:
            run.steps = [s.to_dict() for s in snapshot.steps]
        if snapshot.state is not None:
            run.state = dict(snapshot.state)
        if snapshot.started_at is not None:
            run.started_at = to_db_time(snapshot.started_at)
        if run.phase in ("in_progress", "completed") and run.started_at is None:
            run.started_at = to_db_time(now)
        if snapshot.terminal:
            run.finished_at = to_db_time(snapshot.finished_at or now)
            run.lease_owner = run.lease_until = None
            run.hooks_due_at = to_db_time(now)  # the worker calls the run_finished hooks, see worker.finish_runs
            if completion is not None:
                completion.apply(run, run_to_dict)
        if _comparable(run) == before:
            return False
        run.updated_at = stored_time(now)
        run.version += 1
        run.save()
        runcache.changed(run.id)
        lifecycle(run, "finished" if snapshot.terminal else "changed")
        if run.phase in ("in_progress", "completed"):
            emit("run.started", run.pipeline_id, run.id, event_data(run))
        if run.status == "success":
            emit("run.completed", run.pipeline_id, run.id, event_data(run))
            if run.deployment_url:
                emit("deployment.success", run.pipeline_id, run.id, event_data(run))
        elif run.status == "failed":
            emit("run.failed", run.pipeline_id, run.id, event_data(run))
        if run.phase == "completed":
            groups.note_completed(run)
        return True


def _comparable(run: Run) -> tuple:
    return (
        run.status,
        run.phase,
        run.conclusion,
        run.provider_status,
        run.deployment_url,
        run.html_url,
        run.upstream_id,
        run.steps,
        run.state,
        str(run.started_at),
        str(run.finished_at),
    )


def request_cancel(run_id: str) -> Run | None:
    """Mark a run for cancellation; the worker cancels it through the provider (or ends it
    directly if it was never dispatched)."""
    with write_tx():
        run = _locked(run_id)
        if run is None or run.phase == "completed":
            return run
        run.cancel_requested = True
        run.updated_at = stored_time(utcnow())
        run.version += 1
        run.save()
        runcache.changed(run.id)
        lifecycle(run, "cancel requested")
        return run


def active_deadline(run: Run, pipeline: Pipeline) -> datetime:
    return created_at(run) + timedelta(seconds=pipeline.timeout_seconds)
