"""Cron expressions of ``triggers.schedule``: checking them and finding their due times.

Parsing and evaluation are cronsim's (it follows Debian cron, DST transitions included). Only
the classic five fields are accepted: cronsim also reads a sixth, seconds, field, which would
let a schedule fire every second.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

FIELDS = 5


def check_cron(expr: str) -> None:
    """Raise ValueError, with a one-line reason, unless ``expr`` is a five-field cron expression."""
    if len(expr.split()) != FIELDS:
        raise ValueError(f"{expr!r} is not a cron expression: expected 5 fields (minute hour day month weekday)")
    try:
        CronSim(expr, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        raise ValueError(f"{expr!r} is not a cron expression: {str(exc).lower()}") from None


def zone(name: str | None) -> ZoneInfo:
    """The IANA time zone ``name`` (UTC when None); ValueError when there is none by that name."""
    if name is None:
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not an IANA time zone name (such as 'UTC' or 'Europe/Berlin')") from None


def latest_due(expr: str, tz: ZoneInfo, now: datetime) -> datetime:
    """The last time at or before ``now`` that ``expr`` was due in ``tz``, in UTC."""
    # cronsim's reverse iteration yields times strictly before its start, at whole seconds.
    start = now.astimezone(tz).replace(microsecond=0) + timedelta(seconds=1)
    return next(CronSim(expr, start, reverse=True)).astimezone(UTC)
