"""What starts runs besides a direct request: pushes and schedules; and how a run records
what started it (its ``trigger``).

A pipeline's ``triggers`` table configures them::

    triggers = { push = ["main", "release/*"], schedule = ["0 3 * * 1-5"], timezone = "Europe/Riga" }

A push or a schedule's due time starts a pipeline at most once, however many times the push
is delivered and however many workers see the due time: each writes a unique claim row in
the transaction that creates the run (``transitions.create_run_once``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any

import peewee

from flashfusion.core.gateway import Gateway
from flashfusion.core.runs import cron, service
from flashfusion.core.storage.db import from_db_time, iso, to_db_time, write_tx
from flashfusion.core.storage.models import ApiKey, Run, TriggerClaim
from flashfusion.plugins import Pipeline, ProviderError

log = logging.getLogger("flashfusion.triggers")

TRIGGER_KEYS = ("manual", "push", "schedule", "timezone")
KINDS = ("api", "dashboard", "push", "schedule", "upstream", "unknown")


# --- what started a run ------------------------------------------------------------------


def api_trigger(key_id: str, key_preview: str) -> dict[str, Any]:
    """An API key's request; the key's name as it is now is kept with the run."""
    row = ApiKey.select(ApiKey.name).where(ApiKey.id == key_id).first()
    return {"kind": "api", "key_name": row.name if row else None, "key_preview": key_preview}


def dashboard_trigger(username: str) -> dict[str, Any]:
    return {"kind": "dashboard", "user": username}


def push_trigger(commit: str, pusher: str, branch: str) -> dict[str, Any]:
    return {"kind": "push", "commit": commit, "pusher": pusher, "branch": branch}


def schedule_trigger(expr: str, due: datetime) -> dict[str, Any]:
    return {"kind": "schedule", "cron": expr, "due": iso(due)}


def describe(trigger: Mapping[str, Any] | None) -> str:
    """One line for people (the dashboard)."""
    t = trigger or {}
    kind = t.get("kind")
    if kind == "api":
        return f"API key {t.get('key_name') or '?'} ({t.get('key_preview')})"
    if kind == "dashboard":
        return f"dashboard: {t.get('user')}"
    if kind == "push":
        return f"push of {str(t.get('commit'))[:12]} to {t.get('branch')} by {t.get('pusher')}"
    if kind == "schedule":
        return f"schedule {t.get('cron')} (due {t.get('due')})"
    if kind == "upstream":
        return "started upstream"
    return "unknown"


# --- configuration -----------------------------------------------------------------------


def check_triggers(triggers: Mapping[str, Any]) -> tuple[str, str] | None:
    """The first problem of a pipeline's ``triggers`` table as (key, reason), or None."""
    for key in triggers:
        if key not in TRIGGER_KEYS:
            return key, f"unknown key (known: {', '.join(TRIGGER_KEYS)})"
    if not isinstance(triggers.get("manual", True), bool):
        return "manual", "expected true or false"
    for key in ("push", "schedule"):
        value = triggers.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
            return key, "expected a list of non-empty strings"
    for i, expr in enumerate(triggers.get("schedule", [])):
        try:
            cron.check_cron(expr)
        except ValueError as exc:
            return f"schedule[{i}]", str(exc)
    timezone = triggers.get("timezone")
    if timezone is not None:
        if not isinstance(timezone, str):
            return "timezone", "expected a string"
        try:
            cron.zone(timezone)
        except ValueError as exc:
            return "timezone", str(exc)
    return None


def branch_matches(patterns: Iterable[str], branch: str) -> bool:
    """fnmatch-style and case-sensitive, as git's branch names are; ``*`` also matches ``/``."""
    return any(fnmatchcase(branch, pattern) for pattern in patterns)


# --- push ----------------------------------------------------------------------------------


