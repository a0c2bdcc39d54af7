"""How runs look to API clients (get-status, runs, webhooks). One place for the shape."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from msgspec import UNSET

from flashfusion.core.client.durations import human_duration
from flashfusion.core.runs import results, views
from flashfusion.core.storage.db import from_db_time, iso, utcnow
from flashfusion.core.storage.models import Run


def duration_seconds(run: Run, now: datetime | None = None) -> int | None:
    start = from_db_time(run.started_at)
    if start is None:
        return None
    end = from_db_time(run.finished_at) or (now or utcnow())
    seconds = (end - start).total_seconds()
    return 1 if 0 < seconds < 1 else max(0, round(seconds))  # a run that took 240 ms did not take 0 s


def failed_step(run: Run) -> str | None:
    for step in run.steps or []:
        if step.get("status") == "failed":
            return step.get("name")
    return None


def trigger_of(run: Run) -> dict[str, Any]:
    """What started the run (see runs.triggers); runs from before that was recorded: unknown."""
    return dict(run.trigger) if run.trigger else {"kind": "unknown"}


def run_view(run: Run) -> views.Run:
    return views.Run(
        id=run.id,
        pipeline_id=run.pipeline_id,
        status=run.status,
        conclusion=run.conclusion,
        phase=run.phase,
        provider=run.provider,
        provider_status=run.provider_status,
        branch=run.ref,
        workflow_id=run.workflow_id,
        upstream_run_id=run.upstream_id,
        html_url=run.html_url,
        deployment_url=run.deployment_url,
        duration_seconds=duration_seconds(run),
        failed_step=failed_step(run),
        error=run.error_message,
        cancel_requested=bool(run.cancel_requested),
        steps=run.steps or [],
        created_at=iso(run.created_at),
        started_at=iso(run.started_at),
        finished_at=iso(run.finished_at),
        updated_at=iso(run.updated_at),
        trigger=trigger_of(run),
        **_results(run),
    )


def _results(run: Run) -> dict[str, Any]:
    found = results.run_results(run)
    found["artifacts"] = [views.ArtifactLink(**a) for a in found["artifacts"]]
    found["quality_gates"] = [views.QualityGate(**g) for g in found["quality_gates"]]
    return found


def run_to_dict(run: Run) -> dict[str, Any]:
    """``run_view`` as plain JSON types (for the dashboard, the CLI and the webhook payloads)."""
    return msgspec.to_builtins(run_view(run))


def event_data(run: Run) -> dict[str, Any]:
    """The ``data`` of a run event, as the webhook payload carries it."""
    seconds = duration_seconds(run)
    return msgspec.to_builtins(
        views.RunEventData(
            run_id=run.id,
            status=run.status,
            conclusion=run.conclusion,
            branch=run.ref,
            duration=human_duration(seconds),
            duration_seconds=seconds,
            html_url=run.html_url,
            trigger=trigger_of(run),
            deployment_url=run.deployment_url or UNSET,
            failed_step=failed_step(run) or UNSET,
            quality_gates=[views.QualityGate(**g) for g in run.quality_gates] if run.quality_gates else UNSET,
        )
    )
