"""``RunSnapshot.failed``: the public shorthand providers use for a run that ended without success."""

from __future__ import annotations

from datetime import UTC, datetime

from flashfusion.plugins import RunSnapshot


def test_failed_is_a_completed_failure_with_its_reason_and_any_other_field():
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    lost = RunSnapshot.failed("r1", "dispatch_lost")
    cancelled = RunSnapshot.failed("r2", "cancelled", "aborted", finished_at=now, state={"polls": 2})

    assert (lost.run_id, lost.status, lost.phase, lost.conclusion, lost.provider_status) == (
        "r1",
        "failed",
        "completed",
        "dispatch_lost",
        None,
    )
    assert lost.terminal
    assert cancelled == RunSnapshot(
        run_id="r2",
        status="failed",
        phase="completed",
        conclusion="cancelled",
        provider_status="aborted",
        finished_at=now,
        state={"polls": 2},
    )
