"""Groups of runs started together by one ``trigger-pipelines`` request.

A group is running until all of its runs have ended, then ``failed`` if any failed (which
ones is in ``failed_runs``), else ``success``. The transition that ends a group's last run
also marks the group completed and writes its ``group.completed`` event, in one
transaction: the group's row is locked first, so two runs ending at once cannot both miss
being the last one, nor both publish.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flashfusion.core.ids import new_id
from flashfusion.core.runs.serialize import run_to_dict
from flashfusion.core.storage.db import fetch_by_id, is_sqlite, iso, to_db_time, utcnow
from flashfusion.core.storage.models import Run, RunGroup
from flashfusion.core.webhooks import outbox

MAX_RUNS = 50


def create_group(api_key_id: str | None) -> RunGroup:
    return RunGroup.create(id=new_id("grp"), api_key_id=api_key_id, created_at=to_db_time(utcnow()))


def group_runs(group_id: str, visible: Iterable[str] | None = None) -> list[Run]:
    q = Run.select().where(Run.group_id == group_id)
    if visible is not None:
        q = q.where(Run.pipeline_id.in_(sorted(visible) or [""]))
    return list(q.order_by(Run.created_at, Run.id))


def aggregate(group: RunGroup, runs: list[Run]) -> dict[str, Any]:
    """The group as get-group shows it (``runs`` as the caller may see them)."""
    failed = [r.id for r in runs if r.status == "failed"]
    running = [r.id for r in runs if r.phase != "completed"]
    return {
        "id": group.id,
        "status": "running" if running else "failed" if failed else "success",
        "failed_runs": failed,
        "runs": [run_to_dict(r) for r in runs],
        "created_at": iso(group.created_at),
        "completed_at": iso(group.completed_at),
    }


def note_completed(run: Run) -> None:
    """Called by each completing transition, inside it: when ``run`` was its group's last
    active run, mark the group completed and publish ``group.completed``."""
    if not run.group_id:
        return
    group = fetch_by_id(RunGroup, run.group_id, for_update=not is_sqlite())
    if group is None or group.completed_at is not None:
        return
    runs = group_runs(group.id)
    if any(r.phase != "completed" for r in runs if r.id != run.id):
        return
    group.completed_at = to_db_time(utcnow())
    group.save()
    runs = [run if r.id == run.id else r for r in runs]
    shown = aggregate(group, runs)
    data = {
        "group_id": group.id,
        "status": shown["status"],
        "failed_runs": shown["failed_runs"],
        "runs": [
            {"run_id": r.id, "pipeline_id": r.pipeline_id, "status": r.status, "conclusion": r.conclusion} for r in runs
        ],
    }
    outbox.record("group.completed", None, data, run_id=group.id)
