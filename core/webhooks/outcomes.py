"""What an attempt's outcome is called: the error kept in the delivery log, and the log line
and counts of each attempt (with the run it was about)."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from flashfusion.core.observability import metrics
from flashfusion.core.webhooks import sender as client

if TYPE_CHECKING:
    from flashfusion.core.webhooks.dispatcher import Job

log = logging.getLogger("flashfusion.webhooks")


def note(job: Job, outcome: client.Outcome, status: str, error: str | None) -> None:
    """The log line and counts of one attempt's outcome."""
    result = {"succeeded": "delivered", "failed": "failed", "pending": "will be retried"}[status]
    metrics.webhook_attempts.labels("ok" if outcome.ok else "failed").inc()
    if status != "pending":
        metrics.webhook_deliveries.labels(status).inc()
    fields = {
        "delivery_id": job.row.id,
        "run_id": _run_id(job.row.body),
        "event_id": job.row.event_id,
        "event_type": job.row.event_type,
        "endpoint_id": job.ep.id,
        "attempt": job.attempt,
        "status_code": outcome.status,
        "latency_ms": outcome.latency_ms,
        "result": status,
    }
    level = logging.INFO if outcome.ok else logging.WARNING
    log.log(
        level,
        "webhook delivery %s (%s, event %s, run %s) to endpoint %s, attempt %s: %s%s",
        job.row.id,
        job.row.event_type,
        job.row.event_id,
        fields["run_id"] or "-",
        job.ep.id,
        job.attempt,
        result,
        f" ({error})" if error else f" (HTTP {outcome.status})",
        extra=fields,
    )


def _run_id(body: str) -> str | None:
    try:
        data = json.loads(body).get("data")
    except (ValueError, AttributeError):
        return None
    return data.get("run_id") if isinstance(data, dict) else None


def describe(outcome: client.Outcome) -> str | None:
    """The error kept for an attempt, at most 300 characters."""
    error = outcome.error
    if outcome.status is not None and 300 <= outcome.status < 400:
        error = f"redirect not followed ({outcome.status}" + (f" to {outcome.location})" if outcome.location else ")")
    elif outcome.status is not None and not outcome.ok:
        error = f"HTTP {outcome.status}"
    return (error or None) and error[:300]