def on_push(gateway: Gateway, provider: str, repository: str, branch: str, commit: str, pusher: str) -> list[Run]:
    """Start every pipeline of ``provider`` (a ``[providers.NAME]`` name) and ``repository``
    whose ``triggers.push`` matches ``branch``, on that branch; returns the runs started.
    A push delivered again starts nothing more: one run per (pipeline, commit). ``branch`` is
    the name without ``refs/heads/``; a push that deleted the branch (commit all zeros, as
    GitHub and GitLab report it) starts nothing."""
    if not commit.strip("0"):
        return []
    started = []
    for pipeline in gateway.config.pipelines.values():
        if (
            pipeline.provider != provider
            or pipeline.repository_name.casefold() != repository.casefold()
            or not branch_matches(pipeline.triggers.get("push", []), branch)
        ):
            continue
        run = _start(gateway, pipeline, f"push:{commit}", branch, push_trigger(commit, pusher, branch))
        if run is not None:
            started.append(run)
    return started


def _start(gateway: Gateway, pipeline: Pipeline, claim: str, ref: str, trigger: dict[str, Any]) -> Run | None:
    try:
        return service.start_run_once(gateway, pipeline, claim, ref, trigger)
    except ProviderError as exc:
        log.warning("%s trigger of pipeline %s: dispatch refused: %s", trigger["kind"], pipeline.id, exc.message)
    except peewee.DatabaseError:
        raise  # nothing was claimed: the caller tries again
    except Exception:
        log.exception("%s trigger of pipeline %s crashed", trigger["kind"], pipeline.id)
    return None  # the run, if created, has ended failed with the reason


# --- schedule ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    pipeline_id: str
    cron: str
    timezone: str | None

    @property
    def since_key(self) -> str:
        return f"schedule-since:{self.cron}@{self.timezone or 'UTC'}"


def schedules(pipelines: Iterable[Pipeline]) -> list[Schedule]:
    return [
        Schedule(p.id, expr, p.triggers.get("timezone")) for p in pipelines for expr in p.triggers.get("schedule", [])
    ]


class Scheduler:
    """Starts scheduled pipelines; each worker holds one and calls ``tick`` with the time.

    A schedule fires at its latest due time that is not yet claimed: on time while a worker
    runs, and once at start-up for a time missed while every worker was down (earlier missed
    times are skipped). Due times before a schedule was first seen never fire, so adding a
    schedule does not start a run for yesterday's due time. Each worker remembers what it has
    seen, so it writes once per due time, not once per tick."""

    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway
        self._since: dict[Schedule, datetime] = {}
        self._seen_due: dict[Schedule, datetime] = {}

    def tick(self, now: datetime) -> list[Run]:
        started = []
        for schedule in schedules(self.gw.config.pipelines.values()):
            due = cron.latest_due(schedule.cron, cron.zone(schedule.timezone), now)
            if self._seen_due.get(schedule) == due:
                continue
            if due >= self._first_seen(schedule, now):
                pipeline = self.gw.config.pipelines[schedule.pipeline_id]
                run = _start(
                    self.gw, pipeline, f"schedule:{iso(due)}", pipeline.branch, schedule_trigger(schedule.cron, due)
                )
                if run is not None:
                    log.info("schedule %r started run %s of pipeline %s", schedule.cron, run.id, pipeline.id)
                    started.append(run)
            self._seen_due[schedule] = due
        return started

    def _first_seen(self, schedule: Schedule, now: datetime) -> datetime:
        """When any worker first saw this schedule (the earliest time it may fire for)."""
        since = self._since.get(schedule)
        if since is None:
            with write_tx():
                TriggerClaim.insert(
                    pipeline_id=schedule.pipeline_id, claim_key=schedule.since_key, created_at=to_db_time(now)
                ).on_conflict_ignore().execute()
                row = TriggerClaim.get(
                    (TriggerClaim.pipeline_id == schedule.pipeline_id) & (TriggerClaim.claim_key == schedule.since_key)
                )
            since = self._since[schedule] = from_db_time(row.created_at) or now
        return since
